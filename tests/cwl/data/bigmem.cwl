cwlVersion: v1.2
class: CommandLineTool
requirements:
  ResourceRequirement: {ramMin: 100000000, coresMin: 1}
baseCommand: [echo, hi]
inputs: []
outputs: []
