#!/usr/bin/env bash
# Sets everything up (idempotently) and runs the main job: the germline workflow through
# `snakemake --executor awsbatch --awsbatch-local` on small simulated reads of a real reference,
# ending with a summary (VCF, variant counts, accuracy against the truth set, wall time).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
bash scripts/setup.sh
export PATH="$repo/.venv/bin:$PATH"
exec python -m workflows.demo "$@"
