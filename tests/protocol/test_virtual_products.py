"""Virtual calexps: a survey simulated with --virtual keeps raws, bias and
flats but no calexp files; ingest registers a virtual calexp for every raw,
and every service treats it as it treats a stored one. Its file is re-created
on request, byte for byte the file the simulator writes for the same survey
when it keeps its calexps.
"""
import concurrent.futures
import json
import pathlib
import shutil
import urllib.parse

import pytest
import requests
from astropy.io import fits
from pyvo.dal import TAPService
from pyvo.dal.adhoc import DatalinkResults
from astropy.io.votable import parse as votable_parse
import io

from conftest import run, run_uws_job, start_server, stop_server

SIM = ["--visits", "3", "--detectors", "2", "--detector-size", "128", "--seed", "23", "--no-coadds"]


@pytest.fixture(scope="module")
def surveys(tmp_path_factory):
    stored = tmp_path_factory.mktemp("stored")
    virtual = tmp_path_factory.mktemp("virtual")
    run("simulate", "--out", stored, *SIM)
    run("simulate", "--out", virtual, *SIM, "--virtual")
    return stored, virtual


@pytest.fixture(scope="module")
def virtual_repo(surveys, tmp_path_factory):
    repo = tmp_path_factory.mktemp("vrepo") / "repo"
    out = run("ingest", "--repo", repo, surveys[1]).stdout
    assert "and 6 virtual calexps" in out, out
    return repo


@pytest.fixture(scope="module")
def server(virtual_repo):
    srv = start_server(virtual_repo)
    yield srv
    assert stop_server(srv) == 0, srv.log()[-3000:]


def stored_calexps(survey):
    """{(visit, detector): bytes} of the calexp files the simulator kept."""
    out = {}
    for path in sorted(pathlib.Path(survey).rglob("calexp_*.fits")):
        header = fits.getheader(path)
        out[(header["VISIT"], header["DETECTOR"])] = path.read_bytes()
    return out


def calexp_rows(server):
    tap = TAPService(server.url + "/api/tap")
    rows = tap.search("SELECT d.dataset_id, d.storage, d.visit, d.detector, o.calib_level, o.access_url, o.s_region "
                      "FROM survey.datasets AS d JOIN ivoa.obscore AS o ON o.obs_id = d.dataset_id "
                      "WHERE d.dataset_type = 'calexp' ORDER BY d.dataset_id").to_table()
    return rows


