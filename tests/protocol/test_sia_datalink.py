"""SIAv2 and DataLink through a real `pixserve serve`, with Debian's pyvo
(1.2.1) as the client and astropy as the oracle."""
import io
import urllib.parse

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS
from pyvo.dal import sia2
from pyvo.dal.adhoc import DatalinkResults

from conftest import query
from spherical import angular_distance_deg, parse_stcs_polygon, polygon_intersects_circle, unit_vectors
from test_foundation import image_size, science_hdu
from test_services import votable, votlint

SIA_STD = "ivo://ivoa.net/std/SIA#query-2.0"
SODA_STD = "ivo://ivoa.net/std/SODA#sync-1.0"


@pytest.fixture(scope="module")
def registered(repo_dir):
    return query(repo_dir)


@pytest.fixture(scope="module")
def sia(server):
    return sia2.SIAService(server.url + "/api/sia")


@pytest.fixture(scope="module")
def everything(server):
    """Every SIA row (no constraint), by obs_id."""
    r = requests.get(server.url + "/api/sia/query", params={"MAXREC": 100000})
    assert r.status_code == 200
    table = votable(r.content).get_first_table().to_table()
    return {row["obs_id"]: row for row in table}


@pytest.fixture(scope="module")
def footprints(registered):
    """Brute-force oracle: astropy footprints of every science file; a
    logical coadd (no file) is the hull its s_region gives."""
    out = {}
    for row in registered:
        if row["s_region"] is None:
            continue
        if row["file"] is None and row["tract"] is None and row["type"] in ("deepCoadd", "goodSeeingCoadd"):
            out[row["dataset_id"]] = parse_stcs_polygon(row["s_region"])
            continue
        with fits.open(row["file"]) as hdul:
            hdu = science_hdu(hdul)
            w = WCS(hdu.header, fobj=hdul)
            w.pixel_shape = image_size(hdul, hdu)
            out[row["dataset_id"]] = w.calc_footprint(center=False)
    return out


def ids(results):
    return sorted(str(r["obs_id"]) for r in results.to_table())


def test_capabilities_let_pyvo_find_the_query(sia, server):
    caps = requests.get(server.url + "/api/sia/capabilities").text
    assert SIA_STD in caps
    assert sia.search(pos=(0, 0, 0.001), maxrec=1) is not None


def test_pos_searches_match_brute_force(sia, footprints):
    centres = np.array([p.mean(axis=0) for p in footprints.values()])
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(12):
        ra = float(rng.uniform(centres[:, 0].min() - 0.05, centres[:, 0].max() + 0.05))
        dec = float(rng.uniform(centres[:, 1].min() - 0.05, centres[:, 1].max() + 0.05))
        radius = float(rng.choice([0.005, 0.02, 0.1]))
        got = ids(sia.search(pos=(ra, dec, radius), maxrec=100000))
        expected = sorted(d for d, p in footprints.items() if polygon_intersects_circle(p, ra, dec, radius))
        assert got == expected, (ra, dec, radius)
        hits += bool(expected)
    assert hits >= 3


def test_calibrations_only_without_spatial_constraint(server, registered):
    calibs = sorted(r["dataset_id"] for r in registered if r["type"] in ("bias", "flat"))
    assert calibs
    url = server.url + "/api/sia/query"
    params = [("DPSUBTYPE", "bias"), ("DPSUBTYPE", "flat")]
    got = votable(requests.get(url, params=params).content).get_first_table().to_table()
    assert sorted(str(x) for x in got["obs_id"]) == calibs
    got = votable(requests.get(url, params=params + [("POS", "RANGE 0 360 -90 90")]).content)
    assert len(got.get_first_table().array) == 0


