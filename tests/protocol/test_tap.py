"""ObsTAP at /api/tap with real clients: STILTS taplint (0 errors), pyvo's
TAPService (sync, run_async, submit_job, uploads, tables), geometry
queries against a brute-force oracle on the simulated survey, and hostile
input answered with DALI errors."""
import io
import re
import subprocess
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import requests
from astropy.table import Table
from pyvo.dal import TAPService
from pyvo.dal.adhoc import DatalinkResults
from pyvo.dal.exceptions import DALQueryError

from conftest import query, run_uws_job, start_server, stop_server
from spherical import angular_distance_deg, convex_polygon_contains, parse_stcs_polygon, unit_vectors
from test_services import votable

TAP_STD = "ivo://ivoa.net/std/TAP"


@pytest.fixture(scope="module")
def tap(server):
    return TAPService(server.url + "/api/tap")


@pytest.fixture(scope="module")
def registered(repo_dir):
    return query(repo_dir)


def sync(server, **params):
    return requests.post(server.url + "/api/tap/sync", data={"LANG": "ADQL", **params}, timeout=60)


def error_of(response):
    table = votable(response.content)
    infos = [i for i in table.resources[0].infos if i.name == "QUERY_STATUS"]
    assert infos and infos[0].value == "ERROR", response.text
    return infos[0].content


def test_taplint_reports_no_errors(server):
    result = subprocess.run(["stilts", "taplint", f"tapurl={server.url}/api/tap", "maxrepeat=3"],
                            capture_output=True, text=True, timeout=600)
    out = result.stdout
    errors = [line for line in out.splitlines() if line.startswith("E-")]
    warnings = sorted({line for line in out.splitlines() if line.startswith("W-")})
    totals = re.search(r"Totals:\s*Errors:\s*(\d+);\s*Warnings:\s*(\d+)", out)
    assert totals, out[-3000:] + result.stderr[-2000:]
    print("taplint warnings:\n" + "\n".join(warnings))
    assert int(totals.group(1)) == 0 and not errors, "\n".join(errors)


def test_pyvo_sync_search_and_metadata(tap, registered):
    results = tap.search("SELECT obs_id, dataproduct_subtype, s_region, access_url FROM ivoa.obscore", maxrec=100000)
    table = results.to_table()
    science = {r["dataset_id"] for r in registered if r["s_region"] is not None}
    everything = {r["dataset_id"] for r in registered}
    assert set(table["obs_id"]) == everything
    assert len(science) > 0
    field = results.fieldname_with_ucd("pos.outline;obs.field")
    assert field == "s_region"
    assert results.votable.get_field_by_id_or_name("s_region").xtype == "adql:REGION"  # ObsCore 1.1 STC-S
    point = tap.search("SELECT TOP 1 POINT('ICRS', s_ra, s_dec) AS p, CIRCLE(s_ra, s_dec, 0.1) AS c FROM ivoa.obscore "
                       "WHERE s_ra IS NOT NULL")
    assert point.votable.get_field_by_id_or_name("p").xtype == "point"
    assert point.votable.get_field_by_id_or_name("c").xtype == "circle"
    assert len(point.to_table()["p"][0]) == 2
    names = {t.name for t in tap.tables}
    assert {"ivoa.obscore", "survey.visits", "survey.provenance", "TAP_SCHEMA.columns"} <= names
    caps = requests.get(tap.baseurl + "/capabilities").text
    assert TAP_STD in caps and "tr:TableAccess" in caps
    assert tap.available


