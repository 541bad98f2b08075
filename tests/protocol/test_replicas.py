"""Several `pixserve serve` replicas of one repository (shared files, one
PostgreSQL registry) behind HAProxy, as docs/deployment.md describes them:
any replica answers for any job, a replica killed with SIGKILL under load
costs no request that reached a live one, its jobs are taken over when their
leases expire, and an ABORT sent to one replica stops the job (and its
PostgreSQL statement) where another runs it.

HAProxy (Debian's haproxy) and the replicas run on loopback ports of their
own; the PostgreSQL server is the private one of conftest.postgresql_registry().
"""
import io
import signal
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse_single_table
from pyvo.dal import sia2, tap
from pyvo.io import uws

from conftest import pixserve_binary, postgresql_registry, query, run, start_listening, stop_server

REPLICAS = 3
CLIENTS = 20
# Short leases so that a takeover happens within the test.
CONFIG = "jobs:\n  lease_s: 2\n  poll_interval_s: 0.2\n  threads: 2\n"
CONE = (53.0, -28.0, 0.05)
ADQL = ("SELECT obs_id, s_ra, s_dec FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE('ICRS', 53, -28, 0.05)) = 1 "
        "ORDER BY obs_id")
SLOW_ADQL = ("SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, TAP_SCHEMA.columns AS c, "
             "TAP_SCHEMA.columns AS d")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(url, sql):
    out = subprocess.run(["psql", "-tA", url, "-c", sql], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line.strip()]


