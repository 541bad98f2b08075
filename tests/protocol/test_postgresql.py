"""A repository's registry on PostgreSQL: `pixserve registry migrate` from
SQLite, what it refuses, and the same answers from the services before and
after (pyvo's SIAv2 and TAP clients, a bearer token made before the move).
The server is the private one of conftest.postgresql_registry()."""
import subprocess
import time

import pytest
import requests
from pyvo.dal import sia2, tap

from conftest import postgresql_registry, query, run, start_server, stop_server


CONE = (53.0, -28.0, 0.2)
ADQL = ("SELECT obs_id, s_region, AREA(s_region) AS footprint_area FROM ivoa.obscore "
        "WHERE INTERSECTS(s_region, CIRCLE('ICRS', 53, -28, 0.2)) = 1 ORDER BY obs_id")


def answers(repo, token):
    """What SIAv2 and TAP answer on the repository, and the status of a
    request with the token."""
    server = start_server(repo)
    try:
        sia = sia2.SIAService(server.url + "/api/sia")
        found = sorted(str(r["obs_id"]) for r in sia.search(pos=CONE))
        rows = tap.TAPService(server.url + "/api/tap").search(ADQL)
        adql = [(str(r["obs_id"]), str(r["s_region"]), round(float(r["footprint_area"]), 12)) for r in rows]
        with_token = requests.get(server.url + "/api/sia/query", params={"POS": "CIRCLE 53 -28 0.01"},
                                  headers={"Authorization": f"Bearer {token}"}, timeout=60).status_code
        forged = requests.get(server.url + "/api/sia/query", params={"POS": "CIRCLE 53 -28 0.01"},
                              headers={"Authorization": f"Bearer {token[:-4]}AAAA"}, timeout=60).status_code
        return {"sia": found, "tap": adql, "token": with_token, "forged": forged}
    finally:
        assert stop_server(server) == 0, server.log()[-3000:]


@pytest.fixture(scope="module")
def moved(survey_dir, tmp_path_factory):
    """A repository ingested on SQLite with a token, then migrated."""
    repo = tmp_path_factory.mktemp("migrate") / "moved"
    run("ingest", "--repo", repo, "--registry", "registry.sqlite3", survey_dir)
    token = run("token", "create", "--repo", repo, "--user", "alice", "--format", "text").stdout.strip()
    before = query(repo, "--pos", "53,-28,0.2")
    served = answers(repo, token)
    url = postgresql_registry()
    result = run("registry", "migrate", "--repo", repo, "--to", url)
    return {"repo": repo, "url": url, "token": token, "before": before, "served": served,
            "log": result.stdout + result.stderr}