def test_access_urls_are_absolute_and_pyvo_follows_them_to_datalink(tap, server):
    # ObsCore's access_url is a URL a client fetches as it is: absolute on
    # the address the client used, in sync results and in a job's alike.
    q = "SELECT TOP 2 obs_id, access_url, access_format FROM ivoa.obscore WHERE dataproduct_subtype = 'calexp' " \
        "ORDER BY obs_id"
    for result in (tap.search(q), tap.run_async(q)):
        urls = [str(u) for u in result.to_table()["access_url"]]
        assert len(urls) == 2
        assert all(u.startswith(server.url + "/api/datalink/links?ID=ivo%3A%2F%2F") for u in urls), urls
        # pyvo follows each one as it is to the dataset's links.
        for row in result.to_table():
            datalink = DatalinkResults.from_result_url(str(row["access_url"]))
            this = [link for link in datalink if link.semantics == "#this"]
            assert this and str(row["obs_id"]) in this[0].access_url
    # A result with publisher DIDs carries DataLink's service descriptor,
    # which pyvo's iter_datalinks() follows (one batch of IDs), sync and async.
    q = "SELECT TOP 3 obs_id, obs_publisher_did FROM ivoa.obscore WHERE dataproduct_subtype = 'calexp' ORDER BY obs_id"
    for result in (tap.search(q), tap.run_async(q)):
        descriptor = result.get_adhocservice_by_ivoid("ivo://ivoa.net/std/DataLink#links")
        access = [p.value for p in descriptor.params if p.name == "accessURL"]
        assert access == [server.url + "/api/datalink/links"]
        links = list(result.iter_datalinks())
        assert len(links) == 3
        for row, datalink in zip(result.to_table(), links):
            this = [link for link in datalink if link.semantics == "#this"]
            assert len(this) == 1 and this[0].access_url.endswith("/api/files/" + str(row["obs_id"]))
    # caom2.Plane's publisherID is the same identifier.
    planes = tap.search("SELECT TOP 2 publisherID FROM caom2.Plane ORDER BY publisherID")
    assert len(list(planes.iter_datalinks())) == 2
    # Without such a column there is no descriptor.
    plain = tap.search("SELECT TOP 1 obs_id FROM ivoa.obscore")
    assert not [r for r in plain.votable.resources if r.utype == "adhoc:service"]
    # The address a client reached the server by is the one written.
    other = server.url.replace("127.0.0.1", "localhost")
    table = TAPService(other + "/api/tap").search("SELECT TOP 2 access_url FROM ivoa.obscore").to_table()
    assert all(str(u).startswith(other + "/api/datalink/links?ID=") for u in table["access_url"])


def test_pyvo_async_run_and_submit_job(tap):
    q = "SELECT band, COUNT(*) AS n FROM ivoa.obscore WHERE band IS NOT NULL GROUP BY band ORDER BY band"
    synced = tap.search(q).to_table()
    ran = tap.run_async(q).to_table()
    assert list(ran["band"]) == list(synced["band"]) and list(ran["n"]) == list(synced["n"])
    job = tap.submit_job("SELECT TOP 3 obs_id FROM ivoa.obscore ORDER BY obs_id", maxrec=2)
    job.run()
    job.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert job.phase == "COMPLETED"
    assert len(job.fetch_result().to_table()) == 2
    job.delete()
    bad = tap.submit_job("SELECT nothing FROM ivoa.obscore")
    bad.run()
    bad.wait(phases=["COMPLETED", "ERROR", "ABORTED"], timeout=60)
    assert bad.phase == "ERROR"
    bad.delete()


def test_pyvo_upload_joins_the_survey(tap, registered):
    science = [r for r in registered if r["s_region"] is not None and r["type"] == "calexp"]
    points = Table({"id": np.arange(3, dtype=np.int32),
                    "ra": [science[0]["s_ra"], science[1]["s_ra"], 200.0],
                    "dec": [science[0]["s_dec"], science[1]["s_dec"], 10.0]})
    q = ("SELECT u.id, o.obs_id FROM TAP_UPLOAD.pts AS u JOIN ivoa.obscore AS o "
         "ON CONTAINS(POINT('ICRS', u.ra, u.dec), o.s_region) = 1 ORDER BY u.id, o.obs_id")
    for result in (tap.search(q, uploads={"pts": points}), tap.run_async(q, uploads={"pts": points})):
        t = result.to_table()
        # The brute-force answer: footprints (from the registry) containing each point.
        expected = []
        for i, (ra, dec) in enumerate(zip(points["ra"], points["dec"])):
            for r in registered:
                if r["s_region"] and convex_polygon_contains(parse_stcs_polygon(r["s_region"]), ra, dec):
                    expected.append((i, r["dataset_id"]))
        assert sorted((int(a), str(b)) for a, b in zip(t["id"], t["obs_id"])) == sorted(expected)
        assert any(i == 0 for i, _ in expected) and not any(i == 2 for i, _ in expected)


