cwlVersion: v1.2
class: CommandLineTool
doc: Exercises secondaryFiles, Directory inputs and outputs, loadContents and InitialWorkDir.
requirements:
  InlineJavascriptRequirement: {}
  InitialWorkDirRequirement:
    listing:
      - entryname: note.txt
        entry: "label=$(inputs.label.contents.trim())"
baseCommand: [bash, -c]
arguments:
  - |
    set -e
    mkdir -p result
    cp "$0" result/copy.bam
    cp "$0.bai" result/copy.bam.bai
    ls "$1" | sort > result/listing.txt
    cat note.txt > result/note.txt
  - $(inputs.bam.path)
  - $(inputs.refdir.path)
inputs:
  bam:
    type: File
    secondaryFiles: [.bai]
  refdir: Directory
  label:
    type: File
    loadContents: true
outputs:
  result:
    type: Directory
    outputBinding: {glob: result}
  copy:
    type: File
    secondaryFiles: [.bai]
    outputBinding: {glob: result/copy.bam}
