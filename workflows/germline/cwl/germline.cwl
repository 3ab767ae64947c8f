cwlVersion: v1.2
class: Workflow
doc: >-
  Germline short variants for one sample: fastp, bwa mem, fixmate/sort/markdup, BAM QC,
  bcftools and freebayes scattered over region chunks and gathered, combine, filter, QC summary.
  Give either `reference` (indexes are built) or `indexed_reference` (FASTA with .fai and bwa
  indexes next to it, e.g. on EFS).
requirements:
  ScatterFeatureRequirement: {}
  InlineJavascriptRequirement: {}
  MultipleInputFeatureRequirement: {}
  StepInputExpressionRequirement: {}
inputs:
  sample: string
  fq1: File
  fq2: File
  reference:
    type: File?
    doc: genome FASTA (plain or gzip); its indexes are built by the workflow
  indexed_reference:
    type: File?
    secondaryFiles: [.fai, .amb, .ann, .bwt, .pac, .sa]
    doc: genome FASTA whose samtools and bwa indexes already sit next to it
  scatter:
    type: int
    default: 4
  combine:
    type: string
    default: union
  single_caller_min_qual:
    type: float
    default: 30
  min_qual:
    type: float
    default: 20
  min_depth:
    type: int
    default: 5
outputs:
  vcf:
    type: File
    outputSource: filter/filtered
  qc_summary:
    type: File
    outputSource: summarise/summary
  bam:
    type: File
    outputSource: markdup/markdup_bam
  flagstat:
    type: File
    outputSource: bam_qc/flagstat
  samtools_stats:
    type: File
    outputSource: bam_qc/stats
  bcftools_vcf:
    type: File
    outputSource: gather_bcftools/vcf
  freebayes_vcf:
    type: File
    outputSource: gather_freebayes/vcf
steps:
  index:
    run: bwa_index.cwl
    # A run given neither reference fails here, naming both ways to give one (cwltool alone
    # would only say that bwa_index lacks `reference`).
    when: |-
      ${
        if (inputs.reference === null && inputs.indexed_reference === null) {
          throw "no reference genome is given; set the input reference (a FASTA) or indexed_reference (a FASTA with its .fai and bwa indexes next to it).";
        }
        return inputs.indexed_reference === null;
      }
    in:
      reference: reference
      indexed_reference: indexed_reference
    out: [indexed]
  fastp:
    run: fastp.cwl
    in: {sample: sample, fq1: fq1, fq2: fq2}
    out: [r1, r2, json]
  align:
    run: bwa_mem.cwl
    in:
      sample: sample
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      r1: fastp/r1
      r2: fastp/r2
    out: [bam]
  markdup:
    run: markdup.cwl
    in: {sample: sample, bam: align/bam}
    out: [markdup_bam, stats]
  bam_qc:
    run: bam_qc.cwl
    in: {sample: sample, bam: markdup/markdup_bam}
    out: [flagstat, stats, mosdepth]
  regions:
    run: split_regions.cwl
    in:
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      scatter: scatter
    out: [beds]
  call_bcftools:
    run: call_bcftools.cwl
    scatter: bed
    in:
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      bam: markdup/markdup_bam
      bed: regions/beds
    out: [vcf]
  call_freebayes:
    run: call_freebayes.cwl
    scatter: bed
    in:
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      bam: markdup/markdup_bam
      bed: regions/beds
    out: [vcf]
  gather_bcftools:
    run: gather_calls.cwl
    in:
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      chunks: call_bcftools/vcf
      name: {source: sample, valueFrom: $(self).bcftools}
    out: [vcf]
  gather_freebayes:
    run: gather_calls.cwl
    in:
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      chunks: call_freebayes/vcf
      name: {source: sample, valueFrom: $(self).freebayes}
    out: [vcf]
  combine_calls:
    run: combine_calls.cwl
    in:
      freebayes: gather_freebayes/vcf
      bcftools: gather_bcftools/vcf
      mode: combine
      single_caller_min_qual: single_caller_min_qual
    out: [vcf]
  filter:
    run: filter_calls.cwl
    in:
      vcf: combine_calls/vcf
      sample: sample
      min_qual: min_qual
      min_depth: min_depth
    out: [filtered]
  summarise:
    run: qc_summary.cwl
    in:
      sample: sample
      fastp: fastp/json
      markdup: markdup/stats
      flagstat: bam_qc/flagstat
      mosdepth: bam_qc/mosdepth
      vcf: filter/filtered
    out: [summary]
