"""Simulated paired-end reads drawn from haplotypes, with somatic draws and substitution errors."""

from __future__ import annotations

import bisect
import gzip
import math
import random
from pathlib import Path
from typing import BinaryIO

from workflows.tools.sim_genome import MAX_INDEL, SUBSTITUTES, Haplotypes, SimParams, Somatic
from workflows.tools.vcf_utils import revcomp

_CHUNK_PAIRS = 20000


class _ReadMaker:
    """Draws read pairs from haplotypes, with fragments, somatic draws and substitution errors."""

    def __init__(self, params: SimParams, haps: Haplotypes, rng: random.Random, somatic: bool):
        """Index somatic positions per haplotype and contig lengths for weighted draws."""
        self._p = params
        self._haps = haps
        self._rng = rng
        self._somatic = somatic
        self._keys = [tuple([s.hap_pos0 for s in pair[h]] for h in (0, 1)) for pair in haps.somatic]
        self._cum: list[int] = []
        total = 0
        for h0, _ in haps.seqs:
            total += len(h0)
            self._cum.append(total)
        self._total = total
        self._log1mp = math.log1p(-params.error_rate) if params.error_rate > 0 else 0.0

    def fragment(self) -> str:
        """Draw one fragment (forward strand of its haplotype, somatic alleles applied)."""
        rng = self._rng
        p = self._p
        c = bisect.bisect_right(self._cum, rng.randrange(self._total))
        h = 0 if rng.random() < 0.5 else 1
        hap = self._haps.seqs[c][h]
        flen = int(rng.gauss(p.fragment_mean, p.fragment_sd))
        flen = max(p.read_length, min(flen, len(hap)))
        start = rng.randrange(len(hap) - flen + 1)
        # Extra bases so a deletion inside the fragment still leaves `flen` bases.
        frag = hap[start : start + flen + MAX_INDEL]
        if self._somatic:
            keys = self._keys[c][h]
            variants = self._haps.somatic[c][h]
            i = bisect.bisect_left(keys, start)
            chosen: list[Somatic] = []
            while i < len(keys) and keys[i] < start + flen:
                if rng.random() < variants[i].p_mutated:
                    chosen.append(variants[i])
                i += 1
            for v in reversed(chosen):
                o = v.hap_pos0 - start
                frag = frag[:o] + v.alt + frag[o + len(v.ref) :]
        return frag[:flen]

    def errors(self, seq: str) -> str:
        """Apply substitution errors at `error_rate` using geometric gaps between errors."""
        if self._log1mp == 0.0:
            return seq
        rng = self._rng
        i = int(math.log(1.0 - rng.random()) / self._log1mp)
        if i >= len(seq):
            return seq
        chars = list(seq)
        while i < len(chars):
            chars[i] = SUBSTITUTES[chars[i]][rng.randrange(3)]
            i += 1 + int(math.log(1.0 - rng.random()) / self._log1mp)
        return "".join(chars)

    def pair(self) -> tuple[str, str]:
        """Draw one read pair (R1, R2), strand chosen at random."""
        frag = self.fragment()
        if self._rng.random() < 0.5:
            frag = revcomp(frag)
        rl = self._p.read_length
        return self.errors(frag[:rl]), self.errors(revcomp(frag)[:rl])


def base_quality(error_rate: float) -> int:
    """Phred quality matching a substitution error rate (capped at 41)."""
    if error_rate <= 0:
        return 41
    return min(41, round(-10 * math.log10(error_rate)))


def _gzip_writer(path: Path, level: int) -> tuple[BinaryIO, gzip.GzipFile]:
    """A gzip stream with no name or time in its header, so output is byte-identical."""
    raw = path.open("wb")
    return raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=level, mtime=0)


def simulate_reads(
    params: SimParams, haps: Haplotypes, sample: str, depth: float, r1: Path, r2: Path
) -> int:
    """Write `depth`-fold paired FASTQ for one sample; returns the number of pairs."""
    rng = random.Random(f"{params.seed}:{sample}")
    maker = _ReadMaker(params, haps, rng, somatic=sample == "tumor")
    n_pairs = round(depth * sum(haps.lengths) / (2 * params.read_length))
    qual = chr(33 + base_quality(params.error_rate)) * params.read_length
    raw1, gz1 = _gzip_writer(r1, params.gzip_level)
    raw2, gz2 = _gzip_writer(r2, params.gzip_level)
    try:
        done = 0
        while done < n_pairs:
            lines1: list[str] = []
            lines2: list[str] = []
            for i in range(done, min(n_pairs, done + _CHUNK_PAIRS)):
                s1, s2 = maker.pair()
                name = f"@{sample}.{i + 1}"
                lines1.append(f"{name}\n{s1}\n+\n{qual[: len(s1)]}\n")
                lines2.append(f"{name}\n{s2}\n+\n{qual[: len(s2)]}\n")
            gz1.write("".join(lines1).encode())
            gz2.write("".join(lines2).encode())
            done += len(lines1)
    finally:
        gz1.close()
        gz2.close()
        raw1.close()
        raw2.close()
    return n_pairs
