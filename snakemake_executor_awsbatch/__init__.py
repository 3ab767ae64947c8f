"""Run Snakemake and CWL workflows on AWS Batch: the Batch core, the local cloud and the Snakemake
executor. The Snakemake plugin entry point is `snakemake_executor_plugin_awsbatch`."""

__version__ = "0.1.0"