def circle_hits_polygon(poly, ra, dec, radius):
    """Brute force: a densely sampled circle boundary or its centre inside the polygon, or a vertex inside the circle."""
    centre = unit_vectors(ra, dec)
    verts = unit_vectors(poly[:, 0], poly[:, 1])
    if np.any(angular_distance_deg(verts, centre) <= radius):
        return True
    if convex_polygon_contains(poly, ra, dec):
        return True
    # Edges: sample each great-circle arc finely.
    for a, b in zip(verts, np.roll(verts, -1, axis=0)):
        t = np.linspace(0, 1, 2000)[:, None]
        p = a * (1 - t) + b * t
        p /= np.linalg.norm(p, axis=1)[:, None]
        if np.any(angular_distance_deg(p, centre) <= radius):
            return True
    return False


@pytest.mark.parametrize("ra,dec,radius", [(53.0, -28.0, 0.3), (53.4, -27.7, 0.15), (52.5, -28.6, 0.5), (200, 0, 1)])
def test_geometry_queries_match_brute_force(tap, registered, ra, dec, radius):
    rows = [r for r in registered if r["s_ra"] is not None]
    centres = unit_vectors([r["s_ra"] for r in rows], [r["s_dec"] for r in rows])
    d = angular_distance_deg(centres, unit_vectors(ra, dec))
    # Points exactly on the boundary are ambiguous in floating point: keep clear of it.
    assert not np.any(np.abs(d - radius) < 1e-9)
    expected = sorted(r["dataset_id"] for r, dist in zip(rows, d) if dist <= radius)
    got = tap.search(f"SELECT obs_id FROM ivoa.obscore WHERE CONTAINS(POINT('ICRS', s_ra, s_dec), "
                     f"CIRCLE('ICRS', {ra}, {dec}, {radius})) = 1", maxrec=100000).to_table()
    assert sorted(str(x) for x in got["obs_id"]) == expected
    expected_regions = sorted(r["dataset_id"] for r in registered if r["s_region"] and
                              circle_hits_polygon(parse_stcs_polygon(r["s_region"]), ra, dec, radius))
    got = tap.search(f"SELECT obs_id FROM ivoa.obscore WHERE INTERSECTS(s_region, CIRCLE({ra}, {dec}, {radius})) = 1",
                     maxrec=100000).to_table()
    assert sorted(str(x) for x in got["obs_id"]) == expected_regions
    # DISTANCE agrees with the oracle too.
    if expected:
        got = tap.search(f"SELECT obs_id, DISTANCE(POINT(s_ra, s_dec), POINT({ra}, {dec})) AS d FROM ivoa.obscore "
                         f"WHERE CONTAINS(POINT(s_ra, s_dec), CIRCLE({ra}, {dec}, {radius})) = 1").to_table()
        oracle = {r["dataset_id"]: dist for r, dist in zip(rows, d)}
        for obs_id, dist in zip(got["obs_id"], got["d"]):
            assert abs(dist - oracle[str(obs_id)]) < 1e-9


