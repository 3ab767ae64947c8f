cwlVersion: v1.2
class: CommandLineTool
doc: Trim adapters and low-quality ends of a read pair with fastp.
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  ResourceRequirement:
    coresMin: 2
    ramMin: 2000
baseCommand: [fastp, --detect_adapter_for_pe, --html, /dev/null]
inputs:
  sample: string
  fq1:
    type: File
    inputBinding: {prefix: --in1}
  fq2:
    type: File
    inputBinding: {prefix: --in2}
arguments:
  - {prefix: --out1, valueFrom: $(inputs.sample)_R1.trimmed.fastq.gz}
  - {prefix: --out2, valueFrom: $(inputs.sample)_R2.trimmed.fastq.gz}
  - {prefix: --json, valueFrom: $(inputs.sample).fastp.json}
  - {prefix: --thread, valueFrom: $(runtime.cores)}
stderr: fastp.log
outputs:
  r1:
    type: File
    outputBinding: {glob: $(inputs.sample)_R1.trimmed.fastq.gz}
  r2:
    type: File
    outputBinding: {glob: $(inputs.sample)_R2.trimmed.fastq.gz}
  json:
    type: File
    outputBinding: {glob: $(inputs.sample).fastp.json}
