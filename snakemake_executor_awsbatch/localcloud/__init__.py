"""The local cloud: one loopback endpoint serving the Batch API (the project's own engine, which
runs jobs as host processes) and S3, CloudWatch Logs and EFS (moto), so that workflows run on
this machine with no AWS account. See docs/local-cloud.md."""

from snakemake_executor_awsbatch.localcloud.cloud import LocalCloud

__all__ = ["LocalCloud"]
