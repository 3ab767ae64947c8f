cwlVersion: v1.2
class: CommandLineTool
doc: Align a read pair with bwa mem (read group = sample), then samtools fixmate and sort.
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  ShellCommandRequirement: {}
  ResourceRequirement:
    coresMin: 2
    ramMin: 4000
inputs:
  sample: string
  reference:
    type: File
    secondaryFiles: [.fai, .amb, .ann, .bwt, .pac, .sa]
  r1: File
  r2: File
arguments:
  - shellQuote: false
    valueFrom: >-
      bwa mem -t $(runtime.cores)
      -R '@RG\tID:$(inputs.sample)\tSM:$(inputs.sample)\tLB:$(inputs.sample)\tPL:ILLUMINA'
      "$(inputs.reference.path)" "$(inputs.r1.path)" "$(inputs.r2.path)" 2> bwa.log
      | samtools fixmate -m -u - -
      | samtools sort -@ $(runtime.cores) -m 500M -T sort.tmp -o $(inputs.sample).sorted.bam -
outputs:
  bam:
    type: File
    outputBinding: {glob: $(inputs.sample).sorted.bam}
