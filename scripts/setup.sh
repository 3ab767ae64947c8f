#!/usr/bin/env bash
# Idempotent setup for a fresh Debian (bookworm) machine as root, or any machine that already has
# the tools: installs the Debian packages of packaging/apt-packages.txt that are missing, creates
# .venv and installs the project into it. A second run does nothing that is already done.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

# `--dev` adds the test-only packages (e.g. Chromium for the report screenshot test).
lists=(packaging/apt-packages.txt)
if [ "${1:-}" = "--dev" ] && [ -f packaging/apt-packages-dev.txt ]; then
  lists+=(packaging/apt-packages-dev.txt)
fi
mapfile -t wanted < <(cat "${lists[@]}" | grep -vE '^\s*(#|$)')
missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: these Debian packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv: a Python >= 3.11 (the machine's python3 on bookworm is 3.11).
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
stamp=.venv/.installed-$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ ! -f "$stamp" ]; then
  echo "setup: installing the project and its Python dependencies into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  # compat mode: Snakemake's plugin discovery (pkgutil) does not see setuptools' default
  # import-hook editable installs, only a plain path entry.
  .venv/bin/python -m pip install -q -e ".[dev]" --config-settings editable_mode=compat
  rm -f .venv/.installed-*
  touch "$stamp"
fi
echo "setup: ready (activate with: source $repo/.venv/bin/activate)"