class Cluster:
    """REPLICAS servers on fixed loopback ports and HAProxy in front of them,
    checking each on its VOSI availability endpoint."""

    def __init__(self, repo, work):
        self.repo = repo
        self.config = work / "replica.yaml"
        self.config.write_text(CONFIG)
        self.ports = [free_port() for _ in range(REPLICAS)]
        self.replicas = [None] * REPLICAS
        for i in range(REPLICAS):
            self.start(i)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        haproxy_cfg = work / "haproxy.cfg"
        servers = "\n".join(f"  server r{i} 127.0.0.1:{p} check" for i, p in enumerate(self.ports))
        haproxy_cfg.write_text(f"""global
  maxconn 1024
defaults
  mode http
  timeout connect 1s
  timeout client 120s
  timeout server 120s
  retries 3
  option redispatch 1
  retry-on conn-failure empty-response
frontend pixserve
  bind 127.0.0.1:{self.port}
  default_backend replicas
backend replicas
  balance roundrobin
  option httpchk GET /api/sia/availability
  http-check expect string <avail:available>true</avail:available>
  default-server inter 300ms fall 2 rise 1
{servers}
""")
        subprocess.run(["haproxy", "-c", "-q", "-f", str(haproxy_cfg)], check=True)
        self.haproxy = subprocess.Popen(["haproxy", "-db", "-f", str(haproxy_cfg)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(self.url + "/api/sia/availability", timeout=5).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "HAProxy did not start"
            time.sleep(0.1)

    def start(self, i):
        cmd = [pixserve_binary(), "serve", "--repo", str(self.repo), "--host", "127.0.0.1", "--port",
               str(self.ports[i]), "--config", str(self.config)]
        self.replicas[i] = start_listening(cmd)

    def replica_url(self, i):
        return f"http://127.0.0.1:{self.ports[i]}"

    def replica_of_pid(self, pid):
        return next((i for i, r in enumerate(self.replicas) if r.process.pid == pid), None)

    def kill(self, i):
        self.replicas[i].process.send_signal(signal.SIGKILL)
        self.replicas[i].process.wait(10)

    def stop(self):
        self.haproxy.terminate()
        self.haproxy.wait(10)
        for r in self.replicas:
            if r.process.poll() is None:
                stop_server(r)


@pytest.fixture(scope="module")
def cluster(survey_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("replicas")
    url = postgresql_registry()
    repo = work / "repo"
    run("ingest", "--repo", repo, "--registry", url, "--no-virtual", survey_dir)
    c = Cluster(repo, work)
    c.registry_url = url
    yield c
    c.stop()


def submit(url, data):
    """POSTs a job as a patient client does: a 503 (busy, Retry-After) is
    tried again a few times."""
    for _ in range(5):
        r = requests.post(url, data=data, allow_redirects=False, timeout=60)
        if r.status_code != 503:
            return r
        time.sleep(float(r.headers.get("Retry-After", "1")))
    return r


def job_url(response, base):
    assert response.status_code == 303, response.text[-700:]
    location = response.headers["Location"]
    return location if location.startswith("http") else base + location


def parse_job(url):
    r = requests.get(url, timeout=60)
    assert r.status_code == 200, (url, r.status_code, r.text[:500])
    return uws.parse_job(io.BytesIO(r.content)), r.text


def wait_final(url, timeout=180):
    deadline = time.monotonic() + timeout
    while True:
        job, text = parse_job(url)
        if job.phase in ("COMPLETED", "ERROR", "ABORTED"):
            return job, text
        assert time.monotonic() < deadline, f"job {url} still {job.phase}"
        time.sleep(0.2)


def lease_owner_pid(cluster, job):
    """The process of the replica whose worker holds the job's lease."""
    job_id = job.rstrip("/").rsplit("/", 1)[1]
    rows = psql(cluster.registry_url,
                f"SELECT lease_owner FROM uws_job WHERE job_id = '{job_id}' AND phase = 'EXECUTING'")
    return int(rows[0].split("/")[1]) if rows else None


def cutout_pixels(content):
    with fits.open(io.BytesIO(content)) as hdus:
        return [np.array(h.data) for h in hdus if h.data is not None]


def test_replicas_under_load_survive_a_kill(cluster):
    calexp = query(cluster.repo, "--type", "calexp", "--pos", "53,-28,0.05")[0]
    soda_params = [("ID", calexp["dataset_id"]), ("CIRCLE", f"{calexp['s_ra']} {calexp['s_dec']} 0.005")]
    # The answers of one replica alone, before any load.
    one = cluster.replica_url(0)
    sia_expected = sorted(str(r["obs_id"]) for r in sia2.SIAService(one + "/api/sia").search(pos=CONE))
    tap_expected = [str(r["obs_id"]) for r in tap.TAPService(one + "/api/tap").search(ADQL)]
    soda_sync = requests.get(one + "/api/soda/sync", params=soda_params, timeout=60)
    assert soda_sync.status_code == 200, soda_sync.text[:500]
    soda_expected = cutout_pixels(soda_sync.content)
    assert sia_expected and tap_expected and soda_expected

    # A long SODA job (1200 cutouts) to be running when its replica dies.
    long_params = [("ID", calexp["dataset_id"])] * 400 + [
        ("CIRCLE", f"{calexp['s_ra']} {calexp['s_dec']} {0.004 + k * 0.001}") for k in range(3)]
    long_job = job_url(submit(cluster.url + "/api/soda/async", long_params + [("PHASE", "RUN")]), cluster.url)

    stop = threading.Event()
    lock = threading.Lock()
    failures, counts, jobs = [], {"sia": 0, "tap": 0, "tap-async": 0, "soda-async": 0}, []
    kill_window = {}

    def record_failure(kind, method, error):
        with lock:
            failures.append((time.monotonic(), kind, method, error))

    def client(n):
        sia = sia2.SIAService(cluster.url + "/api/sia")
        tap_service = tap.TAPService(cluster.url + "/api/tap")
        i = n
        while not stop.is_set():
            kind = ("sia", "tap", "tap-async", "soda-async")[i % 4]
            i += 1
            try:
                if kind == "sia":
                    got = sorted(str(r["obs_id"]) for r in sia.search(pos=CONE))
                    assert got == sia_expected, got
                elif kind == "tap":
                    got = [str(r["obs_id"]) for r in tap_service.search(ADQL)]
                    assert got == tap_expected, got
                else:
                    path, data = (("/api/tap/async", [("LANG", "ADQL"), ("QUERY", ADQL)]) if kind == "tap-async"
                                  else ("/api/soda/async", soda_params))
                    try:
                        r = requests.post(cluster.url + path, data=data + [("PHASE", "RUN")],
                                          allow_redirects=False, timeout=60)
                    except requests.ConnectionError as e:
                        record_failure(kind, "POST", repr(e))
                        continue
                    if r.status_code != 303:
                        record_failure(kind, "POST", f"{r.status_code} {r.text[:200]}")
                        continue
                    with lock:
                        jobs.append((kind, job_url(r, cluster.url)))
                with lock:
                    counts[kind] += 1
            except Exception as e:  # noqa: BLE001 - every failure is recorded and judged below
                # pyvo sends SIAv2 queries as GET, TAP queries as POST.
                record_failure(kind, "GET" if kind == "sia" else "POST", repr(e))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        # Kill the replica that runs the long job, while it runs it.
        deadline = time.monotonic() + 60
        while (pid := lease_owner_pid(cluster, long_job)) is None:
            assert time.monotonic() < deadline, "the long job never started"
            time.sleep(0.1)
        victim = cluster.replica_of_pid(pid)
        assert victim is not None, pid
        time.sleep(0.3)
        kill_window["start"] = time.monotonic()
        cluster.kill(victim)
        kill_window["end"] = time.monotonic() + 3  # until HAProxy's checks (300 ms, fall 2) mark it down
        time.sleep(3)
        cluster.start(victim)
        time.sleep(2)
    finally:
        stop.set()
        for t in threads:
            t.join(120)

    # Requests: every failure is a job submission (not retried by HAProxy:
    # POST) that was on the killed replica when it died; reads never fail.
    for when, kind, method, error in failures:
        assert method == "POST" and kill_window["start"] <= when <= kill_window["end"], (kind, method, error)
        assert any(s in error for s in ("502", "503", "Bad Gateway", "Connection")), error
    assert len(failures) <= CLIENTS, failures
    assert all(counts[k] > 0 for k in counts), counts

    # Jobs: each ends COMPLETED (or ERROR with a reason); none is lost; any
    # replica answers for any of them; results are the same as one replica's.
    for kind, url in jobs:
        job, text = wait_final(url)
        assert job.phase == "COMPLETED" or (job.phase == "ERROR" and job.errorsummary.message), text
        if job.phase != "COMPLETED":
            continue
        result = requests.get(url + "/results/" + job.results[0].id_, timeout=60)
        assert result.status_code == 200, result.text[:300]
        if kind == "tap-async":
            table = parse_single_table(io.BytesIO(result.content)).to_table()
            assert [str(v) for v in table["obs_id"]] == tap_expected
        else:
            for got, want in zip(cutout_pixels(result.content), soda_expected):
                np.testing.assert_array_equal(got, want)
    # The long job: taken over after the lease of the killed replica expired.
    job, text = wait_final(long_job, timeout=300)
    assert job.phase == "COMPLETED", text
    assert "<attempts>2</attempts>" in text, text
    assert len(job.results) >= 1
    for i in range(REPLICAS):  # the job as every replica sees it
        assert requests.get(cluster.replica_url(i) + long_job[len(cluster.url):] + "/phase",
                            timeout=60).text.strip() == "COMPLETED"


def test_abort_through_another_replica_stops_the_query_in_postgresql(cluster):
    job = job_url(submit(cluster.url + "/api/tap/async", {"LANG": "ADQL", "QUERY": SLOW_ADQL, "PHASE": "RUN"}),
                  cluster.url)

    def running():
        return [q for q in psql(cluster.registry_url,
                                "SELECT query FROM pg_stat_activity WHERE state = 'active' "
                                "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")
                if "tap_schema_columns" in q]

    deadline = time.monotonic() + 30
    while not running() or lease_owner_pid(cluster, job) is None:
        assert time.monotonic() < deadline, "the job's query never reached the server"
        time.sleep(0.1)
    runner = cluster.replica_of_pid(lease_owner_pid(cluster, job))
    other = (runner + 1) % REPLICAS
    path = job[len(cluster.url):]
    r = requests.post(cluster.replica_url(other) + path + "/phase", data={"PHASE": "ABORT"}, allow_redirects=False,
                      timeout=60)
    assert r.status_code == 303, r.text[:300]
    # The runner hears of it at its next heartbeat (0.2 s here) and cancels
    # the statement in PostgreSQL.
    deadline = time.monotonic() + 5
    while running() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running() == []
    for i in range(REPLICAS):
        assert requests.get(cluster.replica_url(i) + path + "/phase", timeout=60).text.strip() == "ABORTED"


def test_a_stopping_replica_hands_its_job_to_another(cluster):
    """SIGTERM (a drain for an upgrade): the job running there goes back to
    the queue, another replica runs it to completion, and the attempt is not
    counted as a failure."""
    calexp = query(cluster.repo, "--type", "calexp", "--pos", "53,-28,0.05")[0]
    params = [("ID", calexp["dataset_id"])] * 400 + [
        ("CIRCLE", f"{calexp['s_ra']} {calexp['s_dec']} {0.004 + k * 0.001}") for k in range(3)]
    job = job_url(submit(cluster.url + "/api/soda/async", params + [("PHASE", "RUN")]), cluster.url)
    deadline = time.monotonic() + 60
    while (pid := lease_owner_pid(cluster, job)) is None:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)
    victim = cluster.replica_of_pid(pid)
    assert stop_server(cluster.replicas[victim]) == 0
    try:
        final, text = wait_final(job, timeout=300)
        assert final.phase == "COMPLETED", text
        assert "<attempts>" not in text, text  # one attempt that counted
    finally:
        cluster.start(victim)


def test_an_ingest_while_replicas_serve_appears_all_at_once(cluster, survey_dir):
    """Ingest is one transaction: a query through any replica sees none of a
    new collection's datasets or all of them, never a part."""
    seen, errors = [], []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            r = requests.get(cluster.url + "/api/sia/query", params={"COLLECTION": "LATE", "MAXREC": 100000},
                             timeout=60)
            if r.status_code != 200:
                errors.append(r.text[:300])
            seen.append(r.text.count("<TR>"))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        run("ingest", "--repo", cluster.repo, "--collection", "LATE", "--no-virtual", "--transfer", "symlink",
            survey_dir / "calexp")
        time.sleep(1)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    total = requests.get(cluster.url + "/api/sia/query", params={"COLLECTION": "LATE", "MAXREC": 100000},
                         timeout=60).text.count("<TR>")
    assert total > 0 and errors == [], errors
    assert set(seen) <= {0, total}, sorted(set(seen))
    assert seen.count(0) > 0 and seen.count(total) > 0, (seen.count(0), seen.count(total))
