"""The DALI/VOSI service framework through a real `pixserve serve`, checked
with real clients: pyvo's VOSI parsers and DAL query classes, astropy's
VOTable parser in pedantic mode, STILTS votlint, requests, and the npm
OpenAPI validator."""
import csv
import io
import pathlib
import re
import shutil
import subprocess
import tempfile
import warnings
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from astropy.io.votable import parse as parse_votable
from astropy.io.votable import ucd as astropy_ucd

from conftest import ROOT, query, start_server, stop_server

VOTABLE = "application/x-votable+xml"
NS_CAP = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
NS_AVAIL = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"


# ---------------------------------------------------------------- helpers

def _teach_astropy_newer_ucds():
    """astropy 5.2's UCD1+ word list predates two words ObsCore 1.1 uses
    (pos.outline, meta.ref.ivoid); pedantic parsing would reject them.
    Add exactly those, so every other check stays pedantic."""
    astropy_ucd.parse_ucd("meta.id")  # loads the word list
    words = astropy_ucd._ucd_singleton
    for word in ("pos.outline", "meta.ref.ivoid"):
        words._primary.add(word)
        words._secondary.add(word)
        words._descriptions[word] = word
        words._capitalization[word] = word


_teach_astropy_newer_ucds()


def votable(content):
    """Parses a VOTable in astropy's pedantic mode (any warning is an error)."""
    return parse_votable(io.BytesIO(content), verify="exception")


def query_status(table):
    """The QUERY_STATUS INFO values of the results resource, in order."""
    return [(i.value, i.content) for i in table.resources[0].infos if i.name == "QUERY_STATUS"]


def votlint(content):
    """STILTS votlint on a document; fails on any ERROR or WARNING line.

    votlint 3.4.7 (Debian 12) has two false positives with DALI polygon
    columns (xtype="polygon", double arraysize="*"), which STIL itself (stilts
    tpipe) and astropy read correctly:
      - TABLEDATA: a null polygon cell (an empty TD, VOTable's null for a
        variable-length array) is reported as "Bad double string ''";
      - BINARY2: its polygon checker mis-decodes the stream ("Apparent
        negative element count") even for a single valid polygon.
    So a BINARY2 document is linted with the polygon xtype removed (every
    other check unchanged) after STIL has read it, and in TABLEDATA exactly
    the empty-polygon message is tolerated."""
    stilts = shutil.which("stilts")
    if stilts is None:
        pytest.skip("stilts is not installed (scripts/install-deps.sh installs it): votlint checks skipped")
    has_polygons = b'xtype="polygon"' in content
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "doc.xml"
        path.write_bytes(content)
        if has_polygons and b"<BINARY2>" in content:
            read = subprocess.run([stilts, "tpipe", f"in={path}", "ifmt=votable", "ofmt=csv"], capture_output=True,
                                  text=True, timeout=120)
            assert read.returncode == 0, read.stderr
            path.write_bytes(content.replace(b' xtype="polygon"', b""))
        result = subprocess.run([stilts, "votlint", f"votable={path}"], capture_output=True, text=True, timeout=120)
    lines = [l for l in (result.stdout + result.stderr).splitlines() if l.startswith(("ERROR", "WARNING"))]
    if has_polygons:
        lines = [l for l in lines if not re.fullmatch(r"ERROR \(l\.\d+, c\.\d+\): Bad double string ''", l)]
    assert result.returncode == 0 and not lines, "votlint:\n" + "\n".join(lines) + result.stderr


def get(server, path, params=None, **kwargs):
    return requests.get(server.url + path, params=params, timeout=60, **kwargs)


def rows(content, column="obs_id"):
    table = votable(content).get_first_table().to_table()
    return [str(v) for v in table[column]]


