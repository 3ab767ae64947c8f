# The one image every Batch job of the reference workflows runs in: Debian bookworm with the
# packages of packaging/apt-packages.txt (the same list scripts/setup.sh installs locally, so the
# two cannot drift) and this project installed in a virtual environment that is first on PATH
# (the in-job launcher, Snakemake for `--executor awsbatch` jobs, and workflows.tools).
#   docker build -t awsbatch-genomics:0.1.0 .
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/awsbatch \
    PATH=/opt/awsbatch/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

COPY packaging/apt-packages.txt /tmp/apt-packages.txt
RUN apt-get update \
    && grep -vE '^\s*(#|$)' /tmp/apt-packages.txt \
       | xargs apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* /tmp/apt-packages.txt

WORKDIR /opt/src
COPY pyproject.toml README.md ./
COPY snakemake_executor_awsbatch ./snakemake_executor_awsbatch
COPY snakemake_executor_plugin_awsbatch ./snakemake_executor_plugin_awsbatch
COPY cwl_runner ./cwl_runner
COPY workflows ./workflows
RUN python3 -m venv "$VIRTUAL_ENV" \
    && pip install --no-cache-dir --upgrade pip \
    && pip install --no-cache-dir . \
    && python -c "import snakemake_executor_awsbatch, workflows.tools.somatic_classify"

WORKDIR /work
CMD ["bash"]
