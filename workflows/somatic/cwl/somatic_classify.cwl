cwlVersion: v1.2
class: CommandLineTool
doc: >-
  Mark each candidate PASS or REJECT as somatic, with its tumor and normal evidence in
  INFO/FORMAT (workflows.tools.somatic_classify from the project, installed in the image).
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  ResourceRequirement:
    coresMin: 1
    ramMin: 2000
baseCommand: [python3, -m, workflows.tools.somatic_classify]
inputs:
  pair: string
  candidates:
    type: File
    secondaryFiles: [.tbi]
    inputBinding: {prefix: --candidates}
  tumor_bam:
    type: File
    secondaryFiles: [.bai]
    inputBinding: {prefix: --tumor-bam}
  normal_bam:
    type: File
    secondaryFiles: [.bai]
    inputBinding: {prefix: --normal-bam}
  reference:
    type: File
    secondaryFiles: [.fai]
    inputBinding: {prefix: --reference}
  tumor_sample:
    type: string
    inputBinding: {prefix: --tumor-sample}
  normal_sample:
    type: string
    inputBinding: {prefix: --normal-sample}
  min_tumor_lod:
    type: float
    default: 4.0
    doc: lowest tumor log-odds for PASS (see docs/workflows.md for how 4.0 was chosen)
    inputBinding: {prefix: --min-tumor-lod}
arguments:
  - {prefix: --out, valueFrom: $(inputs.pair).somatic.vcf.gz}
outputs:
  somatic:
    type: File
    outputBinding: {glob: $(inputs.pair).somatic.vcf.gz}
    secondaryFiles: [.tbi]
