cwlVersion: v1.2
class: CommandLineTool
doc: >-
  Concatenate per-chunk VCFs, sort, split multiallelics, atomise, left-align, drop exact
  duplicates, and index.
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  ShellCommandRequirement: {}
  InlineJavascriptRequirement: {}
  ResourceRequirement:
    coresMin: 1
    ramMin: 2000
inputs:
  reference:
    type: File
    secondaryFiles: [.fai]
  chunks: File[]
  name: string
arguments:
  - shellQuote: false
    valueFrom: >-
      bcftools concat -Ou $(inputs.chunks.map(function (f) { return '"' + f.path + '"'; }).join(' '))
      | bcftools sort -Ou -T sort1
      | bcftools norm -f "$(inputs.reference.path)" -m -any -Ou
      | bcftools norm -f "$(inputs.reference.path)" -a --atom-overlaps . -Ou
      | bcftools sort -Ou -T sort2
      | bcftools norm -d exact -Oz -o $(inputs.name).vcf.gz
      && tabix -f -p vcf $(inputs.name).vcf.gz
outputs:
  vcf:
    type: File
    outputBinding: {glob: $(inputs.name).vcf.gz}
    secondaryFiles: [.tbi]
