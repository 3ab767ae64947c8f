"""script: rule of the e2e workflow."""

with open(snakemake.input[0]) as source, open(snakemake.output[0], "w") as target:  # noqa: F821
    target.write(source.read().upper())
