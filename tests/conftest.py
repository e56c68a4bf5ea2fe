"""Shared fixtures: the read-only ../shared material (skipped when absent) and small
generated LLP-format datasets."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AVVP_SHARED", REPO.parent / "shared"))


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Caches (packed splits, weights) go to a per-session temp folder, never ~/.cache."""
    monkeypatch.setenv("AVVP_STREAM_HOME", str(tmp_path_factory.getbasetemp() / "avvp_home"))
    monkeypatch.setenv("AVVP_NO_PROGRESS", "1")


def console_script(name: str) -> list[str]:
    """The installed console script ``name``, as a user runs it: the one beside this
    Python (its virtual environment's bin/), else the one on PATH."""
    beside = Path(sys.executable).parent / name
    path = str(beside) if beside.is_file() else shutil.which(name)
    assert path, f"{name} is not installed: pip install -e ."
    return [path]


def shared_file(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not available (../shared is missing)")
    return path


@pytest.fixture(scope="session")
def llp_dir() -> Path:
    return shared_file("llp")


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory) -> Path:
    """A tiny generated dataset for plumbing tests (not for learning)."""
    from avvp_stream.train.synth import SynthSpec, generate

    return generate(tmp_path_factory.mktemp("synth_small") / "data", SynthSpec(train=24, val=12, test=12, seed=3))
