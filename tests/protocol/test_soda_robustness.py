"""SODA under hostile operating conditions: the server killed while it
streams cutouts, and a full disk.

- kill -9 during sync cutouts, three times: the spool files those requests
  owned (tar archives are made from cutout files in the spool; a FITS
  response from plain files is streamed without any) are removed when the server starts again (they used to pile up
  forever), and /status reports the spool's size.
- a full disk (a small tmpfs mounted over the spool folder, or over the job
  folder for UWS; skipped with a message where the test cannot mount one):
  the client is told what happened (SODA ServiceUnavailable, 503 with
  Retry-After; a transient UWS error) without any server path, and the
  server keeps serving.
"""
import os
import signal
import subprocess
import time

import pytest
import requests

from conftest import query, run, run_uws_job, start_server, stop_server
from test_services import error_message


@pytest.fixture(scope="module")
def robust_repo(survey_dir, tmp_path_factory):
    repo = tmp_path_factory.mktemp("robust") / "robust"
    run("ingest", "--repo", repo, "--transfer", "hardlink", survey_dir)
    return repo


def spool_files(repo):
    """Cutout files in the spool (every process folder), not the owner locks."""
    root = repo / "cache" / "soda-spool"
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.name != ".owner")


def big_cutout_params(repo):
    """Whole coadd patches (tens of MB each): the server streams them long
    enough for the test to kill it in the middle."""
    coadds = [r["dataset_id"] for r in query(repo, "--type", "deepCoadd") if r["tract"] is not None]
    assert coadds
    return [("ID", c) for c in coadds[:2]]


def spooled(params):
    """As a tar archive, which is streamed from cutout files written to the
    spool first (a FITS response of plain files needs no spool file)."""
    return params + [("RESPONSEFORMAT", "application/x-tar")]


def test_kill_during_sync_cutouts_leaves_no_spool_files(robust_repo):
    params = spooled(big_cutout_params(robust_repo))
    seen = []
    for cycle in range(3):
        srv = start_server(robust_repo)
        responses = []
        try:
            # Requests whose bodies are not read: the server keeps streaming
            # them from the spool until it is killed.
            for _ in range(4):
                r = requests.get(srv.url + "/api/soda/sync", params=params, stream=True, timeout=120)
                assert r.status_code == 200, r.text[:300]
                responses.append(r)
            deadline = time.monotonic() + 30
            while len(spool_files(robust_repo)) < 4 and time.monotonic() < deadline:
                time.sleep(0.1)
            seen.append(len(spool_files(robust_repo)))
            assert seen[-1] >= 4, seen
        finally:
            srv.process.send_signal(signal.SIGKILL)
            srv.process.wait(30)
            for r in responses:
                r.close()
    # What the killed processes left is there until a server starts...
    assert len(spool_files(robust_repo)) >= 4
    srv = start_server(robust_repo)
    try:
        # ... which removes it before it serves.
        assert spool_files(robust_repo) == [], spool_files(robust_repo)
        status = requests.get(srv.url + "/status.json", timeout=60).json()
        soda = next(s for s in status["services"] if s["name"] == "soda")
        spool = next(c for c in soda["checks"] if c["name"] == "spool")
        assert spool["note"].startswith("0 spool file(s)"), spool
        # A finished response leaves nothing behind either.
        for p in (params[:1], spooled(params[:1])):
            r = requests.get(srv.url + "/api/soda/sync", params=p, timeout=120)
            assert r.status_code == 200 and len(r.content) > 1_000_000
        deadline = time.monotonic() + 10
        while spool_files(robust_repo) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert spool_files(robust_repo) == []
    finally:
        assert stop_server(srv) == 0
    # The server removes its own folder when it stops.
    assert list((robust_repo / "cache" / "soda-spool").iterdir()) == []


class SmallDisk:
    """A 2 MiB tmpfs mounted over a folder while the test runs."""

    def __init__(self, path):
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a small tmpfs here to fill a disk ({r.stderr.strip() or r.returncode}); "
                        "run as root on Linux to test disk-full errors")

    def close(self):
        subprocess.run(["umount", "-l", str(self.path)], check=False)


def assert_no_path(text, repo):
    assert str(repo) not in text and "/tmp" not in text and "soda-spool" not in text, text


def test_a_full_disk_is_reported_as_such_on_sync_cutouts(robust_repo):
    disk = SmallDisk(robust_repo / "cache" / "soda-spool")
    try:
        srv = start_server(robust_repo)
        try:
            r = requests.get(srv.url + "/api/soda/sync", params=spooled(big_cutout_params(robust_repo)[:1]),
                             timeout=120)
            message = error_message(r, 503)
            assert message.startswith("ServiceUnavailable: no space left on the server"), message
            assert int(r.headers["Retry-After"]) > 0
            assert_no_path(r.text, robust_repo)
            # Nothing half-written stays on the full disk, and the server is fine.
            assert spool_files(robust_repo) == []
            assert srv.process.poll() is None
            small = query(robust_repo, "--type", "calexp")[0]["dataset_id"]
            ok = requests.get(srv.url + "/api/soda/sync", params={"ID": small, "PIXEL": "[1:20,1:20]"}, timeout=60)
            assert ok.status_code == 200 and ok.headers["Content-Type"] == "application/fits"
        finally:
            assert stop_server(srv) == 0
    finally:
        disk.close()


def test_a_full_disk_is_a_transient_uws_error_on_async_cutouts(robust_repo):
    disk = SmallDisk(robust_repo / "jobs")
    try:
        srv = start_server(robust_repo)
        try:
            url, job = run_uws_job(srv.url, "/api/soda/async", big_cutout_params(robust_repo)[:1] + [("PHASE", "RUN")])
            assert job.phase == "ERROR"
            assert job.errorsummary.type_ == "transient"
            document = requests.get(url, timeout=60).text
            assert "ServiceUnavailable: no space left on the server" in document, document
            error = requests.get(url + "/error", timeout=60).text
            assert "ServiceUnavailable: no space left on the server" in error, error
            assert_no_path(document + error, robust_repo)
            assert srv.process.poll() is None
            requests.delete(url, timeout=60)
        finally:
            assert stop_server(srv) == 0
    finally:
        disk.close()
