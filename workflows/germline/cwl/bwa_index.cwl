cwlVersion: v1.2
class: CommandLineTool
doc: Copy a FASTA (gzip or plain) and build its samtools faidx and bwa indexes next to it.
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  ShellCommandRequirement: {}
  ResourceRequirement:
    coresMin: 1
    ramMin: 4000
inputs:
  reference:
    type: File
    doc: the genome FASTA
arguments:
  - shellQuote: false
    valueFrom: >-
      case "$(inputs.reference.path)" in *.gz) gzip -dc "$(inputs.reference.path)" ;;
      *) cat "$(inputs.reference.path)" ;; esac > genome.fa
      && samtools faidx genome.fa && bwa index genome.fa 2> bwa_index.log
outputs:
  indexed:
    type: File
    outputBinding:
      glob: genome.fa
    secondaryFiles: [.fai, .amb, .ann, .bwt, .pac, .sa]
