cwlVersion: v1.2
class: CommandLineTool
requirements:
  ResourceRequirement: {coresMin: 4096}
baseCommand: [echo, hi]
inputs: []
outputs: []
