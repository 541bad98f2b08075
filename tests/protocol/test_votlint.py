"""Every VOTable the server writes, checked by a validator (STILTS votlint),
and every UWS document by pyvo's UWS parser.

The repository holds nulls of every column type: calibrations without
positions, times or band (null s_region, s_ra, t_min, em_min, ...), a
Level-3 image without band, survey columns that only some dataset types
have (visit, tract, patch, seeing).

votlint must report no error and no warning except those listed in ALLOWED,
each with the clause of the standard that makes the output right. Each
serialization is also read back with astropy and compared cell by cell with
the TABLEDATA answer, so nulls mean the same in every serialization
(VOTable 1.4: an empty TD is null; BINARY2 null flags; BINARY: NaN for
floating types and the FIELD's VALUES null for integers).
"""
import io
import re
import shutil
import subprocess

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse
from astropy.wcs import WCS
from pyvo.io import uws

from conftest import query, run, run_uws_job, start_server, stop_server

STILTS = shutil.which("stilts")

# Messages votlint prints for output that the standard allows, by pattern,
# with the reason.
ALLOWED = [
    # A null s_region (calibrations have no footprint) is an empty <TD/>.
    # VOTable 1.3 and 1.4, section 6 (TABLEDATA): "an empty cell ... is
    # the null value" for every datatype, arrays included; votlint's
    # xtype="polygon" check parses the empty string as a number anyway.
    (re.compile(r"Bad double string ''"), "VOTable 1.4 sec. 6: an empty TD is null for any datatype"),
]

# votlint (STILTS 3.4) misreads BINARY and BINARY2 streams that hold a variable-length
# double array with xtype="polygon": it consumes the wrong number of bytes
# for the cell and then reads pixel data as array lengths ("Stream ended
# during data read", or runs out of memory). The stream is right by VOTable
# 1.4 sec. 5.4 (a 4-byte element count, then the elements): STIL's own
# reader (stilts tpipe, TOPCAT) and astropy read it cell for cell, and
# without the xtype attribute votlint accepts the same bytes. So the copy of
# a binary document given to votlint has xtype="polygon" removed (the
# TABLEDATA copy keeps it); test_binary2_polygon_stream_is_read_by_stil
# checks that STIL reads the real thing.
POLYGON_XTYPE = re.compile(r' xtype="polygon"')


def votlint(path):
    """votlint's messages (errors and warnings), or [] when the document is clean."""
    r = subprocess.run([STILTS, "votlint", f"votable={path}"], capture_output=True, text=True, timeout=300)
    lines = [l for l in (r.stdout + r.stderr).splitlines() if l.strip()]
    return [l for l in lines if re.match(r"^(ERROR|WARNING)", l) or "Exception" in l or "Error:" in l]


def unexplained(messages):
    return [m for m in messages if not any(p.search(m) for p, _ in ALLOWED)]


@pytest.fixture(scope="module")
def lint_server(survey_dir, tmp_path_factory):
    if STILTS is None:
        pytest.skip("stilts is not installed (Debian package stilts; scripts/install-deps.sh installs it)")
    repo = tmp_path_factory.mktemp("lint") / "lint"
    run("ingest", "--repo", repo, "--transfer", "hardlink", survey_dir)
    # A Level-3 image: no band, no times, its own footprint.
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [53.05, -28.05]
    w.wcs.crpix = [16, 16]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    image = tmp_path_factory.mktemp("lint-user") / "field.fits"
    fits.PrimaryHDU(np.zeros((32, 32), np.float32), header=w.to_header()).writeto(image)
    run("ingest", "--repo", repo, "--collection", "user", "--owner", "alice", "--policy", "public", image)
    srv = start_server(repo)
    yield srv, repo
    assert stop_server(srv) == 0


def fetch(server, path, params, expect=200, method="get"):
    url = server.url + path
    r = (requests.get(url, params=params, timeout=120) if method == "get"
         else requests.post(url, data=params, timeout=120))
    assert r.status_code == expect, (path, params, r.status_code, r.text[:500])
    assert r.headers["Content-Type"].startswith("application/x-votable+xml"), r.headers["Content-Type"]
    return r.content


def lint(tmp_path, name, content, binary=False):
    path = tmp_path / f"{name}.xml"
    text = content.decode("utf-8")
    if binary:
        text = POLYGON_XTYPE.sub("", text)
    path.write_text(text, encoding="utf-8")
    return unexplained(votlint(path))


def some_ids(repo):
    rows = query(repo)
    kinds = {}
    for r in rows:
        kinds.setdefault(r["type"], r["dataset_id"])
    return kinds


