cwlVersion: v1.2
class: CommandLineTool
baseCommand: echo
inputs:
  x: {type: NotAType}
outputs: []
