"""cwl-awsbatch: run CWL tools and workflows with every CommandLineTool as one AWS Batch job."""
