"""The Batch image stays consistent with the local setup and with the workflows' tools."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from ruamel.yaml import YAML

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
APT_LIST = REPO / "packaging" / "apt-packages.txt"
IMAGE = "awsbatch-genomics:0.1.0"
# Every executable the workflows call beyond Debian's essential set (bash, awk, gzip).
WORKFLOW_TOOLS = ("bwa", "samtools", "bcftools", "tabix", "bgzip", "freebayes", "fastp", "mosdepth")


def _apt_packages() -> set[str]:
    lines = APT_LIST.read_text().splitlines()
    return {ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")}


def _instructions() -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]


def test_base_image_is_debian_bookworm() -> None:
    froms = [i for i in _instructions() if i.startswith("FROM ")]
    assert len(froms) == 1
    assert re.fullmatch(r"FROM debian:bookworm(-slim)?", froms[0])


def test_apt_packages_come_from_the_shared_list() -> None:
    instructions = _instructions()
    copy = [i for i in instructions if i.startswith("COPY ") and "apt-packages.txt" in i]
    assert copy and copy[0].split()[1] == "packaging/apt-packages.txt"
    target = copy[0].split()[2]
    runs = [i for i in instructions if i.startswith("RUN ") and target in i]
    assert runs, "no RUN step reads the copied package list"
    assert "apt-get install" in runs[0] and "xargs" in runs[0]
    # No package may be named outside the list, or the image and setup.sh could drift.
    installs = [i for i in instructions if "apt-get install" in i]
    for inst in installs:
        named = re.findall(r"apt-get install ([^&|]*)", inst)
        for words in named:
            extra = [w for w in words.split() if not w.startswith("-")]
            assert set(extra) <= {"ca-certificates"}, f"package named outside the list: {extra}"


def test_project_is_pip_installed_with_all_its_packages() -> None:
    instructions = _instructions()
    copied = {i.split()[1] for i in instructions if i.startswith("COPY ")}
    for package in ("snakemake_executor_awsbatch", "snakemake_executor_plugin_awsbatch",
                    "cwl_runner", "workflows", "pyproject.toml"):  # fmt: skip
        assert package in copied, f"{package} is not copied into the image"
    assert any(re.search(r"pip install [^&]*\.(\s|$)", i) for i in instructions)


def test_every_workflow_tool_is_provided_by_a_listed_package() -> None:
    # dpkg's own database says which package ships each tool; the list must name that package.
    wanted = _apt_packages()
    for tool in WORKFLOW_TOOLS:
        path = f"/usr/bin/{tool}"
        assert shutil.which(path) is not None, f"{tool} is not installed at {path}"
        owner = subprocess.run(["dpkg", "-S", path], capture_output=True, text=True, check=False)
        assert owner.returncode == 0, f"no Debian package owns {path}"
        packages = {p.strip().split(":")[0] for p in owner.stdout.split(": ", 1)[0].split(",")}
        assert packages & wanted, f"{tool} comes from {packages}, which the list lacks"


def test_every_cwl_tool_names_the_project_image() -> None:
    yaml = YAML(typ="safe")
    tools = sorted((REPO / "workflows").glob("*/cwl/*.cwl"))
    assert len(tools) >= 10
    for path in tools:
        doc = yaml.load(path.read_text())
        if doc["class"] != "CommandLineTool":
            continue
        reqs = {**(doc.get("hints") or {}), **(doc.get("requirements") or {})}
        assert reqs.get("DockerRequirement", {}).get("dockerPull") == IMAGE, path.name
    assert f"-t {IMAGE}" in DOCKERFILE.read_text()