@pytest.mark.parametrize("params,status,words", [
    ({"QUERY": "SELECT * FROM sqlite_master"}, 400, "sqlite_master"),
    ({"QUERY": "SELECT * FROM dataset"}, 400, "dataset"),
    ({"QUERY": "SELECT owner, read_policy FROM ivoa.obscore"}, 400, "owner"),
    ({"QUERY": "SELECT obs_id FROM ivoa.obscore; DELETE FROM dataset"}, 400, "line 1"),
    ({"QUERY": "SELECT obs_id FROM ivoa.obscore WHERE obs_id = 'a' UNION SELECT name FROM sqlite_master"}, 400,
     "sqlite_master"),
    ({"QUERY": "SELECT obs_id FROM ivoa.obscore WHERE 1 = 1 -- ' OR owner = 'x'\nAND calib_level = 2 ORDER BY"}, 400,
     "line 2"),
    ({"QUERY": "SELECT " + ", ".join(["obs_id"] * 2000) + " FROM ivoa.obscore WHERE " + " OR ".join(
        ["obs_id = 'x'"] * 20000)}, 400, "QUERY"),
    ({"QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore", "LANG": "PQL"}, 400, "LANG"),
    ({"QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore", "FORMAT": "fits"}, 400, "RESPONSEFORMAT"),
    ({"QUERY": "SELECT TOP 1 obs_id FROM ivoa.obscore", "MAXREC": "-1"}, 400, "MAXREC"),
    ({"QUERY": "SELECT 1", "UPLOAD": "t,http://127.0.0.1:9/x"}, 400, "UPLOAD"),
    ({"QUERY": ""}, 400, "QUERY"),
])
def test_hostile_and_bad_requests_are_dali_errors(server, params, status, words):
    r = sync(server, **params)
    assert r.status_code == status, r.text[:500]
    assert words in error_of(r)


def test_bad_uploads_are_dali_errors(server):
    def post(content):
        return requests.post(server.url + "/api/tap/sync",
                             data={"LANG": "ADQL", "QUERY": "SELECT * FROM TAP_UPLOAD.t", "UPLOAD": "t,param:t"},
                             files={"t": ("t.xml", content, "application/x-votable+xml")}, timeout=60)
    xxe = ('<?xml version="1.0"?><!DOCTYPE VOTABLE [<!ENTITY x SYSTEM "file:///etc/passwd">]><VOTABLE><RESOURCE>'
           '<TABLE><FIELD name="a" datatype="char" arraysize="*"/><DATA><TABLEDATA><TR><TD>&x;</TD></TR>'
           '</TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>')
    for content, words in [(xxe, "DOCTYPE"), ("<VOTABLE>", "well-formed"), ("not xml at all", "well-formed"),
                           ("<VOTABLE><RESOURCE><TABLE><FIELD name='a' datatype='int'/><DATA><TABLEDATA><TR><TD>x</TD>"
                            "</TR></TABLEDATA></DATA></TABLE></RESOURCE></VOTABLE>", "not a valid int"),
                           ("<VOTABLE>" + "<RESOURCE>" * 10 + "</VOTABLE>", "well-formed"),
                           (b"x" * (17 << 20), "limit")]:
        r = post(content)
        assert r.status_code == 400, r.text[:300]
        message = error_of(r)
        assert words in message and "root:" not in message


def test_results_follow_maxrec_formats_and_visibility(server, registered):
    r = sync(server, QUERY="SELECT obs_id FROM ivoa.obscore", MAXREC="3")
    t = votable(r.content)
    assert len(t.get_first_table().array) == 3
    assert [i.value for i in t.resources[0].infos if i.name == "QUERY_STATUS"] == ["OK", "OVERFLOW"]
    r = sync(server, QUERY="SELECT TOP 2 obs_id, s_ra FROM ivoa.obscore ORDER BY obs_id", RESPONSEFORMAT="csv")
    assert r.headers["Content-Type"].startswith("text/csv") and r.text.splitlines()[0] == "obs_id,s_ra"
    r = sync(server, QUERY="SELECT TOP 2 obs_id FROM ivoa.obscore", RESPONSEFORMAT="votable/b2")
    assert b"BINARY2" in r.content and len(votable(r.content).get_first_table().array) == 2
    # The simulated survey is public: TAP and the registry agree on the count.
    r = sync(server, QUERY="SELECT COUNT(*) AS n FROM ivoa.obscore WHERE data_rights = 'public'")
    assert int(votable(r.content).get_first_table().array["n"][0]) == len(registered)


