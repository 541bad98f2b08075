"""Shared fixtures for the protocol tests: the pixserve binary, a small
simulated survey, and a repository with it ingested.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/protocol
"""
import json
import os
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pixserve_binary():
    path = os.environ.get("PIXSERVE_BIN", str(ROOT / "build" / "pixserve"))
    if not os.path.exists(path):
        pytest.exit(f"pixserve binary not found at {path}; run `make build` or set PIXSERVE_BIN", 2)
    return path


def run(*args, check=True, **kwargs):
    """Runs pixserve with arguments; returns the CompletedProcess."""
    cmd = [pixserve_binary(), *map(str, args)]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def pixserve():
    return run


# A small survey: enough visits that objects recur, small detectors so the
# whole suite stays fast on two cores.
SURVEY_ARGS = ["--visits", "6", "--detectors", "4", "--detector-size", "256", "--seed", "7"]


@pytest.fixture(scope="session")
def survey_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("survey")
    run("simulate", "--out", out, *SURVEY_ARGS)
    return out


@pytest.fixture(scope="session")
def repo_dir(survey_dir, tmp_path_factory):
    repo = tmp_path_factory.mktemp("repo") / "testrepo"
    run("ingest", "--repo", repo, survey_dir)
    return repo


def query(repo, *args):
    """Datasets as dicts from `pixserve query --format json`."""
    result = run("query", "--repo", repo, "--format", "json", *args)
    return json.loads(result.stdout)
