# Germline variant calling: bcftools and freebayes, each scattered over SCATTER region chunks, then
# one step (final_calls) that gathers and normalises each caller's chunks (split, atomised,
# left-aligned, de-duplicated), combines the two callers and filters.
# On a remote executor everything from the calls to the QC summary runs as one job per sample
# (group "call"; the Snakefile puts bam_qc in it too): the calls, the BAM QC, the gathering and
# the summary share one job's start and one download of the BAM, the chunk VCFs never leave the
# job, and on a job with fewer vCPUs than calls each call starts as soon as another ends. On
# AWS Batch every job costs scheduling time that the short steps after calling do not justify.
# For more, smaller jobs (a large SCATTER, many calls per sample), give the gathering its own
# group and batch the calls by count: --groups final_calls=finish qc_summary=finish
# --group-components call=9 (see docs/workflows.md). Plain local runs ignore groups.

CALLERS = ("bcftools", "freebayes")
COMBINE = str(config.get("combine", "union"))
if COMBINE not in ("bcftools", "freebayes", "consensus", "union"):
    raise WorkflowConfigError(
        f"config key 'combine' is {COMBINE!r}: set it to union, consensus, bcftools or freebayes."
    )
SINGLE_MIN_QUAL = float(config.get("single_caller_min_qual", 30))
MIN_QUAL = float(config.get("min_qual", 20))
MIN_DP = int(config.get("min_depth", 5))


rule call_bcftools:
    input:
        unpack(fasta_files),
        bam="aligned/{sample}.bam",
        bai="aligned/{sample}.bam.bai",
        bed="regions/chunk_{i}.bed",
    output:
        temp("calls/{sample}/bcftools.chunk_{i}.vcf.gz"),
    params:
        ref=ref_path,
    log:
        "logs/call_bcftools/{sample}.{i}.log",
    group:
        "call"
    resources:
        mem_mb=2000,
    shell:
        "(bcftools mpileup -f {params.ref} -R {input.bed} -a FORMAT/AD,FORMAT/DP -q 20 -Q 20"
        " -Ou {input.bam} | bcftools call -m -v -Oz -o {output}) > {log} 2>&1"


rule call_freebayes:
    input:
        unpack(fasta_files),
        bam="aligned/{sample}.bam",
        bai="aligned/{sample}.bam.bai",
        bed="regions/chunk_{i}.bed",
    output:
        temp("calls/{sample}/freebayes.chunk_{i}.vcf.gz"),
    params:
        ref=ref_path,
    log:
        "logs/call_freebayes/{sample}.{i}.log",
    group:
        "call"
    resources:
        mem_mb=2000,
    shell:
        "(freebayes -f {params.ref} -t {input.bed} --min-mapping-quality 20"
        " --min-base-quality 20 {input.bam} | bgzip -c > {output}) 2> {log}"


def caller_chunks(caller):
    """One caller's chunk VCFs of a sample (the sample left as a wildcard)."""
    return expand(f"calls/{{{{sample}}}}/{caller}.chunk_{{i}}.vcf.gz", i=range(SCATTER))


