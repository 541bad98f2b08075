"""Reads from a hot standby of a PostgreSQL registry (streaming replication,
`pg_basebackup -R`): a server configured with the standby (registry.standbys)
answers SIAv2, TAP (sync and async) and DataLink exactly as a server on the
primary alone does, and the queries really run on the standby
(pg_stat_activity there); a dataset ingested on the primary appears once
the standby has replayed it; a standby whose replay lags beyond the bound
is skipped for the primary; and a standby that stops while clients query
costs no failed request (its reads run again on the primary).

The primary and the standby are this module's own
(scripts/postgresql-test-server.sh start and standby), on loopback ports."""
import subprocess
import time
import xml.etree.ElementTree as ET

import pytest
import requests
from pyvo.dal import sia2, tap

from conftest import RepeatedRequests, postgresql_test_server, run, run_uws_job, start_server, stop_server

NS_AVAIL = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
CONE = (53.0, -28.0, 0.2)
ADQL = ("SELECT obs_id, s_region, obs_collection FROM ivoa.obscore "
        "WHERE INTERSECTS(s_region, CIRCLE('ICRS', 53, -28, 0.2)) = 1 ORDER BY obs_id")
# What the server's sessions are called (PGAPPNAME), to tell them in
# pg_stat_activity from the other server's.
APP = "pixserve-replica-test"
# The SQL of the registry's dataset search (SIAv2, DataLink, SODA lookups).
REGISTRY_SEARCH = "SELECT dataset_key, dataset_id, dataset_type"
# A TAP query that runs until it is aborted (its SQL names the TAP_SCHEMA
# table); a TAP session's last statement is otherwise the end of its
# read-only transaction.
SLOW_ADQL = ("SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, TAP_SCHEMA.columns AS c, "
             "TAP_SCHEMA.columns AS d")
TAP_QUERY = '"tap_schema_columns"'


def psql(url, sql):
    out = subprocess.run(["psql", "-tA", "-F", "\t", url, "-c", sql], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split("\t") for line in out.stdout.splitlines() if line]


def last_queries(url, state=None):
    """The last statement of each session of the replica-reading server on
    the server at url (of the sessions in `state` only, e.g. active)."""
    where = f"application_name = '{APP}'" + (f" AND state = '{state}'" if state else "")
    return [row[0] for row in psql(url, f"SELECT query FROM pg_stat_activity WHERE {where}")]


def standby_note(server):
    root = ET.fromstring(requests.get(server.url + "/api/sia/availability", timeout=60).content)
    notes = [n.text for n in root.findall(f"{{{NS_AVAIL}}}note")]
    assert root.findtext(f"{{{NS_AVAIL}}}available") == "true", notes
    return next(n for n in notes if n.startswith("registry standbys"))


def wait_for(what, condition, timeout=30):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        time.sleep(0.2)


def wait_for_replay(primary_url, standby_url, timeout=60):
    """Waits until the standby has replayed everything the primary has
    written so far."""
    (lsn,), = psql(primary_url, "SELECT pg_current_wal_lsn()")
    wait_for("the standby replaying the primary's WAL up to " + lsn, lambda: psql(
        standby_url, f"SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '{lsn}') >= 0")[0][0] == "t", timeout)


@pytest.fixture(scope="module")
def cluster(survey_dir, tmp_path_factory):
    """A primary with the repository's registry, a hot standby of it, a
    server on the primary alone and a server that reads from the standby."""
    primary_state = tmp_path_factory.mktemp("pg-primary")
    standby_state = tmp_path_factory.mktemp("pg-standby")
    primary_url = postgresql_test_server("start", primary_state)
    servers = []
    try:
        # The standby first: the registry reaches it by streaming replication.
        standby_url = postgresql_test_server("standby", primary_state, standby_state)
        repo = tmp_path_factory.mktemp("pg-replicas") / "repo"
        run("ingest", "--repo", repo, "--registry", primary_url, "--no-virtual", survey_dir)
        # A standby may serve reads up to standby_max_lag_s behind the
        # primary (by design); the tests below compare its answers with the
        # primary's, so they start once it has replayed the whole ingest.
        wait_for_replay(primary_url, standby_url)
        config = tmp_path_factory.mktemp("pg-replicas-config") / "pixserve.yaml"
        config.write_text(f"registry:\n  standbys: [{standby_url}]\n  standby_max_lag_s: 5\n")
        servers.append(start_server(repo))
        servers.append(start_server(repo, "--config", config, env={"PGAPPNAME": APP}))
        wait_for("the standby serving reads", lambda: "standby 1: serving reads" in standby_note(servers[1]))
        yield {"primary": primary_url, "standby": standby_url, "standby_state": standby_state, "repo": repo,
               "survey": survey_dir, "on_primary": servers[0], "on_standby": servers[1]}
    finally:
        for server in servers:
            assert stop_server(server) == 0, server.log()[-3000:]
        postgresql_test_server("stop", standby_state)
        postgresql_test_server("stop", primary_state)


