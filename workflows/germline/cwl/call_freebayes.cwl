cwlVersion: v1.2
class: CommandLineTool
doc: Germline calls in one region chunk with freebayes.
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
  bam:
    type: File
    secondaryFiles: [.bai]
  bed: File
arguments:
  - shellQuote: false
    valueFrom: >-
      freebayes -f "$(inputs.reference.path)" -t "$(inputs.bed.path)"
      --min-mapping-quality 20 --min-base-quality 20 "$(inputs.bam.path)"
      | bgzip -c > calls.vcf.gz
outputs:
  vcf:
    type: File
    outputBinding: {glob: calls.vcf.gz}