def test_examples_are_dali_examples(server, tap):
    r = requests.get(server.url + "/api/tap/examples")
    assert r.status_code == 200 and "xhtml" in r.headers["Content-Type"]
    root = ET.fromstring(r.content)
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    examples = root.findall(".//*[@typeof='example']", ns)
    assert len(examples) >= 5
    for e in examples:
        assert e.get("resource") == "#" + e.get("id")
        q = e.find(".//*[@property='query']").text
        assert e.find(".//*[@property='name']").text
        assert len(tap.search(q).to_table()) >= 0


def test_coadds_give_each_coadd_patch_its_provenance(tap, survey_dir):
    """survey.coadds: one row per coadd patch, its values those of the
    file's header (NINPUTS, MJD-BEG/END, COVFRAC, DEPTH5), n_inputs the
    number of its calexps in survey.provenance."""
    from astropy.io import fits
    rows = tap.search("SELECT c.*, (SELECT COUNT(*) FROM survey.provenance AS p WHERE p.dataset_id = c.dataset_id) "
                      "AS n_provenance FROM survey.coadds AS c", maxrec=100000).to_table()
    headers = {}
    for kind in ("deepCoadd", "goodSeeingCoadd"):
        for path in sorted((survey_dir / kind).rglob("*.fits")):
            h = fits.getheader(path)
            headers[(kind, h["BAND"], h["TRACT"], h["PATCH"])] = h
    assert len(rows) == len(headers) > 0
    for row in rows:
        h = headers[(row["dataset_type"], row["band"], int(row["tract"]), row["patch"])]
        assert row["n_inputs"] == h["NINPUTS"] == row["n_provenance"]
        assert row["t_min"] == pytest.approx(h["MJD-BEG"], abs=1e-9)
        assert row["t_max"] == pytest.approx(h["MJD-END"], abs=1e-9)
        assert row["coverage_fraction"] == pytest.approx(h["COVFRAC"], abs=1e-9)
        assert 0 < row["coverage_fraction"] <= 1
        assert row["depth_5sigma"] == pytest.approx(h["DEPTH5"], abs=1e-9)


def portal_examples(server):
    r = requests.get(server.url + "/api/tap/examples", timeout=60)
    root = ET.fromstring(r.content)
    ns = {"h": "http://www.w3.org/1999/xhtml"}
    return {e.get("id"): e.find(".//*[@property='query']").text
            for e in root.findall(".//*[@typeof='example']", ns) if e.get("id").startswith("prtl-")}


def test_portal_requirement_examples_answer_what_they_say(server, tap):
    """A DALI example for each of DMS-PRTL-REQ-0035 .. 0039, each giving
    rows on the simulated survey that meet its conditions."""
    examples = portal_examples(server)
    for requirement in ("0035", "0036", "0037", "0038", "0039"):
        assert any(k.startswith(f"prtl-{requirement}") for k in examples), requirement
    results = {k: tap.search(q, maxrec=100000).to_table() for k, q in examples.items()}
    for key, rows in results.items():
        assert len(rows) > 0, key
    assert set(results["prtl-0035-visit-list"]["visit"]) <= {1000001, 1000002, 1000003}
    assert set(results["prtl-0036-raft"]["raft"]) == {"R22"}
    assert set(results["prtl-0036-raft"]["visit"]) == {1000001}
    assert set(results["prtl-0037-ccd"]["detector"]) == {94}
    assert all(results["prtl-0038-efd-visit"]["dimm_seeing"] < 1.5)
    assert all(results["prtl-0038-efd-visit"]["wind_speed"] < 15)
    assert all(results["prtl-0038-efd-interval"]["n_samples"] >= 1)
    coadds = results["prtl-0039-coadd-provenance"]
    assert all(coadds["n_inputs"] >= 2) and all(coadds["depth_5sigma"] > 20)
    assert list(coadds["depth_5sigma"]) == sorted(coadds["depth_5sigma"], reverse=True)
    # The selection of visits: the r-band visits below airmass 1.5.
    chosen = tap.search("SELECT visit FROM survey.visits WHERE band = 'r' AND airmass < 1.5").to_table()
    assert set(results["prtl-0035-visit-selection"]["visit"]) == set(chosen["visit"])