def sia_rows(server, **constraints):
    """The rows SIAv2 finds, without the links (which name the server)."""
    found = sia2.SIAService(server.url + "/api/sia").search(pos=CONE, maxrec=100000, **constraints)
    return sorted((str(r["obs_id"]), str(r["s_region"]), str(r["obs_collection"])) for r in found)


def tap_rows(server):
    return [tuple(str(v) for v in row.values()) for row in tap.TAPService(server.url + "/api/tap").search(ADQL)]


def test_the_standby_answers_as_the_primary_does_and_the_queries_run_there(cluster):
    primary, replica = cluster["on_primary"], cluster["on_standby"]
    expected_sia = sia_rows(primary)
    assert expected_sia and sia_rows(replica) == expected_sia
    expected_tap = tap_rows(primary)
    assert expected_tap and tap_rows(replica) == expected_tap
    # TAP_SCHEMA and the survey tables through the standby too.
    schema_query = "SELECT table_name, column_name FROM TAP_SCHEMA.columns ORDER BY table_name, column_name"
    assert ([tuple(r.values()) for r in tap.TAPService(replica.url + "/api/tap").search(schema_query)] ==
            [tuple(r.values()) for r in tap.TAPService(primary.url + "/api/tap").search(schema_query)])
    # An async query, and DataLink of one of the rows.
    params = {"LANG": "ADQL", "QUERY": ADQL, "PHASE": "RUN"}
    _, job = run_uws_job(replica.url, "/api/tap/async", params)
    assert job.phase == "COMPLETED"
    result = requests.get(job.results[0].href, timeout=60)
    assert result.status_code == 200 and expected_tap[0][0] in result.text
    did = str(next(iter(sia2.SIAService(primary.url + "/api/sia").search(pos=CONE)))["obs_publisher_did"])
    links = [requests.get(s.url + "/api/datalink/links", params={"ID": did}, timeout=60) for s in (primary, replica)]
    assert links[0].status_code == links[1].status_code == 200
    assert links[0].text.replace(primary.url, "") == links[1].text.replace(replica.url, "")

    # They ran on the standby: its sessions of this server there last ran
    # the registry's search, and none of those on the primary did.
    on_standby = last_queries(cluster["standby"])
    assert any(q.startswith(REGISTRY_SEARCH) for q in on_standby), on_standby
    assert not any(q.startswith(REGISTRY_SEARCH) for q in last_queries(cluster["primary"]))
    # A TAP query runs there while it runs (and its ABORT stops it there).
    job = requests.post(replica.url + "/api/tap/async", data={"LANG": "ADQL", "QUERY": SLOW_ADQL, "PHASE": "RUN"},
                        allow_redirects=False, timeout=60)
    location = job.headers["Location"]
    location = location if location.startswith("http") else replica.url + location
    wait_for("the TAP query running on the standby",
             lambda: any(TAP_QUERY in q for q in last_queries(cluster["standby"], "active")))
    assert not any(TAP_QUERY in q for q in last_queries(cluster["primary"], "active"))
    requests.post(location + "/phase", data={"PHASE": "ABORT"}, timeout=60)
    wait_for("the aborted query stopped on the standby",
             lambda: not any(TAP_QUERY in q for q in last_queries(cluster["standby"], "active")), timeout=10)
    assert requests.get(location + "/phase", timeout=60).text.strip() == "ABORTED"


