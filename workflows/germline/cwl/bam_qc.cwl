cwlVersion: v1.2
class: CommandLineTool
doc: BAM QC - samtools flagstat and stats, mosdepth coverage summary.
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
  bam:
    type: File
    secondaryFiles: [.bai]
arguments:
  - shellQuote: false
    valueFrom: >-
      samtools flagstat -@ $(runtime.cores) "$(inputs.bam.path)" > $(inputs.sample).flagstat.txt
      && samtools stats -@ $(runtime.cores) "$(inputs.bam.path)" > $(inputs.sample).stats.txt
      && mosdepth -n -x -t $(runtime.cores) $(inputs.sample) "$(inputs.bam.path)"
outputs:
  flagstat:
    type: File
    outputBinding: {glob: $(inputs.sample).flagstat.txt}
  stats:
    type: File
    outputBinding: {glob: $(inputs.sample).stats.txt}
  mosdepth:
    type: File
    outputBinding: {glob: $(inputs.sample).mosdepth.summary.txt}
