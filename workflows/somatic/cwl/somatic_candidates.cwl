cwlVersion: v1.2
class: CommandLineTool
doc: >-
  Joint tumor/normal candidate calls in one region chunk with freebayes --pooled-continuous, so
  that low-fraction tumor alleles become candidates with per-sample allele depths.
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  ShellCommandRequirement: {}
  ResourceRequirement:
    coresMin: 1
    ramMin: 2000
inputs:
  reference:
    type: File
    secondaryFiles: [.fai]
  tumor_bam:
    type: File
    secondaryFiles: [.bai]
  normal_bam:
    type: File
    secondaryFiles: [.bai]
  bed: File
  min_alt_fraction:
    type: float
    default: 0.03
  min_alt_count:
    type: int
    default: 2
arguments:
  - shellQuote: false
    valueFrom: >-
      freebayes -f "$(inputs.reference.path)" -t "$(inputs.bed.path)" --pooled-continuous
      --min-alternate-fraction $(inputs.min_alt_fraction)
      --min-alternate-count $(inputs.min_alt_count)
      --min-mapping-quality 20 --min-base-quality 20 --allele-balance-priors-off
      "$(inputs.tumor_bam.path)" "$(inputs.normal_bam.path)" | bgzip -c > candidates.vcf.gz
outputs:
  vcf:
    type: File
    outputBinding: {glob: candidates.vcf.gz}
