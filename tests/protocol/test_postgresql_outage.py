"""A PostgreSQL registry that goes away under a running `pixserve serve` (the
database server restarted while clients query): every request that needs
the database is answered with a 503 DALI error saying so (pyvo's SIAv2 and
TAP clients raise an error with its message), VOSI availability says available=false
with a note, the server process stays up, and once PostgreSQL is back the
same requests succeed again within seconds, without restarting pixserve.

The PostgreSQL server is this module's own (scripts/postgresql-test-server.sh
down/up), since the test stops it."""
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import pytest
import requests
from pyvo.dal import sia2, tap
from pyvo.dal.exceptions import DALAccessError, DALQueryError, DALServiceError

from conftest import RepeatedRequests, postgresql_test_server, run, run_uws_job, start_server, stop_server
from test_services import votable

NS_AVAIL = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
CONE = (53.0, -28.0, 0.2)
ADQL = ("SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE('ICRS', 53, -28, 0.2)) = 1 "
        "ORDER BY obs_id")
UNAVAILABLE = "the database is unavailable"


@pytest.fixture(scope="module")
def served(survey_dir, tmp_path_factory):
    """A repository whose registry is on a PostgreSQL server of its own, a
    token, and `pixserve serve` on it."""
    state = tmp_path_factory.mktemp("pg-outage-server")
    url = postgresql_test_server("start", state)
    repo = tmp_path_factory.mktemp("pg-outage") / "repo"
    try:
        run("ingest", "--repo", repo, "--registry", url, "--no-virtual", survey_dir)
        token = run("token", "create", "--repo", repo, "--user", "alice", "--format", "text").stdout.strip()
        server = start_server(repo)
        try:
            yield {"state": state, "server": server, "token": token}
        finally:
            assert stop_server(server) == 0, server.log()[-3000:]
    finally:
        postgresql_test_server("stop", state)