def test_band_time_collection(sia, everything, registered):
    lo, hi = 5.5e-7, 6.5e-7
    expected = sorted(k for k, r in everything.items()
                      if not np.ma.is_masked(r["em_min"]) and r["em_min"] <= hi and r["em_max"] >= lo)
    assert expected
    assert ids(sia.search(band=(lo, hi), maxrec=100000)) == expected
    t_rows = [r for r in registered if r["t_min"] is not None]
    t0 = sorted(r["t_min"] for r in t_rows)[len(t_rows) // 2]
    expected = sorted(k for k, r in everything.items()
                      if not np.ma.is_masked(r["t_min"]) and r["t_min"] <= t0 + 0.01 and r["t_max"] >= t0)
    assert expected
    assert ids(sia.search(time=(Time(t0, format="mjd"), Time(t0 + 0.01, format="mjd")), maxrec=100000)) == expected
    assert ids(sia.search(collection="DR1", maxrec=100000)) == sorted(everything)
    assert ids(sia.search(collection="nope", maxrec=100000)) == []


def test_open_intervals_and_or_and(server, everything):
    def get(params):
        r = requests.get(server.url + "/api/sia/query", params=params)
        assert r.status_code == 200, r.text
        return sorted(str(x) for x in votable(r.content).get_first_table().to_table()["obs_id"])
    assert get({"EXPTIME": "-Inf +Inf"}) == sorted(k for k, r in everything.items()
                                                    if not np.ma.is_masked(r["t_exptime"]))
    a = get({"DPSUBTYPE": "calexp"})
    b = get({"DPSUBTYPE": "raw"})
    assert a and b and get([("DPSUBTYPE", "calexp"), ("DPSUBTYPE", "raw")]) == sorted(a + b)
    assert get([("DPSUBTYPE", "calexp"), ("CALIB", "1")]) == []
    assert get({"POL": "I"}) == []
    assert get({"DPTYPE": "cube"}) == []


def test_survey_extensions_and_id(server, registered, everything):
    def get(params):
        r = requests.get(server.url + "/api/sia/query", params=params)
        assert r.status_code == 200, r.text
        return sorted(str(x) for x in votable(r.content).get_first_table().to_table()["obs_id"])
    calexps = [r for r in registered if r["type"] == "calexp"]
    visit = calexps[0]["visit"]
    assert get({"VISIT": visit, "DPSUBTYPE": "calexp"}) == sorted(c["dataset_id"] for c in calexps
                                                                 if c["visit"] == visit)
    raft = str(everything[calexps[0]["dataset_id"]]["raft"])
    assert get({"VISIT": visit, "DPSUBTYPE": "calexp", "RAFT": raft}) == sorted(
        k for k, r in everything.items()
        if str(r["dataproduct_subtype"]) == "calexp" and r["visit"] == visit and str(r["raft"]) == raft)
    coadds = [k for k, r in everything.items()
              if str(r["dataproduct_subtype"]) == "deepCoadd" and not np.ma.is_masked(r["tract"])]
    tract = int(everything[coadds[0]]["tract"])
    patch = str(everything[coadds[0]]["patch"])
    assert get({"TRACT": tract, "PATCH": patch}) == sorted(
        k for k, r in everything.items()
        if not np.ma.is_masked(r["tract"]) and int(r["tract"]) == tract and str(r["patch"]) == patch)
    one, two = sorted(everything)[:2]
    dids = [str(everything[k]["obs_publisher_did"]) for k in (one, two)]
    assert get([("ID", dids[0]), ("ID", dids[1]), ("ID", "ivo://elsewhere/x?y")]) == [one, two]


def test_maxrec_overflow_and_metadata_only(server):
    r = requests.get(server.url + "/api/sia/query", params={"MAXREC": 2})
    doc = votable(r.content)
    assert len(doc.get_first_table().array) == 2
    assert any(i.name == "QUERY_STATUS" and i.value == "OVERFLOW" for i in doc.resources[0].infos)
    r = requests.get(server.url + "/api/sia/query", params={"MAXREC": 0})
    doc = votable(r.content)
    assert len(doc.get_first_table().array) == 0
    assert "access_url" in [f.name for f in doc.get_first_table().fields]


def test_responseformat(server):
    r = requests.get(server.url + "/api/sia/query", params={"RESPONSEFORMAT": "text/csv", "MAXREC": 3})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/csv")
    assert r.text.splitlines()[0].startswith("dataproduct_type,")


@pytest.mark.parametrize("param,value", [
    ("POS", "CIRCLE 1 2"), ("POS", "SQUARE 1 2 3"), ("BAND", "abc"), ("TIME", "1 x"), ("CALIB", "x"),
    ("FOV", "a b"), ("SPATRES", "1 2 3"), ("EXPTIME", "x y"), ("TIMERES", "x"), ("SPECRP", "1 x"),
    ("POL", "W"), ("MAXREC", "-1"), ("RESPONSEFORMAT", "image/gif"), ("VISIT", "x"), ("DETECTOR", "x"),
    ("TRACT", "x"), ("DPSUBTYPE", "nope")])
def test_bad_input_is_a_dali_error(server, param, value):
    r = requests.get(server.url + "/api/sia/query", params={param: value})
    assert r.status_code == 400, (param, value, r.text[:300])
    assert b"QUERY_STATUS" in r.content and b"ERROR" in r.content


def test_sia_votable_is_valid(server):
    r = requests.get(server.url + "/api/sia/query", params={"MAXREC": 20})
    votable(r.content)
    votlint(r.content)


# ---------------------------------------------------------------- DataLink

@pytest.fixture(scope="module")
def a_calexp(sia):
    results = sia.search(maxrec=100000)
    for row in results:
        if str(row["dataproduct_subtype"]) == "calexp":
            return row
    pytest.fail("no calexp")


def test_datalink_this_downloads_with_the_right_wcs(a_calexp):
    assert a_calexp["access_format"] == "application/x-votable+xml;content=datalink"
    links = a_calexp.getdatalink()
    assert isinstance(links, DatalinkResults)
    this = list(links.bysemantics("#this", include_narrower=False))
    assert len(this) == 1
    data = requests.get(this[0]["access_url"]).content
    assert len(data) == int(this[0]["content_length"])
    with fits.open(io.BytesIO(data)) as hdul:
        hdu = science_hdu(hdul)
        w = WCS(hdu.header, fobj=hdul)
        w.pixel_shape = image_size(hdul, hdu)
        corners = w.calc_footprint(center=False)
    region = np.array(a_calexp["s_region"], dtype=float).reshape(-1, 2)
    ours = unit_vectors(region[:, 0], region[:, 1])
    for ra, dec in corners:
        assert angular_distance_deg(ours, unit_vectors(ra, dec)).min() < 1e-9


def test_service_descriptor(a_calexp):
    links = a_calexp.getdatalink()
    soda = [links.get_adhocservice_by_ivoid(SODA_STD)]
    group = next(g for g in soda[0].groups if g.name == "inputParams")
    params = list(group.entries)
    names = {p.name for p in params}
    assert {"ID", "CIRCLE", "POLYGON", "POS", "BAND", "TIME", "POL", "PIXEL"} <= names
    id_param = next(p for p in params if p.name == "ID")
    assert id_param.ref == "ID"
    access = next(p for p in soda[0].params if p.name == "accessURL")
    assert str(access.value).endswith("/api/soda/sync")
    cut = list(links.bysemantics("#cutout", include_narrower=False))
    assert len(cut) == 1 and cut[0]["service_def"] == "soda-sync"


def links_of(server, dataset_id):
    r = requests.get(server.url + "/api/datalink/links", params={"ID": dataset_id})
    assert r.status_code == 200
    return DatalinkResults(votable(r.content))


def linked(links, semantics):
    """{dataset ID: local_semantics} of the links with these semantics."""
    return {urllib.parse.unquote(str(l["access_url"])).rsplit("?", 1)[1]: str(l["local_semantics"])
            for l in links.bysemantics(semantics, include_narrower=False)}


def test_provenance_follows_the_datalink_core_vocabulary(server, registered):
    """Made-from is #progenitor (calibrations already applied included),
    made-of-this is #derivation, calibrations a raw can take are #bias/#flat."""
    by_id = {r["dataset_id"]: r for r in registered}
    calexp = next(r for r in registered if r["type"] == "calexp" and r["band"])
    stem = f"{calexp['collection']}.{{}}.v{calexp['visit']}.d{calexp['detector']:03d}"
    raw_id, comp_id = stem.format("raw"), stem.format("calexp_comp")

    links = links_of(server, calexp["dataset_id"])
    progenitors = linked(links, "#progenitor")
    assert progenitors.get(raw_id) == "raw"
    assert sorted(progenitors.values()) == ["bias", "flat", "raw"]
    assert all(by_id[i]["type"] == kind for i, kind in progenitors.items())
    derived = linked(links, "#derivation")
    if comp_id in by_id:
        assert derived.get(comp_id) == "made-from-this"
    coadds = {i for i in derived if by_id[i]["type"] == "deepCoadd"}
    assert coadds, "a calexp of the demo field goes into a coadd"
    assert not list(links.bysemantics("#calibration", include_narrower=False))

    # The raw: its calexp is a #derivation; the bias and flat that calibrate it.
    raw_links = links_of(server, raw_id)
    assert calexp["dataset_id"] in linked(raw_links, "#derivation")
    bias, flat = linked(raw_links, "#bias"), linked(raw_links, "#flat")
    assert len(bias) == 1 and by_id[next(iter(bias))]["type"] == "bias"
    assert len(flat) == 1 and by_id[next(iter(flat))]["type"] == "flat"
    assert set(bias) | set(flat) == {i for i, k in progenitors.items() if k in ("bias", "flat")}

    # The compressed copy was made from the calexp.
    if comp_id in by_id:
        assert linked(links_of(server, comp_id), "#progenitor") == {calexp["dataset_id"]: "uncompressed"}


def test_detached_header_lists_every_hdu(server, registered):
    for kind in ("calexp", "calexp_comp"):
        record = next((r for r in registered if r["type"] == kind), None)
        if record is None:
            continue
        links = links_of(server, record["dataset_id"])
        header = list(links.bysemantics("#detached-header", include_narrower=False))
        assert len(header) == 1 and header[0]["content_type"] == "text/plain"
        r = requests.get(header[0]["access_url"])
        assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
        with fits.open(record["file"]) as hdul:
            assert r.text.count("\nEND\n") + r.text.startswith("END\n") == len(hdul)
            first = r.text.split("\n")[0]
            assert first.startswith("SIMPLE  =")
            if kind == "calexp_comp":
                assert "ZIMAGE  =" in r.text  # the header as stored, nothing decompressed
            assert all(len(line) <= 80 for line in r.text.split("\n"))
    r = requests.get(server.url + "/api/files/DR1.calexp.v999.d999/header")
    assert r.status_code == 404


def test_progenitors_of_a_coadd_are_its_inputs_table(server, registered):
    coadd = next(r for r in registered if r["type"] == "deepCoadd" and r["file"] is not None)
    with fits.open(coadd["file"]) as hdul:
        inputs = hdul["INPUTS"].data
        cols = inputs.columns.names
        visit_col = next(c for c in cols if c.lower() == "visit")
        det_col = next(c for c in cols if c.lower() == "detector")
        expected = sorted(f"{coadd['collection']}.calexp.v{int(v)}.d{int(d):03d}"
                          for v, d in zip(inputs[visit_col], inputs[det_col]))
    r = requests.get(server.url + "/api/datalink/links", params={"ID": coadd["dataset_id"]})
    links = DatalinkResults(votable(r.content))
    got = sorted(urllib.parse.unquote(str(l["access_url"])).rsplit("?", 1)[1] for l in links.bysemantics("#progenitor", include_narrower=False))
    visible = {x["dataset_id"] for x in registered}
    assert got == [e for e in expected if e in visible]
    assert got


def test_preview_is_a_png(a_calexp):
    links = a_calexp.getdatalink()
    preview = list(links.bysemantics("#preview", include_narrower=False))[0]
    r = requests.get(preview["access_url"])
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png"
    assert r.content.startswith(b"\x89PNG\r\n\x1a\n")
    r2 = requests.get(preview["access_url"])
    assert r2.content == r.content  # cached


def test_file_range_and_etag(server, registered):
    ds = registered[0]["dataset_id"]
    url = f"{server.url}/api/files/{ds}"
    full = requests.get(url)
    assert full.status_code == 200 and full.headers["Content-Type"] == "application/fits"
    assert int(full.headers["Content-Length"]) == len(full.content)
    part = requests.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.content == full.content[10:100]
    etag = full.headers["ETag"]
    assert requests.get(url, headers={"If-None-Match": etag}).status_code == 304
    for bad in ("nope", "..%2F..%2Fetc%2Fpasswd", "%2E%2E"):
        assert requests.get(f"{server.url}/api/files/{bad}").status_code == 404


def test_several_ids_and_unknown_id(server, registered):
    a, b = registered[0]["dataset_id"], registered[1]["dataset_id"]
    r = requests.get(server.url + "/api/datalink/links", params=[("ID", a), ("ID", "nope"), ("ID", b)])
    assert r.status_code == 200
    doc = votable(r.content)
    votlint(r.content)
    table = doc.get_first_table().to_table()
    assert {str(x) for x in table["ID"]} == {a, b, "nope"}
    err = [row for row in table if str(row["ID"]) == "nope"]
    assert len(err) == 1 and str(err[0]["error_message"]).startswith("NotFoundFault")
    names = [f.name for f in doc.get_first_table().fields]
    assert names == ["ID", "access_url", "service_def", "error_message", "semantics", "description", "content_type",
                     "content_length", "content_qualifier", "local_semantics", "link_auth", "link_authorized"]


def test_datalink_requires_id(server):
    r = requests.get(server.url + "/api/datalink/links")
    assert r.status_code == 400
