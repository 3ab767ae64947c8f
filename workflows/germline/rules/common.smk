# Shared by the germline and somatic Snakefiles: configuration checks, the reference and its
# indexes, and the region scatter. The including Snakefile sets READS (sample -> (fq1, fq2)) first.

import csv
import os
import sys


class WorkflowConfigError(Exception):
    """A configuration problem the user can fix; the message names it and the fix."""


def require_config(key, example):
    """The value of a required config key, or a one-sentence error naming the fix."""
    if key not in config or config[key] in (None, ""):
        raise WorkflowConfigError(
            f"config key '{key}' is missing: pass --configfile with it set "
            f"or --config {key}={example}."
        )
    return str(config[key])


def load_table(key, columns):
    """Rows (dicts over `columns`) of the table config[key]: a TSV path, or the rows inline.

    Inline rows (a mapping from the first column's value to the other columns) need no file in
    the jobs: Snakemake ships config files to remote jobs but not arbitrary tables. Relative file
    paths in a TSV are taken relative to the TSV's directory, inline ones to the working directory.
    """
    value = config.get(key)
    if value in (None, ""):
        raise WorkflowConfigError(
            f"config key '{key}' is missing: pass --configfile with it set "
            f"or --config {key}={key}.tsv."
        )
    if isinstance(value, dict):
        base = ""
        rows = [{columns[0]: str(name), **(fields or {})} for name, fields in value.items()]
        where = f"config key '{key}'"
    else:
        path = str(value)
        if not os.path.exists(path):
            raise WorkflowConfigError(
                f"table {path} (config key '{key}') does not exist: fix the path in the config."
            )
        base = os.path.dirname(path)
        with open(path, newline="") as handle:
            rows = list(csv.DictReader((l for l in handle if l.strip()), delimiter="\t"))
        where = f"table {path}"
    if not rows:
        raise WorkflowConfigError(f"{where} has no rows: add one row per {columns[0]}.")
    for row in rows:
        missing = [c for c in columns if not str(row.get(c) or "").strip()]
        if missing:
            raise WorkflowConfigError(
                f"{where} lacks {', '.join(missing)} for {row.get(columns[0])!r}: give every "
                f"row the fields {', '.join(columns)} (a TSV needs them as its header)."
            )
        for column in columns[1:]:
            item = str(row[column]).strip()
            if "://" not in item and not os.path.isabs(item):
                item = os.path.normpath(os.path.join(base, item))
            row[column] = source_file(item)
    return rows


# local_inputs: true -> input files given as local paths are read in place (made absolute and
# flagged local()) instead of through the default storage provider. Only right when every job
# sees the submitting machine's file system: the local cloud, or a shared file system.
LOCAL_INPUTS = str(config.get("local_inputs", False)).lower() in ("true", "yes", "1")


def source_file(path):
    """An input path as Snakemake should see it: URIs go through storage(), local paths as set."""
    if "://" in path:
        return storage(path)
    if LOCAL_INPUTS:
        return local(os.path.abspath(path))
    return path


OUTDIR = str(config.get("outdir", "results")).rstrip("/")
THREADS = int(config.get("threads", 2))
SCATTER = int(config.get("scatter", 4))
if SCATTER < 1:
    raise WorkflowConfigError("config key 'scatter' must be at least 1: set scatter: 4 or so.")
REF_SOURCE = require_config("reference", "path/to/genome.fa")
BWA_EXTS = (".amb", ".ann", ".bwt", ".pac", ".sa")
INDEX_EXTS = (".fai", *BWA_EXTS)

# reference_indexed: true -> the FASTA and its indexes already exist at that path on every job's
# file system (typically an EFS mount the submitting machine need not see), so they are parameters,
# not inputs: nothing is staged and nothing is checked here. "auto" uses them in place when the
# index files are visible; otherwise the workflow copies the FASTA once and builds the indexes.
_indexed = str(config.get("reference_indexed", "auto")).lower()
if _indexed == "auto":
    REF_PREBUILT = all(os.path.exists(REF_SOURCE + ext) for ext in INDEX_EXTS)
    REF_MOUNTED = False
elif _indexed in ("true", "yes", "1"):
    REF_PREBUILT = True
    REF_MOUNTED = True