def get(url, headers=None):
    """(status, headers, body) of a GET with urllib, errors included."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def assert_database_unavailable(status, headers, body):
    """A 503 DALI error document: a VOTable whose QUERY_STATUS is ERROR
    with the message, and a Retry-After."""
    assert status == 503, (status, body[:500])
    assert int(headers["Retry-After"]) > 0
    infos = [i for i in votable(body).resources[0].infos if i.name == "QUERY_STATUS"]
    assert [i.value for i in infos] == ["ERROR"], body[:500]
    assert UNAVAILABLE in infos[0].content, infos[0].content


def says_unavailable(error):
    """Whether pyvo's error is the 503 DALI error: pyvo reads the error
    document (DALQueryError with its message), or, when it looks at the
    HTTP status first, raises DALServiceError with the response."""
    if isinstance(error, DALQueryError):
        return UNAVAILABLE in str(error)
    return isinstance(error, DALServiceError) and error.code == 503 and UNAVAILABLE in error.cause.response.text


def sia_found(sia):
    return sorted(str(r["obs_id"]) for r in sia.search(pos=CONE))


def tap_found(service):
    return [str(r["obs_id"]) for r in service.search(ADQL)]


def availability(url):
    root = ET.fromstring(requests.get(url, timeout=60).content)
    return root.findtext(f"{{{NS_AVAIL}}}available"), [n.text for n in root.findall(f"{{{NS_AVAIL}}}note")]


class Clients(RepeatedRequests):
    """Threads issuing SIAv2 and TAP requests (pyvo, and plain HTTP with a
    bearer token) over and over, recording each answer."""

    pause = 0.05

    def __init__(self, base, token, expected):
        super().__init__(("sia", "tap", "token"))
        self.base, self.token, self.expected = base, token, expected
        self.outcomes = []  # (time, kind, "ok" | "503" | what else happened)

    def one(self, kind):
        if kind == "sia":
            try:
                found = sia_found(sia2.SIAService(self.base + "/api/sia"))
            except DALAccessError as e:
                return "503" if says_unavailable(e) else f"sia: {e!r}"
            return "ok" if found == self.expected["sia"] else "sia: other rows"
        if kind == "tap":
            try:
                found = tap_found(tap.TAPService(self.base + "/api/tap"))
            except DALAccessError as e:
                return "503" if says_unavailable(e) else f"tap: {e!r}"
            return "ok" if found == self.expected["tap"] else "tap: other rows"
        # Anonymous SIAv2 would not touch the token store; this does.
        status, headers, body = get(self.base + "/api/sia/query?" + urllib.parse.urlencode({"POS": "CIRCLE 53 -28 0.2"}),
                                    {"Authorization": f"Bearer {self.token}"})
        if status == 200:
            return "ok"
        try:
            assert_database_unavailable(status, headers, body)
            return "503"
        except AssertionError as e:
            return f"token: {e}"

    def ask(self, kind):
        try:
            outcome = self.one(kind)
        except Exception as e:  # a refused connection, a timeout: the server would be gone
            outcome = f"{kind}: {e!r}"
        self.outcomes.append((time.monotonic(), kind, outcome))


def test_a_database_restart_costs_503s_only_while_it_is_down(served):
    server, base = served["server"], served["server"].url
    sia = sia2.SIAService(base + "/api/sia")
    tap_service = tap.TAPService(base + "/api/tap")
    expected = {"sia": sia_found(sia), "tap": tap_found(tap_service)}
    assert expected["sia"] and expected["sia"] == expected["tap"]
    did = str(next(iter(sia.search(pos=CONE)))["obs_publisher_did"])
    assert availability(base + "/api/sia/availability")[0] == "true"

    with Clients(base, served["token"], expected) as clients:
        time.sleep(1.0)
        postgresql_test_server("down", served["state"])
        down_at = time.monotonic()
        time.sleep(1.0)

        # Every service that needs the database says so, with the standard
        # error document and status.
        cone = urllib.parse.urlencode({"POS": "CIRCLE 53 -28 0.2"})
        assert_database_unavailable(*get(base + "/api/sia/query?" + cone))
        assert_database_unavailable(*get(base + "/api/tap/sync?" + urllib.parse.urlencode(
            {"LANG": "ADQL", "QUERY": ADQL})))
        assert_database_unavailable(*get(base + "/api/datasets/query?" + cone))
        assert_database_unavailable(*get(base + "/api/datalink/links?" + urllib.parse.urlencode({"ID": did})))
        assert_database_unavailable(*get(base + "/api/soda/sync?" + urllib.parse.urlencode(
            {"ID": did, "CIRCLE": "53 -28 0.01"})))
        # The job store is in the database too: no job can be created.
        r = requests.post(base + "/api/tap/async", data={"LANG": "ADQL", "QUERY": ADQL, "PHASE": "RUN"},
                          allow_redirects=False, timeout=60)
        assert_database_unavailable(r.status_code, r.headers, r.content)
        with pytest.raises(DALAccessError) as err:
            sia_found(sia)
        assert says_unavailable(err.value), repr(err.value)
        with pytest.raises(DALAccessError) as err:
            tap_found(tap_service)
        assert says_unavailable(err.value), repr(err.value)
        # What HAProxy's health check reads: unavailable, and why.
        available, notes = availability(base + "/api/sia/availability")
        assert available == "false"
        assert any(n.startswith("registry database: FAILED") and "unavailable" in n for n in notes), notes
        assert requests.get(base + "/api/availability.json", timeout=60).json()["available"] is False
        # What does not need the database still answers.
        assert requests.get(base + "/api/sia/capabilities", timeout=60).status_code == 200

        postgresql_test_server("up", served["state"])
        up_at = time.monotonic()
        while True:
            try:
                assert sia_found(sia) == expected["sia"]
                break
            except DALAccessError as e:
                assert says_unavailable(e), repr(e)
                assert time.monotonic() - up_at < 10, "SIAv2 did not recover within 10 s of the database"
                time.sleep(0.1)
        recovered_in = time.monotonic() - up_at
        # Within the spacing of reconnection attempts (2 s) and a restart.
        assert recovered_in < 5, recovered_in
        assert tap_found(tap_service) == expected["tap"]
        time.sleep(1.0)

    assert server.process.poll() is None, server.log()[-3000:]
    outcomes = clients.outcomes
    other = [o for o in outcomes if o[2] not in ("ok", "503")]
    assert other == [], other[:10]
    for kind in ("sia", "tap", "token"):
        mine = [(t, outcome) for t, k, outcome in outcomes if k == kind]
        assert any(outcome == "503" and down_at <= t for t, outcome in mine), f"{kind} never met the outage"
        assert any(outcome == "ok" and t < down_at for t, outcome in mine), kind
        assert mine[-1][1] == "ok", f"{kind} did not recover: {mine[-5:]}"

    # Every service is back, the job store and availability included.
    _, job = run_uws_job(base, "/api/tap/async", {"LANG": "ADQL", "QUERY": ADQL, "PHASE": "RUN"})
    assert job.phase == "COMPLETED"
    assert availability(base + "/api/sia/availability")[0] == "true"
    status, _, _ = get(base + "/api/sia/query?" + urllib.parse.urlencode({"POS": "CIRCLE 53 -28 0.2"}),
                       {"Authorization": f"Bearer {served['token']}"})
    assert status == 200