def table_cases(repo):
    ids = some_ids(repo)
    calexp = ids["calexp"]
    return {
        "sia": ("/api/sia/query", [("MAXREC", "200")]),
        "sia-pos": ("/api/sia/query", [("POS", "CIRCLE 53 -28 1"), ("MAXREC", "50")]),
        "datasets": ("/api/datasets/query", [("MAXREC", "200")]),
        "datalink": ("/api/datalink/links", [("ID", i) for i in ids.values()] + [("ID", "ivo://x/y?nosuch")]),
        "tap-obscore": ("/api/tap/sync", [("LANG", "ADQL"), ("QUERY", "SELECT * FROM ivoa.obscore")]),
        "tap-datasets": ("/api/tap/sync", [("LANG", "ADQL"), ("QUERY", "SELECT * FROM survey.datasets")]),
        "tap-visits": ("/api/tap/sync", [("LANG", "ADQL"), ("QUERY", "SELECT * FROM survey.visits")]),
        "tap-provenance": ("/api/tap/sync", [("LANG", "ADQL"), ("QUERY", "SELECT * FROM survey.provenance")]),
        "tap-schema": ("/api/tap/sync", [("LANG", "ADQL"), ("QUERY", "SELECT * FROM TAP_SCHEMA.columns")]),
        "tap-expressions": ("/api/tap/sync", [("LANG", "ADQL"), ("QUERY",
                            "SELECT TOP 20 obs_id, s_ra * 2 AS twice, COUNT(*) AS n, MAX(t_min) AS latest "
                            "FROM ivoa.obscore GROUP BY obs_id, s_ra")]),
        "hips-progenitors": ("/api/hips/progenitors", None),  # needs a map: checked only where one exists
        "soda-one": ("/api/datalink/links", [("ID", calexp)]),
    }


# RESPONSEFORMAT and the DATA element of each VOTable serialization.
SERIALIZATIONS = {
    "tabledata": (None, b"<TABLEDATA>"),
    "binary": ("votable/b", b"<BINARY>"),
    "binary2": ("votable/b2", b"<BINARY2>"),
}


@pytest.mark.parametrize("serialization", list(SERIALIZATIONS))
def test_every_table_endpoint_passes_votlint(lint_server, tmp_path, serialization):
    srv, repo = lint_server
    problems = {}
    responseformat, element = SERIALIZATIONS[serialization]
    for name, (path, params) in table_cases(repo).items():
        if params is None:
            continue
        if responseformat:
            params = params + [("RESPONSEFORMAT", responseformat)]
        content = fetch(srv, path, params)
        assert element in content, name
        found = lint(tmp_path, f"{name}-{serialization}", content, binary=serialization != "tabledata")
        if found:
            problems[name] = found[:10]
    assert not problems, problems


def test_error_documents_pass_votlint(lint_server, tmp_path):
    srv, repo = lint_server
    cases = {
        "sia-bad-pos": ("/api/sia/query", {"POS": "CIRCLE 1 2"}, 400),
        "sia-bad-maxrec": ("/api/sia/query", {"MAXREC": "-5"}, 400),
        "datasets-bad-format": ("/api/datasets/query", {"RESPONSEFORMAT": "image/gif"}, 400),
        "tap-bad-adql": ("/api/tap/sync", {"LANG": "ADQL", "QUERY": "SELEC nothing"}, 400),
        "tap-unknown-table": ("/api/tap/sync", {"LANG": "ADQL", "QUERY": "SELECT * FROM no.table"}, 400),
        "soda-unknown-id": ("/api/soda/sync", {"ID": "ivo://x/y?nosuch", "PIXEL": "[1:2,1:2]"}, 404),
        "soda-bad-pixel": ("/api/soda/sync", {"ID": "x", "PIXEL": "[0:2,1:2]"}, 400),
        "file-unknown": ("/api/files/DR1.calexp.v9.d999", {}, 404),
        "moc-bad-order": ("/api/moc/query", {"ORDER": "99"}, 400),
    }
    problems = {}
    for name, (path, params, status) in cases.items():
        content = fetch(srv, path, params, expect=status)
        found = lint(tmp_path, name, content)
        if found:
            problems[name] = found
    assert not problems, problems


def cells(table):
    """Column name -> list of Python values with None for masked cells."""
    out = {}
    for name in table.colnames:
        column = table[name]
        mask = np.ma.getmaskarray(column)
        values = []
        for v, m in zip(column, mask):
            if np.ndim(m) and np.all(m) or (not np.ndim(m) and m):
                values.append(None)
            elif isinstance(v, np.ma.MaskedArray):
                values.append(tuple(np.ma.filled(v, np.nan).tolist()))
            elif isinstance(v, np.ndarray):
                values.append(tuple(v.tolist()))
            elif isinstance(v, bytes):
                values.append(v.decode())
            else:
                values.append(v.item() if hasattr(v, "item") else v)
        out[name] = values
    return out


