cwlVersion: v1.2
class: CommandLineTool
doc: Germline calls in one region chunk with bcftools mpileup | bcftools call -mv.
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
      bcftools mpileup -f "$(inputs.reference.path)" -R "$(inputs.bed.path)"
      -a FORMAT/AD,FORMAT/DP -q 20 -Q 20 -Ou "$(inputs.bam.path)"
      | bcftools call -m -v -Oz -o calls.vcf.gz
outputs:
  vcf:
    type: File
    outputBinding: {glob: calls.vcf.gz}