def test_migrate_copies_every_table_and_switches_the_repository(moved, survey_dir):
    assert "the repository now uses it" in moved["log"]
    for table in ("dataset", "footprint_cell", "center_cell", "provenance", "efd_weather", "efd_visit_summary",
                  "auth_token"):
        assert table in moved["log"], moved["log"]
    # The R-EFD rows (docs/efd.md), as many as the simulator's CSV files hold.
    for table, csv_file in (("efd_weather", "weather.csv"), ("efd_visit_summary", "visit_summary.csv")):
        copied = subprocess.run(["psql", "-tA", moved["url"], "-c", f"SELECT count(*) FROM {table}"],
                                capture_output=True, text=True, check=True).stdout.strip()
        lines = (survey_dir / "efd" / csv_file).read_text().strip().splitlines()
        assert int(copied) == len(lines) - 1 > 0, table
    # Both indexes hold what the datasets say: a footprint cell for each
    # calexp, and a centre for each dataset with s_ra and s_dec.
    counts = subprocess.run(
        ["psql", "-tA", moved["url"], "-c",
         "SELECT (SELECT count(*) FROM center_cell), (SELECT count(*) FROM dataset WHERE s_ra IS NOT NULL)"],
        capture_output=True, text=True, check=True).stdout.strip().split("|")
    assert int(counts[0]) == int(counts[1]) > 0
    config = (moved["repo"] / "pixserve-repo.json").read_text()
    assert moved["url"] in config
    # The same datasets, found through the footprint index on the new database.
    assert query(moved["repo"], "--pos", "53,-28,0.2") == moved["before"]
    rows = subprocess.run(["psql", "-tA", moved["url"], "-c", "SELECT count(*) FROM dataset"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert int(rows) == len(query(moved["repo"]))


def test_migrate_refuses_what_it_cannot_do(moved, tmp_path):
    again = run("registry", "migrate", "--repo", moved["repo"], "--from", moved["repo"] / "registry.sqlite3",
                "--to", moved["url"], "--keep-config", check=False)
    assert again.returncode == 1 and "already holds" in again.stderr
    already = run("registry", "migrate", "--repo", moved["repo"], "--to", postgresql_registry(), check=False)
    assert already.returncode == 2 and "already on PostgreSQL" in already.stderr
    not_pg = run("registry", "migrate", "--repo", moved["repo"], "--to", "sqlite:/tmp/x", check=False)
    assert not_pg.returncode == 2 and "PostgreSQL URL" in not_pg.stderr
    unreachable = run("registry", "migrate", "--repo", moved["repo"], "--from", moved["repo"] / "registry.sqlite3",
                      "--to", "postgresql://pixserve@127.0.0.1:1/none", check=False)
    assert unreachable.returncode != 0 and "cannot connect" in unreachable.stderr
    # Another repository cannot adopt the database that holds this one's datasets.
    other = run("ingest", "--repo", tmp_path / "other", "--registry", moved["url"], "--name", "other",
                tmp_path, check=False)
    assert other.returncode != 0 and "belongs to another repository" in other.stderr


def test_services_answer_the_same_after_the_move(moved, survey_dir):
    assert moved["served"]["sia"] and moved["served"]["tap"]
    assert moved["served"]["token"] == 200 and moved["served"]["forged"] == 401
    # The same answers, the token issued before the move included.
    assert answers(moved["repo"], moved["token"]) == moved["served"]
    # New datasets get keys after the copied ones.
    run("ingest", "--repo", moved["repo"], "--collection", "DR2", "--no-virtual", survey_dir)
    assert len(query(moved["repo"], "--collection", "DR2")) > 0


SLOW_ADQL = ("SELECT COUNT(*) AS n FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, TAP_SCHEMA.columns AS c, "
             "TAP_SCHEMA.columns AS d")


def running_queries(url):
    """The statements the registry's server is running for clients now,
    other than this one."""
    out = subprocess.run(["psql", "-tA", url, "-c",
                          "SELECT query FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
                          "AND backend_type = 'client backend'"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if line.strip()]


def test_a_query_past_its_limit_is_cancelled_in_postgresql(moved, tmp_path):
    config = tmp_path / "pixserve.yaml"
    config.write_text("tap:\n  sync_time_limit_s: 1\n")
    server = start_server(moved["repo"], "--config", config)
    try:
        started = time.monotonic()
        r = requests.get(server.url + "/api/tap/sync", params={"LANG": "ADQL", "QUERY": SLOW_ADQL}, timeout=60)
        assert time.monotonic() - started < 10
        assert "time limit" in r.text, r.text
        # Not abandoned: the server has stopped it, before the statement_timeout
        # backstop (the limit + 2 s) would have.
        deadline = started + 2.5
        while running_queries(moved["url"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running_queries(moved["url"]) == []

        # An async job's ABORT stops its statement in the server too.
        job = requests.post(server.url + "/api/tap/async", data={"LANG": "ADQL", "QUERY": SLOW_ADQL, "PHASE": "RUN"},
                            allow_redirects=False, timeout=60)
        location = job.headers["Location"]
        location = location if location.startswith("http") else server.url + location
        deadline = time.monotonic() + 20
        while not any("tap_schema_columns" in q for q in running_queries(moved["url"])):
            assert time.monotonic() < deadline, "the job's query never reached the server"
            time.sleep(0.1)
        requests.post(location + "/phase", data={"PHASE": "ABORT"}, timeout=60)
        deadline = time.monotonic() + 5
        while running_queries(moved["url"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert running_queries(moved["url"]) == []
        assert requests.get(location + "/phase", timeout=60).text.strip() == "ABORTED"
    finally:
        assert stop_server(server) == 0, server.log()[-3000:]
