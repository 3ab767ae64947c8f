#!/usr/bin/env bash
# One sample's QC summary as a two-column TSV (metric, value), from the reports of fastp,
# samtools markdup, samtools flagstat, mosdepth and the final VCF. Shell and awk only, so that it
# runs unchanged in the Snakemake and CWL workflows and in any image that has bcftools.
# Usage: qc_summary.sh SAMPLE FASTP_JSON MARKDUP_TXT FLAGSTAT_TXT MOSDEPTH_SUMMARY VCF
set -euo pipefail
sample=$1 fastp=$2 markdup=$3 flagstat=$4 mosdepth=$5 vcf=$6

# fastp's JSON puts summary.before_filtering then summary.after_filtering first in the file.
reads_in=$(grep -m1 '"total_reads"' "$fastp" | tr -dc '0-9')
reads_kept=$(grep -m2 '"total_reads"' "$fastp" | tail -n1 | tr -dc '0-9')
mapped_pct=$(awk '/ mapped \(/ { gsub(/[(%]/, "", $5); print $5; exit }' "$flagstat")
dup_reads=$(awk -F': ' '/^DUPLICATE TOTAL/ { print $2; exit }' "$markdup")
dup_base=$(awk -F': ' '/^READ:/ { print $2; exit }' "$markdup")
mean_depth=$(awk '$1 == "total" { print $4; exit }' "$mosdepth")
count() { bcftools view -H -f PASS "$@" "$vcf" | wc -l; }

printf 'metric\tvalue\n'
printf 'sample\t%s\n' "$sample"
printf 'reads_in\t%s\n' "$reads_in"
printf 'reads_after_trimming\t%s\n' "$reads_kept"
printf 'mapped_percent\t%s\n' "$mapped_pct"
printf 'duplicate_fraction\t%s\n' "$(awk -v d="${dup_reads:-0}" -v n="${dup_base:-0}" \
  'BEGIN { if (n > 0) printf "%.4f", d / n; else print "NA" }')"
printf 'mean_depth\t%s\n' "$mean_depth"
printf 'pass_snvs\t%s\n' "$(count -v snps)"
printf 'pass_indels\t%s\n' "$(count -v indels)"
printf 'filtered_records\t%s\n' "$(bcftools view -H -e 'FILTER="PASS"' "$vcf" | wc -l)"
