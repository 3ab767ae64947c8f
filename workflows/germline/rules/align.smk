# Reads to analysis-ready BAMs: fastp trimming, bwa mem with read groups, fixmate, sort, markdup,
# then BAM QC (flagstat, stats, mosdepth). Needs READS (sample -> (fq1, fq2)) and common.smk.
# bwa mem, fixmate, sort and markdup are one streamed rule: the sorted BAM goes from sort to markdup
# through a pipe instead of being compressed to disk, read back and (on a remote executor) handled
# as one more step. On a remote executor bam_qc runs in the group the including Snakefile names in
# BAM_QC_GROUP: "align" (one job per sample with bwa_mem, the QC reading the BAM where it was
# written), or the job that reads the BAM next, as the germline workflow's calls ("call"), which
# spares the alignment job a second level (Snakemake waits 0.1 s between a group's levels) and
# lets the QC fill the calling job's free cores.


wildcard_constraints:
    sample="[A-Za-z0-9][A-Za-z0-9_.-]*",
    i="[0-9]+",


def sample_reads(wildcards):
    """The two FASTQ files of one sample, from the samples (or pairs) table."""
    fq1, fq2 = READS[wildcards.sample]
    return {"fq1": fq1, "fq2": fq2}


rule fastp:
    input:
        unpack(sample_reads),
    output:
        r1=temp("trimmed/{sample}_R1.fastq.gz"),
        r2=temp("trimmed/{sample}_R2.fastq.gz"),
        json="qc/{sample}/{sample}.fastp.json",
    log:
        "logs/fastp/{sample}.log",
    threads: THREADS
    resources:
        mem_mb=2000,
    shell:
        "fastp --in1 {input.fq1} --in2 {input.fq2} --out1 {output.r1} --out2 {output.r2}"
        " --detect_adapter_for_pe --thread {threads} --json {output.json} --html /dev/null"
        " > {log} 2>&1"


rule bwa_mem:
    input:
        unpack(ref_files),
        r1="trimmed/{sample}_R1.fastq.gz",
        r2="trimmed/{sample}_R2.fastq.gz",
    output:
        bam="aligned/{sample}.bam",
        bai="aligned/{sample}.bam.bai",
        stats="qc/{sample}/{sample}.markdup.txt",
    params:
        ref=ref_path,
        rg=r"@RG\tID:{sample}\tSM:{sample}\tLB:{sample}\tPL:ILLUMINA",
    log:
        "logs/bwa_mem/{sample}.log",
    group:
        "align"
    threads: THREADS
    resources:
        mem_mb=4000,
    # bwa writes mates next to each other, which is the grouping fixmate needs; sort hands markdup
    # an uncompressed stream (-u), as markdup needs coordinate order and the mate tags fixmate -m
    # added.
    shell:
        "(bwa mem -t {threads} -R '{params.rg}' {params.ref} {input.r1} {input.r2}"
        " | samtools fixmate -m -u - -"
        " | samtools sort -@ {threads} -m 500M -u -T {output.bam}.tmp -"
        " | samtools markdup -@ {threads} -f {output.stats} - {output.bam}"
        " && samtools index {output.bam}) > {log} 2>&1"


rule bam_qc:
    input:
        bam="aligned/{sample}.bam",
        bai="aligned/{sample}.bam.bai",
    output:
        flagstat="qc/{sample}/{sample}.flagstat.txt",
        stats="qc/{sample}/{sample}.stats.txt",
        mosdepth="qc/{sample}/{sample}.mosdepth.summary.txt",
    params:
        prefix=lambda wildcards, output: output.mosdepth[: -len(".mosdepth.summary.txt")],
    log:
        "logs/bam_qc/{sample}.log",
    group:
        BAM_QC_GROUP
    threads: THREADS
    resources:
        mem_mb=2000,
    shell:
        "(samtools flagstat -@ {threads} {input.bam} > {output.flagstat}"
        " && samtools stats -@ {threads} {input.bam} > {output.stats}"
        " && mosdepth -n -x -t {threads} {params.prefix} {input.bam}"
        " && rm -f {params.prefix}.mosdepth.global.dist.txt) > {log} 2>&1"
