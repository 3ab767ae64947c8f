cwlVersion: v1.2
class: CommandLineTool
doc: >-
  Combine the freebayes and bcftools calls: union (shared sites plus single-caller calls with
  QUAL >= single_caller_min_qual), consensus (shared sites only), or one caller alone.
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  ShellCommandRequirement: {}
  ResourceRequirement:
    coresMin: 1
    ramMin: 1000
inputs:
  freebayes:
    type: File
    secondaryFiles: [.tbi]
  bcftools:
    type: File
    secondaryFiles: [.tbi]
  mode:
    type: string
    default: union
  single_caller_min_qual:
    type: float
    default: 30
arguments:
  - shellQuote: false
    valueFrom: >-
      set -e;
      case $(inputs.mode) in
      bcftools) bcftools view -Oz -o combined.vcf.gz "$(inputs.bcftools.path)" ;;
      freebayes) bcftools view -Oz -o combined.vcf.gz "$(inputs.freebayes.path)" ;;
      consensus)
      bcftools isec -c none -Oz -p isec "$(inputs.freebayes.path)" "$(inputs.bcftools.path)"
      && bcftools view -Oz -o combined.vcf.gz isec/0002.vcf.gz ;;
      union)
      bcftools isec -c none -Oz -p isec "$(inputs.freebayes.path)" "$(inputs.bcftools.path)"
      && bcftools view -i 'QUAL>=$(inputs.single_caller_min_qual)' -Oz -o isec/fb.vcf.gz isec/0000.vcf.gz
      && bcftools view -i 'QUAL>=$(inputs.single_caller_min_qual)' -Oz -o isec/bc.vcf.gz isec/0001.vcf.gz
      && bcftools concat -Ou isec/0002.vcf.gz isec/fb.vcf.gz isec/bc.vcf.gz
      | bcftools sort -Oz -T isec/sort -o combined.vcf.gz ;;
      *) echo "combine mode must be union, consensus, bcftools or freebayes" >&2; exit 2 ;;
      esac
outputs:
  vcf:
    type: File
    outputBinding: {glob: combined.vcf.gz}