elif _indexed in ("false", "no", "0"):
    REF_PREBUILT = False
    REF_MOUNTED = False
else:
    raise WorkflowConfigError(
        f"config key 'reference_indexed' is {_indexed!r}: set it to auto, true or false."
    )
# Tools open the reference by path inside the job; an object URI would only fail there, per job.
if REF_MOUNTED and "://" in REF_SOURCE:
    raise WorkflowConfigError(
        f"config key 'reference' is {REF_SOURCE!r} but reference_indexed is true, which needs a "
        "path every job can read (e.g. /ref/genome.fa on an EFS mount): publish it with "
        "`awsbatch refs publish` and give its mounted path, or set reference_indexed: false."
    )
if REF_PREBUILT and LOCAL_INPUTS:
    REF = os.path.abspath(REF_SOURCE)
elif REF_PREBUILT:
    REF = REF_SOURCE
else:
    REF = "reference/genome.fa"


def ref_files(wildcards=None):
    """The reference FASTA and its indexes as rule inputs (none when read from a mount)."""
    if REF_MOUNTED:
        return {}
    files = {"fasta": REF, **{ext.lstrip("."): REF + ext for ext in INDEX_EXTS}}
    if REF_PREBUILT:
        return {name: local(path) for name, path in files.items()}
    return files


def fasta_files(wildcards=None):
    """The reference FASTA and its .fai, for steps that read the reference but do not align.

    Declaring only what a step reads keeps the bwa indexes out of its Batch job's downloads and
    out of Snakemake's input checks (each input is looked up in S3 before the job runs).
    """
    return {name: path for name, path in ref_files(wildcards).items() if name in ("fasta", "fai")}


def ref_path(wildcards, input):
    """The reference FASTA where this job sees it.

    With a default storage provider an input's local path differs from its name (Snakemake
    retrieves it under .snakemake/storage/), so commands must take paths from `input`, never
    rebuild them; a mounted reference is not an input and keeps its configured path.
    """
    return input.fasta if "fasta" in input.keys() else REF


if not REF_PREBUILT:

    rule reference_index:
        input:
            source_file(REF_SOURCE),
        output:
            fasta="reference/genome.fa",
            idx=multiext("reference/genome.fa", *INDEX_EXTS),
        log:
            "logs/reference_index.log",
        resources:
            mem_mb=4000,
        shell:
            "(case {input} in *.gz) gzip -dc {input} ;; *) cat {input} ;; esac > {output.fasta}"
            " && samtools faidx {output.fasta} && bwa index {output.fasta}) > {log} 2>&1"


def fai_file(wildcards=None):
    """The reference's .fai as a rule input (none when read from a mount)."""
    return {name: path for name, path in ref_files(wildcards).items() if name == "fai"}


# Cutting the genome into chunks is an awk over the .fai: on a remote executor it runs on the
# submitting machine (a Batch job would cost a job's scheduling for milliseconds of work) unless
# the reference is on a mount only jobs see.
if not REF_MOUNTED:

    localrules:
        split_regions,


rule split_regions:
    input:
        unpack(fai_file),
    output:
        expand("regions/chunk_{i}.bed", i=range(SCATTER)),
    params:
        fai=lambda wildcards, input: input.fai if "fai" in input.keys() else f"{REF}.fai",
        prefix=lambda wildcards, output: output[0][: -len("0.bed")],
        n=SCATTER,
    resources:
        mem_mb=500,
    # Equal-length pieces of the genome in order, one BED per chunk; a piece may span contigs.
    shell:
        """
        awk -v n={params.n} -v prefix={params.prefix} 'BEGIN {{ OFS = "\\t" }}
        {{ name[NR] = $1; len[NR] = $2; total += $2 }}
        END {{
          size = int((total + n - 1) / n); chunk = 0; used = 0
          for (i = 1; i <= NR; i++) {{
            start = 0
            while (start < len[i]) {{
              end = start + size - used; if (end > len[i]) end = len[i]
              print name[i], start, end > (prefix chunk ".bed")
              used += end - start; start = end
              if (used >= size && chunk < n - 1) {{ close(prefix chunk ".bed"); chunk++; used = 0 }}
            }}
          }}
          for (k = 0; k < n; k++) printf "" >> (prefix k ".bed")
        }}' {params.fai}
        """
