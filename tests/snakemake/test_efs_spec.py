"""Parsing `--awsbatch-efs` mount specs."""

from __future__ import annotations

import pytest

from snakemake_executor_awsbatch.efs_spec import format_efs_mount, parse_efs_mount, parse_efs_mounts
from snakemake_executor_awsbatch.errors import UserError
from snakemake_executor_awsbatch.taskspec import EfsMount

FS = "fs-0123456789abcdef0"
AP = "fsap-0123456789abcdef0"


def test_minimal_mount_is_read_only_at_the_root() -> None:
    assert parse_efs_mount(f"{FS}:/ref") == EfsMount(
        file_system_id=FS, container_path="/ref", root_directory="/", read_only=True
    )


def test_root_directory_mode_and_access_point() -> None:
    mount = parse_efs_mount(f"{FS}:/genomes/hg38:/ref:rw")
    assert (mount.root_directory, mount.container_path, mount.read_only) == (
        "/genomes/hg38",
        "/ref",
        False,
    )
    with_ap = parse_efs_mount(f"{FS}:/ref:ro:{AP}")
    assert with_ap.access_point_id == AP and with_ap.read_only
    only_ap = parse_efs_mount(f"{FS}:/ref:{AP}")
    assert only_ap.access_point_id == AP and only_ap.read_only


def test_format_round_trips() -> None:
    for text in (f"{FS}:/ref:ro", f"{FS}:/data/x:/mnt/x:rw", f"{FS}:/ref:ro:{AP}"):
        assert format_efs_mount(parse_efs_mount(text)) == text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("/ref", "no container path"),
        ("efs-123:/ref", "not a file system id"),
        (f"{FS}:ref", "not absolute"),
        (f"{FS}:/ref:maybe", "ro, rw or an access point"),
        (f"{FS}:/sub:/ref:ro:{AP}", "root directory /sub together with access point"),
        (f"{FS}:/", "hide the container's root"),
        (f"{FS}:/a/../b", "'..'"),
        (f"{FS}:/ref:ro:rw", "ro, rw or an access point"),
    ],
)
def test_malformed_mounts_are_one_sentence_errors(text: str, fragment: str) -> None:
    with pytest.raises(UserError) as info:
        parse_efs_mount(text)
    message = str(info.value)
    assert fragment in message
    assert message.endswith(".") and "\n" not in message


def test_duplicate_container_paths_are_refused() -> None:
    with pytest.raises(UserError, match="container path /ref"):
        parse_efs_mounts([f"{FS}:/ref", f"{FS}:/other:/ref"])
    assert len(parse_efs_mounts([f"{FS}:/ref", f"{FS}:/x:/x", ""])) == 2
