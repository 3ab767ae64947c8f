"""Shared fixtures for the workflow tests: one tiny simulated data set per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from workflows.demo import simulate_data

# Small enough that each workflow runs in seconds on 2 cores, large enough to hold dozens of
# planted germline variants and a handful of somatic ones at every VAF.
REGION_LENGTH = 40_000


@pytest.fixture(scope="session")
def sim_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated reference, reads (normal 30x, tumor 60x) and truth VCFs."""
    out = tmp_path_factory.mktemp("sim")
    return simulate_data(out, region_length=REGION_LENGTH, seed=11)
