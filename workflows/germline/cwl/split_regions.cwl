cwlVersion: v1.2
class: CommandLineTool
doc: Cut the genome (from the FASTA index) into n equal-length BED chunks, in order.
hints:
  DockerRequirement:
    dockerPull: awsbatch-genomics:0.1.0
requirements:
  InlineJavascriptRequirement: {}
  ResourceRequirement:
    coresMin: 1
    ramMin: 500
baseCommand: [awk]
inputs:
  reference:
    type: File
    secondaryFiles: [.fai]
  scatter:
    type: int
    default: 4
arguments:
  - prefix: -v
    valueFrom: n=$(inputs.scatter)
  - valueFrom: |
      BEGIN { OFS = "\t" }
      { name[NR] = $1; len[NR] = $2; total += $2 }
      END {
        size = int((total + n - 1) / n); chunk = 0; used = 0
        for (i = 1; i <= NR; i++) {
          start = 0
          while (start < len[i]) {
            end = start + size - used; if (end > len[i]) end = len[i]
            print name[i], start, end > ("chunk_" chunk ".bed")
            used += end - start; start = end
            if (used >= size && chunk < n - 1) { close("chunk_" chunk ".bed"); chunk++; used = 0 }
          }
        }
        for (k = 0; k < n; k++) printf "" >> ("chunk_" k ".bed")
      }
  - valueFrom: $(inputs.reference.path).fai
outputs:
  beds:
    type: File[]
    outputBinding:
      glob: chunk_*.bed
      outputEval: |
        ${ return self.sort(function (a, b) {
             return parseInt(a.basename.slice(6)) - parseInt(b.basename.slice(6)); }); }