rule final_calls:
    input:
        unpack(fasta_files),
        bcftools_chunks=caller_chunks("bcftools"),
        freebayes_chunks=caller_chunks("freebayes"),
    output:
        bcftools="calls/{sample}/{sample}.bcftools.vcf.gz",
        bcftools_tbi="calls/{sample}/{sample}.bcftools.vcf.gz.tbi",
        freebayes="calls/{sample}/{sample}.freebayes.vcf.gz",
        freebayes_tbi="calls/{sample}/{sample}.freebayes.vcf.gz.tbi",
        vcf=f"{OUTDIR}/{{sample}}/{{sample}}.vcf.gz",
        tbi=f"{OUTDIR}/{{sample}}/{{sample}}.vcf.gz.tbi",
    params:
        ref=ref_path,
        mode=COMBINE,
        single_qual=SINGLE_MIN_QUAL,
        expr=f"QUAL<{MIN_QUAL} || INFO/DP<{MIN_DP}",
        # Scratch next to the per-caller calls, not in the results directory.
        tmp=lambda wildcards, output: os.path.join(os.path.dirname(output.bcftools), "final.tmp"),
    log:
        "logs/final_calls/{sample}.log",
    group:
        "call"
    threads: 2
    resources:
        mem_mb=2000,
    # Each caller's chunks are gathered (the two side by side) and normalised: split
    # multiallelics, atomise (which makes freebayes' complex alleles comparable with bcftools'
    # records), then a second left-align and a sort, because atomised indels can move. Then
    # combine, then filter. isec -p writes 0000 (only freebayes), 0001 (only bcftools), 0002
    # (freebayes' records of the sites both callers found). "consensus" keeps 0002; "union" adds
    # single-caller calls whose QUAL reaches single_caller_min_qual. freebayes' record wins on
    # shared sites: its haplotype model gives better indel genotypes. The combined calls stay in
    # the step's scratch directory (uncompressed BCF) instead of becoming a file of their own.
    shell:
        """
        (set -e
        rm -rf {params.tmp} && mkdir -p {params.tmp}
        gather() {{
          out=$1; shift
          bcftools concat -Ou "$@" \
            | bcftools sort -Ou -T $out.sort1 \
            | bcftools norm -f {params.ref} -m -any -Ou \
            | bcftools norm -f {params.ref} -a --atom-overlaps . -Ou \
            | bcftools sort -Ou -T $out.sort2 \
            | bcftools norm -d exact -Oz -o $out
          tabix -f -p vcf $out
        }}
        gather {output.bcftools} {input.bcftools_chunks} & bcftools_gather=$!
        gather {output.freebayes} {input.freebayes_chunks} & freebayes_gather=$!
        wait $bcftools_gather
        wait $freebayes_gather
        combined={params.tmp}/combined.bcf
        case {params.mode} in
          bcftools) bcftools view -Ou -o $combined {output.bcftools} ;;
          freebayes) bcftools view -Ou -o $combined {output.freebayes} ;;
          *)
            bcftools isec -c none -Oz -p {params.tmp} {output.freebayes} {output.bcftools}
            if [ {params.mode} = consensus ]; then
              bcftools view -Ou -o $combined {params.tmp}/0002.vcf.gz
            else
              bcftools view -i 'QUAL>={params.single_qual}' -Oz -o {params.tmp}/fb.vcf.gz \
                {params.tmp}/0000.vcf.gz
              bcftools view -i 'QUAL>={params.single_qual}' -Oz -o {params.tmp}/bc.vcf.gz \
                {params.tmp}/0001.vcf.gz
              bcftools concat -Ou {params.tmp}/0002.vcf.gz {params.tmp}/fb.vcf.gz \
                {params.tmp}/bc.vcf.gz \
                | bcftools sort -Ou -T {params.tmp}/sort -o $combined
            fi ;;
        esac
        bcftools filter -s LowQual -e '{params.expr}' -Oz -o {output.vcf} $combined
        tabix -f -p vcf {output.vcf}
        rm -rf {params.tmp}) > {log} 2>&1
        """


rule qc_summary:
    input:
        fastp="qc/{sample}/{sample}.fastp.json",
        markdup="qc/{sample}/{sample}.markdup.txt",
        flagstat="qc/{sample}/{sample}.flagstat.txt",
        mosdepth="qc/{sample}/{sample}.mosdepth.summary.txt",
        vcf=f"{OUTDIR}/{{sample}}/{{sample}}.vcf.gz",
    output:
        f"{OUTDIR}/{{sample}}/{{sample}}.qc.tsv",
    group:
        "call"
    resources:
        mem_mb=500,
    shell:
        "python3 -m workflows.tools.qc_summary {wildcards.sample} {input.fastp} {input.markdup}"
        " {input.flagstat} {input.mosdepth} {input.vcf} {output}"