def test_a_dataset_ingested_on_the_primary_is_served_once_the_standby_replays_it(cluster):
    replica = cluster["on_standby"]
    assert sia_rows(replica, collection="DR2") == []
    run("ingest", "--repo", cluster["repo"], "--collection", "DR2", "--no-virtual", cluster["survey"])
    expected = sia_rows(cluster["on_primary"], collection="DR2")
    assert expected
    wait_for("DR2 through the standby", lambda: sia_rows(replica, collection="DR2") == expected)
    assert any(q.startswith(REGISTRY_SEARCH) for q in last_queries(cluster["standby"]))
    assert "standby 1: serving reads" in standby_note(replica)


def test_a_standby_lagging_beyond_the_bound_is_skipped_for_the_primary(cluster):
    replica, standby = cluster["on_standby"], cluster["standby"]
    psql(standby, "SELECT pg_wal_replay_pause()")
    try:
        run("ingest", "--repo", cluster["repo"], "--collection", "DR3", "--no-virtual", cluster["survey"])
        expected = sia_rows(cluster["on_primary"], collection="DR3")
        assert expected
        # The standby has not replayed DR3 (nor will it while paused): what
        # the server answers comes from the primary once the standby's lag
        # (the age of the last transaction it replayed) is over the bound.
        assert psql(standby, "SELECT count(*) FROM dataset WHERE collection = 'DR3'") == [["0"]]
        wait_for("the lagging standby set aside",
                 lambda: "standby 1: not serving reads: replay lag" in standby_note(replica), timeout=20)
        assert sia_rows(replica, collection="DR3") == expected
        assert [r[0] for r in tap_rows(replica)] == [r[0] for r in tap_rows(cluster["on_primary"])]
    finally:
        psql(standby, "SELECT pg_wal_replay_resume()")
    # Caught up again (DR3 replayed), as the next test's answers compare the
    # standby's with the primary's.
    wait_for_replay(cluster["primary"], standby)
    wait_for("the standby back", lambda: "standby 1: serving reads" in standby_note(replica))


class Clients(RepeatedRequests):
    """Threads querying SIAv2, TAP and DataLink over and over, recording
    whatever is not the expected answer."""

    def __init__(self, server, expected_sia, expected_tap, did):
        super().__init__(("sia", "tap", "links"))
        self.server, self.expected_sia, self.expected_tap, self.did = server, expected_sia, expected_tap, did
        self.answers = 0
        self.wrong = []

    def ask(self, kind):
        try:
            if kind == "sia":
                ok = sia_rows(self.server) == self.expected_sia
            elif kind == "tap":
                ok = tap_rows(self.server) == self.expected_tap
            else:
                r = requests.get(self.server.url + "/api/datalink/links", params={"ID": self.did}, timeout=60)
                ok = r.status_code == 200 and self.did in r.text
            if not ok:
                self.wrong.append(f"{kind}: another answer")
        except Exception as e:  # pyvo's errors, a refused connection
            self.wrong.append(f"{kind}: {e!r}")
        self.answers += 1


def test_a_standby_that_stops_while_clients_query_costs_no_failed_request(cluster):
    replica = cluster["on_standby"]
    expected_sia, expected_tap = sia_rows(replica), tap_rows(replica)
    did = str(next(iter(sia2.SIAService(replica.url + "/api/sia").search(pos=CONE)))["obs_publisher_did"])
    with Clients(replica, expected_sia, expected_tap, did) as clients:
        time.sleep(1.0)
        postgresql_test_server("down", cluster["standby_state"])
        time.sleep(3.0)
        assert "standby 1: not serving reads" in standby_note(replica)
        during = clients.answers
        time.sleep(1.0)
        assert clients.answers > during, "the clients stopped getting answers"
        postgresql_test_server("up", cluster["standby_state"])
        wait_for("the standby back", lambda: "standby 1: serving reads" in standby_note(replica))
        time.sleep(1.0)
    assert clients.wrong == [], clients.wrong[:10]
    assert clients.answers > 20
    assert replica.process.poll() is None
    # Back on the standby: a new session of this server there runs the reads.
    sia_rows(replica)
    tap_rows(replica)
    on_standby = last_queries(cluster["standby"])
    assert any(q.startswith(REGISTRY_SEARCH) for q in on_standby), on_standby
