cwlVersion: v1.2
class: CommandLineTool
doc: Mark duplicates in a coordinate-sorted, fixmate'd BAM and index the result.
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  ShellCommandRequirement: {}
  ResourceRequirement:
    coresMin: 2
    ramMin: 2000
inputs:
  sample: string
  bam: File
arguments:
  - shellQuote: false
    valueFrom: >-
      samtools markdup -@ $(runtime.cores) -f $(inputs.sample).markdup.txt
      "$(inputs.bam.path)" $(inputs.sample).bam && samtools index $(inputs.sample).bam
outputs:
  markdup_bam:
    type: File
    outputBinding: {glob: $(inputs.sample).bam}
    secondaryFiles: [.bai]
  stats:
    type: File
    outputBinding: {glob: $(inputs.sample).markdup.txt}