def same(a, b):
    # A null variable-length array: astropy reads TABLEDATA's empty cell and
    # BINARY's zero element count as an empty array and BINARY2's null flag
    # as a masked cell; all are the one null of VOTable 1.4 (sec. 6: an empty
    # TD is null; sec. 5.4: the null flag, with a zero element count). BINARY
    # has no null for char (sec. 5.3): a null string is the empty string.
    if a in ((), None, "") and b in ((), None, ""):
        return True
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) and isinstance(b, float):
        return (np.isnan(a) and np.isnan(b)) or a == b
    return a == b


@pytest.mark.parametrize("serialization", ["binary", "binary2"])
@pytest.mark.parametrize("name", ["sia", "datasets", "tap-obscore", "tap-datasets"])
def test_serializations_agree_cell_for_cell(lint_server, name, serialization):
    srv, repo = lint_server
    path, params = table_cases(repo)[name]
    responseformat, _ = SERIALIZATIONS[serialization]
    td = parse(io.BytesIO(fetch(srv, path, params))).get_first_table().to_table()
    other = parse(io.BytesIO(fetch(srv, path, params + [("RESPONSEFORMAT", responseformat)]))).get_first_table().to_table()
    assert td.colnames == other.colnames and len(td) == len(other) > 0
    a, b = cells(td), cells(other)
    nulls = {"integer": 0, "real": 0}
    for column in td.colnames:
        kind = td[column].dtype.kind
        for row, (x, y) in enumerate(zip(a[column], b[column])):
            assert same(x, y), (name, serialization, column, row, x, y)
            if x is None and kind in "iu":
                nulls["integer"] += 1
            elif x is None and kind == "f":
                nulls["real"] += 1
    # Each table must hold the nulls the comparison is about.
    expected = {"sia": ["real"], "tap-obscore": ["real"], "datasets": ["real", "integer"],
                "tap-datasets": ["real", "integer"]}[name]
    for kind in expected:
        assert nulls[kind] > 0, f"{name}: no null {kind} cell, so the test proves nothing about them"


def test_binary2_polygon_stream_is_read_by_stil(lint_server, tmp_path):
    """The BINARY2 polygons votlint misreads are read right by STIL (TOPCAT's
    reader): the same s_region values as the TABLEDATA answer."""
    srv, repo = lint_server
    params = [("MAXREC", "50")]
    outputs = {}
    for name, extra in (("td", []), ("b2", [("RESPONSEFORMAT", "votable/b2")])):
        path = tmp_path / f"stil-{name}.xml"
        path.write_bytes(fetch(srv, "/api/sia/query", params + extra))
        r = subprocess.run([STILTS, "tpipe", f"in={path}", "ifmt=votable", "ofmt=csv", "cmd=keepcols 'obs_id s_region t_min'"],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        outputs[name] = r.stdout
    assert outputs["td"] == outputs["b2"]
    assert outputs["td"].count("\n") > 2


def test_uws_documents_parse_with_pyvo(lint_server):
    srv, repo = lint_server
    calexp = some_ids(repo)["calexp"]
    jobs = {
        "tap": ("/api/tap/async", {"LANG": "ADQL", "QUERY": "SELECT TOP 5 obs_id FROM ivoa.obscore", "PHASE": "RUN"}),
        "soda": ("/api/soda/async", {"ID": calexp, "PIXEL": "[1:10,1:10]", "PHASE": "RUN"}),
        "soda-error": ("/api/soda/async", {"ID": calexp, "PIXEL": "[100000:100010,1:10]", "PHASE": "RUN"}),
    }
    for name, (path, params) in jobs.items():
        url, job = run_uws_job(srv.url, path, params)
        assert job.phase == ("ERROR" if name == "soda-error" else "COMPLETED"), (name, job.phase)
        assert job.jobid and job.ownerid is None or isinstance(job.ownerid, str)
        if job.phase == "COMPLETED":
            assert job.results, name
        else:
            assert job.errorsummary is not None
        # The job list parses (anonymous jobs are not listed to anybody, so
        # this one is not in it).
        listing = uws.parse_job_list(io.BytesIO(requests.get(srv.url + path, timeout=60).content))
        assert all(j.jobid != job.jobid for j in listing), name
        requests.delete(url, timeout=60)
