cwlVersion: v1.2
class: CommandLineTool
doc: One sample's QC summary (TSV) from the fastp, markdup, flagstat and mosdepth reports.
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  ResourceRequirement:
    coresMin: 1
    ramMin: 500
baseCommand: [python3, -m, workflows.tools.qc_summary]
inputs:
  sample:
    type: string
    inputBinding: {position: 1}
  fastp:
    type: File
    inputBinding: {position: 2}
  markdup:
    type: File
    inputBinding: {position: 3}
  flagstat:
    type: File
    inputBinding: {position: 4}
  mosdepth:
    type: File
    inputBinding: {position: 5}
  vcf:
    type: File
    inputBinding: {position: 6}
arguments:
  - {position: 7, valueFrom: $(inputs.sample).qc.tsv}
outputs:
  summary:
    type: File
    outputBinding: {glob: $(inputs.sample).qc.tsv}
