cwlVersion: v1.2
class: CommandLineTool
doc: Mark records with low QUAL or depth as LowQual (kept, not PASS), then index.
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  ShellCommandRequirement: {}
  ResourceRequirement:
    coresMin: 1
    ramMin: 1000
inputs:
  vcf: File
  sample: string
  min_qual:
    type: float
    default: 20
  min_depth:
    type: int
    default: 5
arguments:
  - shellQuote: false
    valueFrom: >-
      bcftools filter -s LowQual
      -e 'QUAL<$(inputs.min_qual) || INFO/DP<$(inputs.min_depth)'
      -Oz -o $(inputs.sample).vcf.gz "$(inputs.vcf.path)"
      && tabix -f -p vcf $(inputs.sample).vcf.gz
outputs:
  filtered:
    type: File
    outputBinding: {glob: $(inputs.sample).vcf.gz}
    secondaryFiles: [.tbi]
