cwlVersion: v1.2
class: Workflow
doc: >-
  Tumor/normal somatic small variants for one pair: both samples trimmed, aligned, duplicate-
  marked and QC'd as in the germline workflow, joint freebayes candidates scattered over region
  chunks and gathered, then the somatic classifier (PASS/REJECT with evidence).
  Give either `reference` (indexes are built) or `indexed_reference` (indexes next to it).
requirements:
  ScatterFeatureRequirement: {}
  InlineJavascriptRequirement: {}
  MultipleInputFeatureRequirement: {}
  StepInputExpressionRequirement: {}
inputs:
  pair: string
  tumor_fq1: File
  tumor_fq2: File
  normal_fq1: File
  normal_fq2: File
  reference:
    type: File?
  indexed_reference:
    type: File?
    secondaryFiles: [.fai, .amb, .ann, .bwt, .pac, .sa]
  scatter:
    type: int
    default: 4
  min_alt_fraction:
    type: float
    default: 0.03
  min_alt_count:
    type: int
    default: 2
  min_tumor_lod:
    type: float
    default: 4.0
outputs:
  somatic_vcf:
    type: File
    outputSource: classify/somatic
  candidates_vcf:
    type: File
    outputSource: gather/vcf
  tumor_bam:
    type: File
    outputSource: markdup_tumor/markdup_bam
  normal_bam:
    type: File
    outputSource: markdup_normal/markdup_bam
  tumor_flagstat:
    type: File
    outputSource: qc_tumor/flagstat
  normal_flagstat:
    type: File
    outputSource: qc_normal/flagstat
  tumor_coverage:
    type: File
    outputSource: qc_tumor/mosdepth
  normal_coverage:
    type: File
    outputSource: qc_normal/mosdepth
steps:
  index:
    run: ../../germline/cwl/bwa_index.cwl
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
  fastp_tumor:
    run: ../../germline/cwl/fastp.cwl
    in:
      sample: {source: pair, valueFrom: $(self).tumor}
      fq1: tumor_fq1
      fq2: tumor_fq2
    out: [r1, r2, json]
  fastp_normal:
    run: ../../germline/cwl/fastp.cwl
    in:
      sample: {source: pair, valueFrom: $(self).normal}
      fq1: normal_fq1
      fq2: normal_fq2
    out: [r1, r2, json]
  align_tumor:
    run: ../../germline/cwl/bwa_mem.cwl
    in:
      sample: {source: pair, valueFrom: $(self).tumor}
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      r1: fastp_tumor/r1
      r2: fastp_tumor/r2
    out: [bam]
  align_normal:
    run: ../../germline/cwl/bwa_mem.cwl
    in:
      sample: {source: pair, valueFrom: $(self).normal}
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      r1: fastp_normal/r1
      r2: fastp_normal/r2
    out: [bam]
  markdup_tumor:
    run: ../../germline/cwl/markdup.cwl
    in:
      sample: {source: pair, valueFrom: $(self).tumor}
      bam: align_tumor/bam
    out: [markdup_bam, stats]
  markdup_normal:
    run: ../../germline/cwl/markdup.cwl
    in:
      sample: {source: pair, valueFrom: $(self).normal}
      bam: align_normal/bam
    out: [markdup_bam, stats]
  qc_tumor:
    run: ../../germline/cwl/bam_qc.cwl
    in:
      sample: {source: pair, valueFrom: $(self).tumor}
      bam: markdup_tumor/markdup_bam
    out: [flagstat, stats, mosdepth]
  qc_normal:
    run: ../../germline/cwl/bam_qc.cwl
    in:
      sample: {source: pair, valueFrom: $(self).normal}
      bam: markdup_normal/markdup_bam
    out: [flagstat, stats, mosdepth]
  regions:
    run: ../../germline/cwl/split_regions.cwl
    in:
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      scatter: scatter
    out: [beds]
  candidates:
    run: somatic_candidates.cwl
    scatter: bed
    in:
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      tumor_bam: markdup_tumor/markdup_bam
      normal_bam: markdup_normal/markdup_bam
      bed: regions/beds
      min_alt_fraction: min_alt_fraction
      min_alt_count: min_alt_count
    out: [vcf]
  gather:
    run: ../../germline/cwl/gather_calls.cwl
    in:
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      chunks: candidates/vcf
      name: {source: pair, valueFrom: $(self).candidates}
    out: [vcf]
  classify:
    run: somatic_classify.cwl
    in:
      pair: pair
      candidates: gather/vcf
      tumor_bam: markdup_tumor/markdup_bam
      normal_bam: markdup_normal/markdup_bam
      reference:
        source: [indexed_reference, index/indexed]
        pickValue: first_non_null
      tumor_sample: {source: pair, valueFrom: $(self).tumor}
      normal_sample: {source: pair, valueFrom: $(self).normal}
      min_tumor_lod: min_tumor_lod
    out: [somatic]