# Rows that come at once and go on for far longer than a second: a cross
# join of TAP_SCHEMA.columns four times, no ORDER BY. The condition, which no
# index serves, keeps one combination in 97: the database works as hard, but
# the rows sent before the limit are few enough for the client to parse
# quickly (all of them came to millions).
ENDLESS_ADQL = ("SELECT a.column_name AS a, b.column_name AS b FROM TAP_SCHEMA.columns AS a, TAP_SCHEMA.columns AS b, "
                "TAP_SCHEMA.columns AS c, TAP_SCHEMA.columns AS d "
                "WHERE MOD(a.column_index + b.column_index + c.column_index + d.column_index, 97) = 0")


@pytest.fixture(scope="module")
def limited_server(repo_dir, tmp_path_factory):
    """A second server on the repository whose /sync queries and jobs stop
    after a second, with MAXREC up to 10^9."""
    config = tmp_path_factory.mktemp("stream") / "pixserve.yaml"
    config.write_text("tap:\n  sync_time_limit_s: 1\nservice:\n  maxrec_limit: 1000000000\n"
                      "jobs:\n  execution_duration_s: 1\n")
    srv = start_server(repo_dir, "--config", config)
    yield srv
    assert stop_server(srv) == 0, srv.log()[-3000:]


def test_a_query_stopped_mid_stream_ends_its_votable_with_query_status_error(limited_server):
    """The rows already sent stay; the time limit met after them is a
    QUERY_STATUS ERROR after the TABLE, the last INFO of the document, which
    astropy parses in pedantic mode."""
    started = time.monotonic()
    r = requests.post(limited_server.url + "/api/tap/sync",
                      data={"LANG": "ADQL", "QUERY": ENDLESS_ADQL, "MAXREC": 1_000_000_000,
                            "RESPONSEFORMAT": "votable/b2"}, timeout=120)
    assert time.monotonic() - started < 30
    assert r.status_code == 200, r.text[:500]
    doc = votable(r.content)
    statuses = [(i.value, i.content) for i in doc.resources[0].infos if i.name == "QUERY_STATUS"]
    assert statuses[0][0] == "OK"
    assert statuses[-1][0] == "ERROR" and "time limit" in statuses[-1][1], statuses
    assert "OVERFLOW" not in [s for s, _ in statuses]
    assert len(doc.get_first_table().array) > 0  # the rows before the limit
    tail = r.content[-400:].decode()
    assert tail.index('value="ERROR"') > tail.index("</TABLE>")
    assert re.search(r'<INFO name="QUERY_STATUS" value="ERROR">[^<]*</INFO>\s*</RESOURCE>\s*</VOTABLE>\s*$', tail), tail
    # pyvo 1.2.1 reads the first QUERY_STATUS of the resource (OK) and
    # returns the partial rows; the error is in the parsed document.
    results = TAPService(limited_server.url + "/api/tap").search(ENDLESS_ADQL, maxrec=1_000_000_000)
    assert len(results) > 0
    assert [i.value for i in results.votable.resources[0].infos if i.name == "QUERY_STATUS"][-1] == "ERROR"


def test_a_csv_result_stopped_mid_stream_is_cut(limited_server):
    """CSV has no place for a status: its body is cut, and the client sees
    an incomplete transfer instead of a table that looks whole."""
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.post(limited_server.url + "/api/tap/sync",
                      data={"LANG": "ADQL", "QUERY": ENDLESS_ADQL, "MAXREC": 1_000_000_000, "RESPONSEFORMAT": "csv"},
                      timeout=120).content


def test_an_async_job_stopped_mid_stream_ends_in_error_without_a_result(limited_server):
    url, job = run_uws_job(limited_server.url, "/api/tap/async",
                           {"LANG": "ADQL", "QUERY": ENDLESS_ADQL, "MAXREC": 1_000_000_000,
                            "RESPONSEFORMAT": "votable/b2", "PHASE": "RUN"})
    assert job.phase == "ERROR", job.phase
    assert "execution duration" in requests.get(url + "/error", timeout=60).text
    assert not job.results, job.results
    assert requests.get(url + "/results/result", timeout=60).status_code == 404
