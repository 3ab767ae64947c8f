"""Snakemake's discovery name for the AWS Batch executor (`snakemake --executor awsbatch`)."""

from snakemake_executor_awsbatch.executor import Executor, common_settings
from snakemake_executor_awsbatch.settings import ExecutorSettings

__all__ = ["Executor", "ExecutorSettings", "common_settings"]