def links_of(server, dataset_id):
    r = requests.get(server.url + "/api/datalink/links", params={"ID": dataset_id}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    return DatalinkResults(votable_parse(io.BytesIO(r.content)))


def this_url(server, dataset_id):
    this = list(links_of(server, dataset_id).bysemantics("#this", include_narrower=False))
    assert len(this) == 1
    url = str(this[0]["access_url"])
    return url if url.startswith("http") else server.url + url


def test_the_virtual_survey_keeps_no_calexp_files(surveys):
    stored, virtual = surveys
    assert len(stored_calexps(stored)) == 6
    assert not list(pathlib.Path(virtual).rglob("calexp_*.fits"))
    assert len(list(pathlib.Path(virtual).rglob("raw_*.fits"))) == 6


def test_virtual_calexps_are_ordinary_rows_in_tap(server):
    rows = calexp_rows(server)
    assert len(rows) == 6
    assert set(rows["storage"]) == {"virtual"}
    assert set(rows["calib_level"]) == {2}
    assert all(str(u).startswith(server.url + "/api/datalink/links?ID=ivo%3A%2F%2F") for u in rows["access_url"])
    assert all(str(r).startswith("POLYGON") or "Polygon" in str(r) for r in rows["s_region"])
    raws = TAPService(server.url + "/api/tap").search(
        "SELECT COUNT(*) AS n FROM survey.datasets WHERE dataset_type = 'raw' AND storage = 'file'").to_table()
    assert raws["n"][0] == 6


def test_sia_finds_them_and_datalink_names_raw_bias_and_flat(server):
    r = requests.get(server.url + "/api/sia/query", params={"COLLECTION": "DR1", "CALIB": "2", "MAXREC": "100"},
                     timeout=60)
    assert r.status_code == 200
    table = votable_parse(io.BytesIO(r.content)).get_first_table().to_table()
    calexps = [row for row in table if row["dataproduct_subtype"] == "calexp"]
    assert len(calexps) == 6
    links = links_of(server, str(calexps[0]["obs_id"]))
    progenitors = sorted(str(l["local_semantics"]) for l in links.bysemantics("#progenitor", include_narrower=False))
    assert progenitors == ["bias", "flat", "raw"]


def test_this_is_the_file_the_simulator_keeps_byte_for_byte(server, surveys):
    expected = stored_calexps(surveys[0])
    rows = calexp_rows(server)
    for row in rows:
        r = requests.get(this_url(server, str(row["dataset_id"])), timeout=120)
        assert r.status_code == 200, r.text[:500]
        assert r.content == expected[(int(row["visit"]), int(row["detector"]))], row["dataset_id"]
    # A second request is a cache hit: the same bytes, nothing re-created.
    before = server.log().count("re-created ")
    again = requests.get(this_url(server, str(rows[0]["dataset_id"])), timeout=60)
    assert again.content == expected[(int(rows[0]["visit"]), int(rows[0]["detector"]))]
    assert server.log().count("re-created ") == before


def test_a_soda_cutout_of_a_virtual_calexp_equals_one_of_the_stored_file(server, surveys, tmp_path):
    rows = calexp_rows(server)
    row = rows[len(rows) - 1]
    with fits.open(io.BytesIO(requests.get(this_url(server, str(row["dataset_id"])), timeout=60).content)) as hdul:
        from astropy.wcs import WCS
        wcs = WCS(hdul["IMAGE"].header)
        ra, dec = wcs.all_pix2world([[64, 64]], 0)[0]
    r = requests.get(server.url + "/api/soda/sync",
                     params={"ID": str(row["dataset_id"]), "CIRCLE": f"{ra} {dec} 0.001"}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    expected = stored_calexps(surveys[0])[(int(row["visit"]), int(row["detector"]))]
    with fits.open(io.BytesIO(r.content)) as cut, fits.open(io.BytesIO(expected)) as full:
        image = cut["IMAGE"]
        x0 = int(round(full["IMAGE"].header["CRPIX1"] - image.header["CRPIX1"]))
        y0 = int(round(full["IMAGE"].header["CRPIX2"] - image.header["CRPIX2"]))
        h, w = image.data.shape
        assert (image.data == full["IMAGE"].data[y0:y0 + h, x0:x0 + w]).all()


def test_concurrent_requests_for_one_cold_product_compute_it_once(server, virtual_repo):
    shutil.rmtree(pathlib.Path(virtual_repo) / "cache" / "products", ignore_errors=True)
    dataset_id = str(calexp_rows(server)["dataset_id"][0])
    url = this_url(server, dataset_id)
    before = server.log().count(f"re-created {dataset_id} ")
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        bodies = list(pool.map(lambda _: requests.get(url, timeout=120), range(50)))
    assert all(b.status_code == 200 for b in bodies)
    assert len({b.content for b in bodies}) == 1
    assert server.log().count(f"re-created {dataset_id} ") == before + 1
    # /status shows the cache: its size, what was re-created and what it served.
    report = requests.get(server.url + "/status.json", timeout=30).json()
    notes = [c for s in report["services"] for c in s["checks"] if c["name"] == "product cache"]
    assert notes and all(c["ok"] for c in notes), notes
    assert "re-created" in notes[0]["note"] and "hit rate" in notes[0]["note"], notes[0]


def test_materialize_fills_the_cache_and_prune_empties_it(server, virtual_repo):
    cache = pathlib.Path(virtual_repo) / "cache" / "products"
    shutil.rmtree(cache, ignore_errors=True)
    visit = int(calexp_rows(server)["visit"][0])
    first = run("materialize", "--repo", virtual_repo, "--visit", visit, "--jobs", 2)
    assert "materialize: 2 virtual datasets, 2 re-created, 0 already cached, 0 failed" in first.stdout, first.stdout
    again = run("materialize", "--repo", virtual_repo, "--visit", visit)
    assert "2 virtual datasets, 0 re-created, 2 already cached" in again.stdout, again.stdout
    assert run("cache", "status", "--repo", virtual_repo).stdout.startswith("cache: 2 files, ")
    pruned = run("cache", "prune", "--repo", virtual_repo, "--max-mb", 0).stdout
    assert "removed 2 files" in pruned and "0 files, 0 bytes left" in pruned, pruned
    refused = run("materialize", "--repo", virtual_repo, check=False)
    assert refused.returncode != 0 and "--visit or --id" in refused.stderr + refused.stdout
    # The server re-creates what was pruned.
    row = calexp_rows(server)[0]
    assert requests.get(this_url(server, str(row["dataset_id"])), timeout=60).status_code == 200


def test_sync_refuses_more_re_creation_than_its_limit_and_async_does_it(server, virtual_repo):
    """Six cold virtual calexps are more than a /sync request may re-create
    (products.sync_max_recreations, 4): refused with a pointer to /async,
    where the same request completes."""
    shutil.rmtree(pathlib.Path(virtual_repo) / "cache" / "products", ignore_errors=True)
    ids = [str(i) for i in calexp_rows(server)["dataset_id"]]
    params = [("ID", i) for i in ids] + [("PIXEL", "[1:8,1:8]")]
    r = requests.get(server.url + "/api/soda/sync", params=params, timeout=60)
    assert r.status_code == 400, r.text[:300]
    assert "UsageError" in r.text and "/async" in r.text and "6 of the requested datasets" in r.text
    assert requests.get(server.url + "/api/soda/sync", params=[("ID", ids[0]), ("PIXEL", "[1:8,1:8]")],
                        timeout=60).status_code == 200  # one is within the limit
    _, job = run_uws_job(server.url, "/api/soda/async", params + [("PHASE", "RUN")])
    assert job.phase == "COMPLETED", job.errorsummary
    assert len(job.results) == 6
    # Now they are cached, /sync may have them all.
    assert requests.get(server.url + "/api/soda/sync", params=params, timeout=60).status_code == 200


def test_a_changed_input_is_reported_not_used(server, virtual_repo):
    """An input whose bytes no longer match the recipe: a DALI error naming
    it, HTTP 500, and nothing in the cache."""
    cache = pathlib.Path(virtual_repo) / "cache" / "products"
    shutil.rmtree(cache, ignore_errors=True)
    row = calexp_rows(server)[0]
    bias = next(pathlib.Path(virtual_repo).rglob(f"*bias.d{int(row['detector']):03d}.fits"))
    original = bias.read_bytes()
    try:
        with fits.open(bias, mode="update") as hdul:
            hdul["IMAGE"].data[0, 0] += 1.0
        r = requests.get(this_url(server, str(row["dataset_id"])), timeout=60)
        assert r.status_code == 500
        assert "no longer matches the recipe" in r.text and "bias" in r.text
        assert not [p for p in cache.rglob("*") if p.is_file()]
    finally:
        bias.write_bytes(original)
    assert requests.get(this_url(server, str(row["dataset_id"])), timeout=60).status_code == 200


def test_a_product_its_caller_may_not_read_is_neither_made_nor_served(surveys, tmp_path):
    """Virtual calexps of data-rights raws: to an anonymous caller they look
    like unknown IDs and nothing is re-created; a data-rights holder gets
    them."""
    repo = tmp_path / "restricted"
    run("ingest", "--repo", repo, "--policy", "data-rights", surveys[1])
    token = json.loads(run("token", "create", "--repo", repo, "--user", "dr", "--groups", "data-rights",
                           "--format", "json").stdout)["token"]
    srv = start_server(repo)
    try:
        holder = {"Authorization": "Bearer " + token}
        tap = TAPService(srv.url + "/api/tap")
        assert len(tap.search("SELECT dataset_id FROM survey.datasets WHERE storage = 'virtual'").to_table()) == 0
        ids = [str(i) for i in TAPService(srv.url + "/api/tap", session=session_with(holder)).search(
            "SELECT dataset_id FROM survey.datasets WHERE storage = 'virtual'").to_table()["dataset_id"]]
        assert len(ids) == 6
        for path in (f"/api/files/{ids[0]}", f"/api/files/{ids[0]}/header", f"/api/files/{ids[0]}/preview.png"):
            assert requests.get(srv.url + path, timeout=60).status_code == 404, path
        cut = requests.get(srv.url + "/api/soda/sync", params={"ID": ids[0], "PIXEL": "[1:8,1:8]"}, timeout=60)
        assert cut.status_code == 404
        assert "re-created" not in srv.log()
        assert not (repo / "cache" / "products").exists()
        r = requests.get(srv.url + f"/api/files/{ids[0]}", headers=holder, timeout=60)
        assert r.status_code == 200 and r.content[:6] == b"SIMPLE"
    finally:
        assert stop_server(srv) == 0


def session_with(headers):
    session = requests.Session()
    session.headers.update(headers)
    return session


def test_ingest_no_virtual_registers_only_the_files(surveys, tmp_path):
    repo = tmp_path / "files-only"
    out = run("ingest", "--repo", repo, "--no-virtual", surveys[1]).stdout
    assert "virtual" not in out, out
    rows = json.loads(run("query", "--repo", repo, "--type", "calexp", "--format", "json").stdout)
    assert rows == []
    dry = run("ingest", "--repo", tmp_path / "dry", "--dry-run", "--format", "json", surveys[1]).stdout
    assert sum(1 for r in json.loads(dry) if r["type"] == "calexp") == 6
