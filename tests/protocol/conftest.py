"""Shared fixtures for the protocol tests: the pixserve binary, a small
simulated survey, and a repository with it ingested.

Run with Debian's interpreter: /usr/bin/python3 -m pytest tests/protocol
"""
import atexit
import io
import json
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import threading
import time

import pytest
import requests
from astropy.io import fits
from pyvo.io import uws

ROOT = pathlib.Path(__file__).resolve().parents[2]


def pixserve_binary():
    path = os.environ.get("PIXSERVE_BIN", str(ROOT / "build" / "pixserve"))
    if not os.path.exists(path):
        pytest.exit(f"pixserve binary not found at {path}; run `make build` or set PIXSERVE_BIN", 2)
    return path


# PIXSERVE_TEST_REGISTRY=postgresql runs the suite on PostgreSQL registries:
# every repository an `ingest` creates gets a database of its own on a
# private server (scripts/postgresql-test-server.sh), started on first use
# by each test process and stopped when it exits.
_postgresql = {}


def postgresql_test_server(command, *dirs):
    """Runs `scripts/postgresql-test-server.sh COMMAND DIR...` (start, stop,
    down, up, standby); returns what it prints (a URL for start and standby)."""
    done = subprocess.run(["sh", str(ROOT / "scripts" / "postgresql-test-server.sh"), command, *map(str, dirs)],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"postgresql-test-server.sh {command} failed:\n{done.stderr}")
    return done.stdout.strip()


def postgresql_registry():
    """The URL of a new, empty database on this process's test server."""
    if "url" not in _postgresql:
        state = tempfile.mkdtemp(prefix="pixserve-pg-state-")
        _postgresql.update(url=postgresql_test_server("start", state), made=0)
        atexit.register(lambda: postgresql_test_server("stop", state))
    _postgresql["made"] += 1
    name = f"registry_{os.getpid()}_{_postgresql['made']}"
    subprocess.run(["psql", "-q", _postgresql["url"], "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True, timeout=60)
    return _postgresql["url"].rsplit("/", 1)[0] + "/" + name


def on_test_registry(args):
    """`args` of a pixserve command, an ingest that creates a repository
    placed on the backend this run tests."""
    if os.environ.get("PIXSERVE_TEST_REGISTRY", "sqlite") != "postgresql" or not args or args[0] != "ingest":
        return args
    if "--registry" in args or "--repo" not in args:
        return args
    repo = pathlib.Path(args[args.index("--repo") + 1])
    if (repo / "pixserve-repo.json").exists():
        return args
    return [*args, "--registry", postgresql_registry()]


def registry_execute(repo, sql, params=()):
    """Runs one statement on a repository's registry database, SQLite file
    or PostgreSQL, behind the server's back (tests that plant what an older
    version or an intruder could have left). '?' placeholders take params."""
    location = json.loads((pathlib.Path(repo) / "pixserve-repo.json").read_text())["registry"]
    if not location.startswith(("postgresql://", "postgres://")):
        import sqlite3

        path = pathlib.Path(location)
        with sqlite3.connect(path if path.is_absolute() else pathlib.Path(repo) / path) as db:
            db.execute(sql, params)
        return
    literals = iter("'" + str(p).replace("'", "''") + "'" for p in params)
    statement = re.sub(r"\?", lambda _: next(literals), sql)
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", location, "-c", statement], check=True,
                   capture_output=True)


def run(*args, check=True, **kwargs):
    """Runs pixserve with arguments; returns the CompletedProcess."""
    cmd = [pixserve_binary(), *on_test_registry(list(map(str, args)))]
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


class RepeatedRequests:
    """A context manager around a fault: from __enter__ to __exit__ one
    thread per kind calls self.ask(kind) over and over (with `pause` seconds
    between calls), recording what it sees as the subclass decides."""

    pause = 0.0

    def __init__(self, kinds):
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._repeat, args=(kind,), daemon=True) for kind in kinds]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(120)

    def _repeat(self, kind):
        while not self.stop.is_set():
            self.ask(kind)
            if self.pause:
                time.sleep(self.pause)

    def ask(self, kind):
        raise NotImplementedError


class Server:
    """A running `pixserve serve`: its base URL and its log so far."""

    def __init__(self, process, url, log_lines):
        self.process = process
        self.url = url
        self.log_lines = log_lines

    def log(self):
        return "".join(self.log_lines)


def start_server(repo, *extra_args, timeout=60, preexec_fn=None, env=None):
    """Starts `pixserve serve` on a free loopback port and waits for its
    "listening on http://127.0.0.1:PORT" line. preexec_fn runs in the child
    before the server starts (e.g. to set resource limits); env adds
    environment variables."""
    cmd = [pixserve_binary(), "serve", "--repo", str(repo), "--host", "127.0.0.1", "--port", "0", *map(str, extra_args)]
    return start_listening(cmd, timeout, preexec_fn, env)


def start_listening(cmd, timeout=60, preexec_fn=None, env=None):
    """Starts a server command and waits for its "listening on
    http://127.0.0.1:PORT" line."""
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
                               preexec_fn=preexec_fn, env={**os.environ, **env} if env else None)
    lines = []
    found = threading.Event()
    url = {}

    def reader():
        for line in process.stdout:
            lines.append(line)
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if m and not found.is_set():
                url["url"] = m.group(1)
                found.set()
        found.set()

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + timeout
    while not found.wait(0.1):
        if time.monotonic() > deadline:
            break
    if "url" not in url:
        process.kill()
        process.wait()
        raise AssertionError(f"{' '.join(cmd)} did not start:\n{''.join(lines)}")
    return Server(process, url["url"], lines)


def stop_server(server, timeout=30):
    """SIGTERM, as an init system would; returns the exit status."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()
            raise AssertionError("pixserve serve did not stop within 30 s of SIGTERM")
    return server.process.returncode


@pytest.fixture(scope="session")
def server(repo_dir):
    """`pixserve serve` on the test repository for the whole session."""
    srv = start_server(repo_dir)
    yield srv
    status = stop_server(srv)
    assert status == 0, f"pixserve serve exited with {status} after SIGTERM:\n{srv.log()[-3000:]}"


def run_uws_job(base_url, path, params, headers=None, timeout=120):
    """POSTs a UWS job with PHASE=RUN, waits until it ends; returns (job
    URL, the job parsed by pyvo's UWS parser)."""
    r = requests.post(base_url + path, data=params, headers=headers or {}, allow_redirects=False, timeout=60)
    assert r.status_code == 303, r.text[:300]
    url = r.headers["Location"]
    url = url if url.startswith("http") else base_url + url
    deadline = time.monotonic() + timeout
    while True:
        job = uws.parse_job(io.BytesIO(requests.get(url, headers=headers or {}, timeout=60).content))
        if job.phase in ("COMPLETED", "ERROR", "ABORTED") or time.monotonic() > deadline:
            return url, job
        time.sleep(0.1)


def template_visits(survey):
    """The visits a simulated survey's template patches (goodSeeingCoadd) were made from."""
    visits = set()
    for path in pathlib.Path(survey).rglob("goodSeeingCoadd_*.fits"):
        with fits.open(path) as hdul:
            visits.update(int(v) for v in hdul["INPUTS"].data["VISIT"])
    return visits