def error_message(response, status=400):
    """Checks a DALI error document and returns its message."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == VOTABLE
    doc = votable(response.content)
    assert len(doc.resources) == 1 and doc.resources[0].type == "results"
    statuses = query_status(doc)
    assert len(statuses) == 1 and statuses[0][0] == "ERROR", statuses
    return statuses[0][1]


QUERY = "/api/datasets/query"


# ---------------------------------------------------------------- VOSI

def test_capabilities_parse_with_pyvo(server):
    from pyvo.io.vosi import parse_capabilities
    response = get(server, "/api/datasets/capabilities")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        caps = parse_capabilities(io.BytesIO(response.content))
    # pyvo 1.2.1 does not model ParamHTTP's <param> (VODataService 1.1
    # InputParam) and flags the schema's second <queryType> (maxOccurs=2) as
    # W17; nothing else may be reported.
    unexpected = [str(w.message) for w in caught
                  if not (w.category.__name__ == "W17" and "ParamHTTP" in str(w.message))
                  and not (w.category.__name__ == "UnknownElementWarning" and
                           re.search(r"Unknown element (param|name|description|unit|ucd|dataType)$", str(w.message)))]
    assert not unexpected, unexpected
    by_id = {c.standardid: c for c in caps}
    assert by_id["ivo://ivoa.net/std/VOSI#capabilities"].interfaces[0].accessurls[0].content == \
        server.url + "/api/datasets/capabilities"
    avail = by_id["ivo://ivoa.net/std/VOSI#availability"].interfaces[0]
    assert avail.role == "std" and avail.accessurls[0].content == server.url + "/api/datasets/availability"
    query_cap = by_id[None]  # pixserve-specific: no standardID
    interface = query_cap.interfaces[0]
    assert interface.accessurls[0].content == server.url + QUERY
    assert interface.accessurls[0].use == "base"
    assert list(interface.querytypes) == ["GET", "POST"]

    # The parameters, read with the standard library where pyvo cannot.
    root = ET.fromstring(response.content)
    assert root.tag == f"{{{NS_CAP}}}capabilities"
    iface = [c for c in root.findall("capability") if "standardID" not in c.attrib][0].find("interface")
    assert iface.get(f"{{{NS_XSI}}}type") == "vs:ParamHTTP"
    params = {p.findtext("name"): p for p in iface.findall("param")}
    assert set(params) == {"POS", "DPSUBTYPE", "BAND", "COLLECTION", "VISIT", "DETECTOR", "RAFT", "TRACT", "PATCH",
                           "MAXREC", "RESPONSEFORMAT"}
    assert params["POS"].findtext("unit") == "deg"
    assert params["POS"].findtext("dataType") == "string"
    assert params["VISIT"].findtext("dataType") == "integer"
    assert params["MAXREC"].get("std") == "true" and params["VISIT"].get("std") == "false"
    assert all(p.findtext("description") for p in params.values())


def test_availability_with_pyvo_mixins(server):
    import pyvo.dal.vosi

    class Datasets(pyvo.dal.vosi.AvailabilityMixin, pyvo.dal.vosi.CapabilityMixin):
        def __init__(self, baseurl):
            self.baseurl = baseurl
            self._session = requests.Session()

    service = Datasets(server.url + "/api/datasets")
    assert service.available is True
    assert service.up_since is not None
    notes = service.availability.notes
    assert any(n.startswith("registry database: ok") for n in notes), notes
    assert any(n.startswith("repository files: ok") for n in notes), notes
    assert any(n.startswith("disk space: ok") for n in notes), notes
    assert len(service.capabilities) == 3


def test_availability_summary_xml_and_json(server):
    from pyvo.io.vosi import parse_availability
    response = get(server, "/api/availability")
    assert response.status_code == 200
    root = ET.fromstring(response.content)
    assert root.tag == f"{{{NS_AVAIL}}}availability"
    assert parse_availability(io.BytesIO(response.content)).available is True
    report = get(server, "/api/availability.json").json()
    assert report["available"] is True
    assert [s["name"] for s in report["services"]] == ["datasets", "sia", "datalink", "tap", "soda", "photometry",
                                                       "hips", "moc"]
    assert {c["name"] for c in report["services"][0]["checks"]} == {"registry database", "repository files",
                                                                     "disk space", "product cache"}


def test_availability_reports_failed_checks_with_http_200(repo_dir, tmp_path):
    config = tmp_path / "pixserve.yaml"
    config.write_text("service:\n  min_free_disk_mb: 1073741824   # 1 PiB: more than any test machine has\n")
    srv = start_server(repo_dir, "--config", config)
    try:
        response = requests.get(srv.url + "/api/datasets/availability", timeout=30)
        assert response.status_code == 200
        root = ET.fromstring(response.content)
        assert root.findtext(f"{{{NS_AVAIL}}}available") == "false"
        notes = [n.text for n in root.findall(f"{{{NS_AVAIL}}}note")]
        assert any(n.startswith("disk space: FAILED") for n in notes), notes
        assert requests.get(srv.url + "/api/availability.json", timeout=30).json()["available"] is False
    finally:
        assert stop_server(srv) == 0


# ---------------------------------------------------------------- the query endpoint

def test_tabledata_and_binary2_are_pedantic_votables_that_pass_votlint(server):
    td = get(server, QUERY, {"DPSUBTYPE": "calexp"})
    assert td.status_code == 200
    assert td.headers["Content-Type"] == VOTABLE
    b2 = get(server, QUERY, {"DPSUBTYPE": "calexp", "RESPONSEFORMAT": "application/x-votable+xml;serialization=BINARY2"})
    assert b2.headers["Content-Type"] == "application/x-votable+xml;serialization=BINARY2"
    assert b"<BINARY2>" in b2.content and b"<TABLEDATA>" in td.content
    t_td, t_b2 = votable(td.content), votable(b2.content)
    assert [s for s, _ in query_status(t_td)] == ["OK"]
    a, b = t_td.get_first_table().to_table(), t_b2.get_first_table().to_table()
    assert len(a) > 0 and list(a["obs_id"]) == list(b["obs_id"])
    for name in ("s_ra", "s_dec", "t_min", "em_min", "visit", "detector", "access_estsize"):
        assert list(a[name]) == list(b[name]), name
    field = t_td.get_first_table().get_field_by_id("s_region")
    assert field.datatype == "double" and field.xtype == "polygon" and field.arraysize == "*"
    assert len(a["s_region"][0]) >= 8 and len(a["s_region"][0]) % 2 == 0
    assert t_td.get_first_table().get_field_by_id("obs_publisher_did").ucd == "meta.ref.ivoid"
    votlint(td.content)
    votlint(b2.content)
    # Calibrations have no footprint: a null polygon, which votlint misreads.
    everything = get(server, QUERY, {"MAXREC": "1000"})
    votable(everything.content)
    votlint(everything.content)


def test_csv_and_tsv_have_the_same_rows(server):
    params = {"DPSUBTYPE": "calexp", "MAXREC": "10"}
    ids = rows(get(server, QUERY, params).content)
    c = get(server, QUERY, {**params, "RESPONSEFORMAT": "csv"})
    assert c.headers["Content-Type"].startswith("text/csv")
    parsed = list(csv.DictReader(io.StringIO(c.text)))
    assert [r["obs_id"] for r in parsed] == ids
    t = get(server, QUERY, {**params, "RESPONSEFORMAT": "text/tab-separated-values"})
    assert t.headers["Content-Type"].startswith("text/tab-separated-values")
    parsed = list(csv.DictReader(io.StringIO(t.text), delimiter="\t"))
    assert [r["obs_id"] for r in parsed] == ids
    assert all(len(r["s_region"].split()) >= 8 for r in parsed)


def test_get_post_form_and_multipart_give_identical_results(server):
    params = [("POS", "CIRCLE 53.0 -28.0 0.3"), ("DPSUBTYPE", "calexp"), ("DPSUBTYPE", "raw"), ("MAXREC", "50")]
    g = requests.get(server.url + QUERY, params=params, timeout=60)
    p = requests.post(server.url + QUERY, data=params, timeout=60)
    m = requests.post(server.url + QUERY, files=[(k, (None, v)) for k, v in params], timeout=60)
    assert p.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert m.request.headers["Content-Type"].startswith("multipart/form-data")
    assert g.status_code == p.status_code == m.status_code == 200
    assert len(rows(g.content)) > 0
    assert g.content == p.content == m.content


def test_parameter_names_are_case_insensitive(server):
    upper = get(server, QUERY, {"BAND": "r", "DPSUBTYPE": "calexp", "MAXREC": "5"})
    lower = get(server, QUERY, {"band": "r", "dpsubtype": "calexp", "maxrec": "5"})
    mixed = get(server, QUERY, {"Band": "r", "DpSubType": "calexp", "MaxRec": "5"})
    assert upper.content == lower.content == mixed.content
    assert len(rows(upper.content)) == 5
    # Values are case-sensitive: 'R' is no band.
    assert "BAND" in error_message(get(server, QUERY, {"BAND": "R"}))


def test_repeated_parameters_are_ored(server, repo_dir):
    def ids(params):
        return set(rows(get(server, QUERY, params + [("MAXREC", "1000")]).content))

    visits = sorted({r["visit"] for r in query(repo_dir, "--type", "calexp")})
    assert len(visits) >= 2
    a, b = ids([("VISIT", visits[0])]), ids([("VISIT", visits[1])])
    both = ids([("VISIT", visits[0]), ("VISIT", visits[1])])
    assert a and b and both == a | b
    calexp, raw = ids([("DPSUBTYPE", "calexp")]), ids([("DPSUBTYPE", "raw")])
    assert ids([("DPSUBTYPE", "calexp"), ("DPSUBTYPE", "raw")]) == calexp | raw
    # Different parameters are AND'ed.
    assert ids([("DPSUBTYPE", "calexp"), ("VISIT", visits[0])]) == calexp & a


def test_position_search_matches_the_registry_cli(server, repo_dir):
    expected = sorted(r["dataset_id"] for r in query(repo_dir, "--pos", "53.0,-28.0,0.2", "--type", "calexp"))
    got = sorted(rows(get(server, QUERY, {"POS": "CIRCLE 53.0 -28.0 0.2", "DPSUBTYPE": "calexp"}).content))
    assert got == expected and got
    # A RANGE around the same place and a far-away POLYGON.
    assert rows(get(server, QUERY, {"POS": "RANGE 52.5 53.5 -28.5 -27.5", "DPSUBTYPE": "calexp"}).content)
    assert rows(get(server, QUERY, {"POS": "POLYGON 200 10 201 10 201 11"}).content) == []


def test_maxrec_overflow_and_metadata_only(server, repo_dir):
    r = get(server, QUERY, {"MAXREC": "2"})
    doc = votable(r.content)
    assert len(doc.get_first_table().array) == 2
    assert [s for s, _ in query_status(doc)] == ["OK", "OVERFLOW"]
    text = r.text
    assert text.index('value="OVERFLOW"') > text.index("</TABLE>")
    votlint(r.content)

    r = get(server, QUERY, {"MAXREC": "0"})
    doc = votable(r.content)
    assert len(doc.get_first_table().array) == 0
    assert [s for s, _ in query_status(doc)] == ["OK"]
    assert len(doc.get_first_table().fields) >= 14
    votlint(r.content)

    total = len(query(repo_dir))  # everything is public and released in the test survey
    r = get(server, QUERY, {"MAXREC": str(total)})
    doc = votable(r.content)
    assert len(doc.get_first_table().array) == total
    assert [s for s, _ in query_status(doc)] == ["OK"]


def test_pyvo_reads_results_and_errors(server):
    from pyvo.dal.query import DALQuery
    from pyvo.dal.exceptions import DALQueryError
    results = DALQuery(server.url + QUERY, maxrec=3, DPSUBTYPE="calexp").execute()
    assert len(results) == 3
    assert results.status[0] == "OK"
    assert results.fieldname_with_ucd("pos.eq.ra") == "s_ra"
    with pytest.raises(DALQueryError) as err:
        DALQuery(server.url + QUERY, POS="CIRCLE 10").execute()
    assert "POS" in str(err.value)


BAD_REQUESTS = [
    ({"POS": "CIRCLE 53 -28"}, "POS"),
    ({"POS": "CIRCLE 53 -95 1"}, "POS"),
    ({"POS": "POLYGON 0 0 1 1"}, "POS"),
    ({"POS": "POLYGON 0 0 1 1 0 1 1 0"}, "POS"),  # self-intersecting
    ({"POS": "BOX 1 2 3 4"}, "POS"),
    ({"POS": "CIRCLE NaN 0 1"}, "POS"),
    ({"DPSUBTYPE": "image"}, "DPSUBTYPE"),
    ({"BAND": "x"}, "BAND"),
    ({"VISIT": "one"}, "VISIT"),
    ({"DETECTOR": "-3"}, "DETECTOR"),
    ({"DETECTOR": "1e3"}, "DETECTOR"),
    ({"MAXREC": "-1"}, "MAXREC"),
    ({"MAXREC": "99999999999999999999999"}, "MAXREC"),
    ({"RESPONSEFORMAT": "fits"}, "RESPONSEFORMAT"),
]


@pytest.mark.parametrize("params,name", BAD_REQUESTS, ids=[f"{n}={list(p.values())[0]}" for p, n in BAD_REQUESTS])
def test_bad_values_are_400_dali_errors_naming_the_parameter(server, params, name):
    response = get(server, QUERY, params)
    message = error_message(response, 400)
    assert message.startswith(name), message


def test_error_documents_pass_votlint(server):
    response = get(server, QUERY, {"RESPONSEFORMAT": "fits"})
    message = error_message(response)
    assert "csv" in message and "BINARY2" in message
    votlint(response.content)
    votlint(get(server, "/api/nope").content)


def test_unknown_paths_are_404(server):
    assert "/api/nope/query" in error_message(get(server, "/api/nope/query"), 404)
    assert error_message(requests.post(server.url + "/api/datasets/nothing", data={"a": "1"}, timeout=30), 404)
    assert get(server, "/no/such/page").status_code == 404
    assert requests.put(server.url + QUERY, timeout=30).status_code == 405


def test_request_ids_and_concurrent_requests(server):
    r = get(server, QUERY, {"MAXREC": "1"}, headers={"X-Request-Id": "abc-123"})
    assert r.headers["X-Request-Id"] == "abc-123"
    paths = [QUERY + "?MAXREC=5", "/api/availability", "/api/datasets/capabilities", "/openapi.json"] * 16
    with requests.Session() as s, ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(lambda p: s.get(server.url + p, timeout=60).status_code, paths))
    assert statuses == [200] * len(paths)


# ---------------------------------------------------------------- OpenAPI, docs, landing page

def test_openapi_document_validates_with_the_npm_validator(server, tmp_path):
    doc = get(server, "/openapi.json")
    assert doc.status_code == 200 and doc.headers["Content-Type"] == "application/json"
    spec = doc.json()
    assert spec["servers"][0]["url"] == server.url
    op = spec["paths"][QUERY]
    names = [p["name"] for p in op["get"]["parameters"]]
    assert names == ["POS", "DPSUBTYPE", "COLLECTION", "VISIT", "DETECTOR", "RAFT", "TRACT", "PATCH", "BAND", "MAXREC",
                     "RESPONSEFORMAT"]
    assert set(op["post"]["requestBody"]["content"]) == {"application/x-www-form-urlencoded", "multipart/form-data"}
    node = shutil.which("node")
    validator = ROOT / "tests" / "tools" / "validate-openapi.mjs"
    assert node, "node is required (scripts/install-deps.sh installs nodejs)"
    assert (ROOT / "node_modules" / "@apidevtools" / "swagger-parser").is_dir(), \
        "npm packages missing: run scripts/install-deps.sh (npm ci)"
    path = tmp_path / "openapi.json"
    path.write_bytes(doc.content)
    result = subprocess.run([node, str(validator), str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid OpenAPI 3.0.3" in result.stdout


def test_landing_page_and_local_swagger_ui(server):
    page = get(server, "/")
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    for link in ("api/availability", "docs/", "openapi.json", "api/services.json"):
        assert f'href="{link}' in page.text, link
    # The services themselves are drawn from the directory the page reads
    # (its rendering is checked in the browser test).
    directory = get(server, "/api/services.json").json()
    datasets = next(s for s in directory["services"] if s["name"] == "datasets")
    assert datasets["capabilities_url"] == "/api/datasets/capabilities"
    assert any(e["path"] == "/api/datasets/query" for e in datasets["endpoints"])
    redirect = get(server, "/docs", allow_redirects=False)
    assert redirect.status_code == 301 and redirect.headers["Location"] == "docs/"
    docs = get(server, "/docs/")
    assert docs.status_code == 200 and "swagger-ui-bundle.js" in docs.text
    assert "//" not in re.sub(r"<!--.*?-->", "", docs.text).replace("http://", ""), "no CDN"
    for asset, kind in (("swagger-ui-bundle.js", "javascript"), ("swagger-ui.css", "text/css"),
                        ("swagger-ui-standalone-preset.js", "javascript"), ("pixserve-docs.js", "javascript")):
        r = get(server, "/docs/" + asset)
        assert r.status_code == 200 and kind in r.headers["Content-Type"], asset


# ---------------------------------------------------------------- the command line

def test_config_file_and_flags(repo_dir, tmp_path):
    config = tmp_path / "pixserve.yaml"
    config.write_text(
        "server:\n"
        "  host: 127.0.0.1\n"
        "  port: 9                        # overridden by --port 0\n"
        "  base_url: http://config.example.org\n"
        "service:\n"
        "  maxrec_default: 2\n"
        "  maxrec_limit: 3\n")
    srv = start_server(repo_dir, "--config", config, "--base-url", "http://flag.example.org/pixserve")
    try:
        r = requests.get(srv.url + QUERY, timeout=30)
        assert len(votable(r.content).get_first_table().array) == 2
        r = requests.get(srv.url + QUERY, params={"MAXREC": "1000"}, timeout=30)
        assert len(votable(r.content).get_first_table().array) == 3  # the hard limit
        caps = requests.get(srv.url + "/api/datasets/capabilities", timeout=30).text
        assert "http://flag.example.org/pixserve/api/datasets/query" in caps
        assert "config.example.org" not in caps
        assert requests.get(srv.url + "/openapi.json", timeout=30).json()["servers"][0]["url"] == \
            "http://flag.example.org/pixserve"
    finally:
        assert stop_server(srv) == 0


def test_bad_configuration_is_refused(repo_dir, tmp_path, pixserve):
    config = tmp_path / "bad.yaml"
    config.write_text("service:\n  maxrec_default: 10\n  maxrec_limit: 5\n")
    result = pixserve("serve", "--repo", repo_dir, "--config", config, "--port", "0", check=False)
    assert result.returncode != 0
    assert "maxrec_default" in result.stdout + result.stderr
    config.write_text("server:\n  prot: 80\n")
    result = pixserve("serve", "--repo", repo_dir, "--config", config, check=False)
    assert result.returncode != 0 and "server.prot" in result.stdout + result.stderr
    result = pixserve("serve", "--repo", tmp_path / "not-a-repo", "--port", "0", check=False)
    assert result.returncode != 0
    config.write_text("service:\n  authority: other.example.org\n")
    result = pixserve("serve", "--repo", repo_dir, "--config", config, "--port", "0", check=False)
    assert result.returncode != 0
    assert "differs from the repository's authority" in result.stdout + result.stderr
    config.write_text("jobs:\n  threads: 0\n")
    result = pixserve("serve", "--repo", repo_dir, "--config", config, "--port", "0", check=False)
    assert result.returncode != 0 and "jobs.threads" in result.stdout + result.stderr


def test_sigterm_stops_gracefully(repo_dir):
    srv = start_server(repo_dir)
    assert requests.get(srv.url + "/api/availability", timeout=30).status_code == 200
    assert stop_server(srv) == 0
    assert "stopped" in srv.log()
    assert re.search(r"access id=\w+ .*target=\"/api/availability\" status=200", srv.log())


def test_example_configuration_is_valid(repo_dir):
    srv = start_server(repo_dir, "--config", ROOT / "docs" / "pixserve.example.yaml")
    try:
        assert requests.get(srv.url + "/api/availability", timeout=30).status_code == 200
    finally:
        assert stop_server(srv) == 0
