"""Virtual difference images and parts of virtual products.

A survey simulated with --virtual keeps raws, calibrations and coadds; its
goodSeeingCoadd patches are made from the two best-seeing visits. Ingest
registers, besides a virtual calexp per raw, a virtual difference image for
every raw whose visit is not in the template: the calexp minus the template
warped onto its grid and PSF-matched to it. Cutouts of virtual products that
are not cached are computed over the requested box only, from the
measurements their one whole re-creation kept, and equal the cutouts of the
whole files byte for byte.
"""
import io
import pathlib
import random
import shutil
import signal
import threading
import time

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse as votable_parse
from astropy.wcs import WCS
from pyvo.dal import TAPService
from pyvo.dal.adhoc import DatalinkResults

from conftest import run, start_server, stop_server, template_visits

SIM = ["--visits", "6", "--bands", "r", "--detectors", "2", "--detector-size", "512", "--seed", "5",
       "--template-visits", "2", "--no-comp", "--virtual"]


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("diffim-survey")
    run("simulate", "--out", out, *SIM)
    return out


@pytest.fixture(scope="module")
def repo(survey, tmp_path_factory):
    repo = tmp_path_factory.mktemp("diffim-repo") / "repo"
    out = run("ingest", "--repo", repo, survey).stdout
    # 6 visits x 2 detectors; the 2 template visits get no difference image.
    assert "and 12 virtual calexps and 8 virtual diffims" in out, out
    return repo


@pytest.fixture(scope="module")
def server(repo):
    srv = start_server(repo)
    yield srv
    assert stop_server(srv) == 0, srv.log()[-3000:]


def rows(server, dataset_type):
    tap = TAPService(server.url + "/api/tap")
    return tap.search("SELECT d.dataset_id, d.storage, d.visit, d.detector, o.calib_level, o.dataproduct_subtype "
                      "FROM survey.datasets AS d JOIN ivoa.obscore AS o ON o.obs_id = d.dataset_id "
                      f"WHERE d.dataset_type = '{dataset_type}' ORDER BY d.dataset_id").to_table()


def links_of(server, dataset_id):
    r = requests.get(server.url + "/api/datalink/links", params={"ID": dataset_id}, timeout=60)
    assert r.status_code == 200, r.text[:500]
    return DatalinkResults(votable_parse(io.BytesIO(r.content)))


def file_url(server, dataset_id):
    return f"{server.url}/api/files/{dataset_id}"


def clear_cache_files(repo):
    """Removes the cached files but keeps the measurements (as LRU eviction does)."""
    out = run("cache", "prune", "--repo", repo, "--max-mb", 0).stdout
    assert "0 files, 0 bytes left" in out, out


def test_difference_images_are_registered_for_visits_outside_the_template(server, survey):
    diffims = rows(server, "diffim")
    assert len(diffims) == 8
    assert {str(s) for s in diffims["storage"]} == {"virtual"}
    assert {int(c) for c in diffims["calib_level"]} == {3}  # ObsCore: an enhanced product
    assert {str(s) for s in diffims["dataproduct_subtype"]} == {"diffim"}
    excluded = template_visits(survey)
    assert len(excluded) == 2
    assert not excluded & {int(v) for v in diffims["visit"]}


def test_datalink_names_calexp_templates_raw_and_calibrations_and_the_recipe(server):
    dataset_id = str(rows(server, "diffim")["dataset_id"][0])
    links = links_of(server, dataset_id)
    progenitors = {str(l["local_semantics"]) for l in links.bysemantics("#progenitor", include_narrower=False)}
    assert progenitors == {"calexp", "template", "raw", "bias", "flat"}, progenitors
    provenance = list(links.bysemantics("#provenance", include_narrower=False))
    assert len(provenance) == 1 and str(provenance[0]["content_type"]) == "application/json"
    url = str(provenance[0]["access_url"])
    doc = requests.get(url if url.startswith("http") else server.url + url, timeout=60).json()
    assert doc["dataset_id"] == dataset_id
    recipe = doc["recipe"]
    assert recipe["product"] == "diffim" and recipe["versions"]["algorithm"].startswith("pixserve-diffim-")
    roles = [i["role"] for i in recipe["inputs"]]
    assert roles[0] == "calexp" and "template" in roles
    assert all(len(i["checksum"]) == 64 for i in recipe["inputs"])
    # A stored file has no recipe.
    raw = str(rows(server, "raw")["dataset_id"][0])
    assert requests.get(file_url(server, raw) + "/recipe", timeout=60).status_code == 404


def test_a_difference_image_is_noise_where_there_is_no_source(server):
    for dataset_id in [str(i) for i in rows(server, "diffim")["dataset_id"]]:
        r = requests.get(file_url(server, dataset_id), timeout=120)
        assert r.status_code == 200, r.text[:500]
        with fits.open(io.BytesIO(r.content), checksum=True) as hdul:
            primary = hdul[0].header
            assert primary["DSTYPE"] == "diffim" and primary["DIFFVER"].startswith("pixserve-diffim-")
            assert primary["KERNSRC"] in ("fit", "fit-constant", "model")
            image, variance, mask = (hdul[n].data for n in ("IMAGE", "VARIANCE", "MASK"))
            assert hdul["IMAGE"].header["BUNIT"] == "electron"
            clean = (mask == 0) & np.isfinite(image)
            if clean.sum() < 10000:
                continue  # the template covers little of this CCD: most pixels are NO_DATA
            z = image[clean] / np.sqrt(variance[clean])
            assert abs(np.mean(z)) < 0.1, (dataset_id, np.mean(z))
            assert 0.9 < np.std(z) < 1.1, (dataset_id, np.std(z))
            # No template: NaN and the NO_DATA bit (bit 8 in MP_NO_DATA).
            no_data = 1 << hdul["MASK"].header["MP_NO_DATA"]
            assert np.all(np.isnan(image[(mask & no_data) != 0]))


def random_requests(server, dataset_ids, count, seed):
    """(dataset ID, SODA parameters) pairs: circles and boxes (POLYGON) at
    random places of each product, some across its edges."""
    rng = random.Random(seed)
    wcs_of = {}
    out = []
    for k in range(count):
        dataset_id = dataset_ids[k % len(dataset_ids)]
        if dataset_id not in wcs_of:
            text = requests.get(file_url(server, dataset_id) + "/header", timeout=60).text
            cards = next(block for block in text.split("\n\n") if "EXTNAME = 'IMAGE" in block)
            wcs_of[dataset_id] = WCS(fits.Header.fromstring(cards, sep="\n"))
        wcs = wcs_of[dataset_id]
        x, y = rng.uniform(-20, 530), rng.uniform(-20, 530)
        ra, dec = wcs.all_pix2world([[x, y]], 0)[0]
        if k % 2 == 0:
            out.append((dataset_id, {"ID": dataset_id, "CIRCLE": f"{ra} {dec} {rng.uniform(1, 15) / 3600}"}))
        else:
            h = rng.uniform(2, 30)
            corners = wcs.all_pix2world([[x - h, y - h], [x + h, y - h], [x + h, y + h], [x - h, y + h]], 0)
            out.append((dataset_id, {"ID": dataset_id, "POLYGON": " ".join(f"{a} {b}" for a, b in corners)}))
    return out


def cut(server, params):
    r = requests.get(server.url + "/api/soda/sync", params=params, timeout=120)
    assert r.status_code in (200, 204), r.text[:500]
    return r.status_code, r.content


def test_cutouts_of_parts_equal_cutouts_of_the_whole_products(server, repo):
    """200 random circles and boxes on virtual calexps and diffims: computed
    from the parts they need (nothing cached) they equal, byte for byte, the
    same cutouts of the whole re-created files."""
    ids = [str(i) for i in rows(server, "diffim")["dataset_id"]] + [str(i) for i in rows(server, "calexp")["dataset_id"]]
    # One whole re-creation of each keeps its measurements (and the kernel).
    run("materialize", "--repo", repo, "--id", *ids)
    requests_ = random_requests(server, ids, 200, seed=11)
    clear_cache_files(repo)
    before = server.log().count("re-created ")
    from_parts = [cut(server, p) for _, p in requests_]
    assert server.log().count("re-created ") == before, "a part re-created a whole product"
    assert not list((pathlib.Path(repo) / "cache" / "products").rglob("*.fits"))
    for dataset_id in ids:
        assert requests.get(file_url(server, dataset_id), timeout=120).status_code == 200
    from_files = [cut(server, p) for _, p in requests_]
    with_pixels = 0
    for (dataset_id, params), part, whole in zip(requests_, from_parts, from_files):
        assert part == whole, (dataset_id, params)
        with_pixels += part[0] == 200
    assert with_pixels > 150


def test_a_cold_stamp_of_a_never_made_product_makes_it_once(server, repo):
    """Without kept measurements the first cutout makes the whole product
    (which keeps them); the next cold one is a part."""
    dataset_id = str(rows(server, "diffim")["dataset_id"][1])
    (_, params), = random_requests(server, [dataset_id], 1, seed=3)
    shutil.rmtree(pathlib.Path(repo) / "cache" / "products", ignore_errors=True)
    before = server.log().count("re-created ")
    first = cut(server, params)
    assert server.log().count("re-created ") > before
    clear_cache_files(repo)
    before = server.log().count("re-created ")
    assert cut(server, params) == first
    assert server.log().count("re-created ") == before


def test_a_changed_template_is_reported_not_used(server, repo):
    shutil.rmtree(pathlib.Path(repo) / "cache" / "products", ignore_errors=True)
    dataset_id = str(rows(server, "diffim")["dataset_id"][0])
    recipe = requests.get(file_url(server, dataset_id) + "/recipe", timeout=60).json()["recipe"]
    template_id = next(i["id"] for i in recipe["inputs"] if i["role"] == "template")
    template = next(pathlib.Path(repo).rglob(f"{template_id}.fits"))
    original = template.read_bytes()
    try:
        with fits.open(template, mode="update") as hdul:
            hdul["IMAGE"].data[0, 0] += 1.0
        r = requests.get(file_url(server, dataset_id), timeout=60)
        assert r.status_code == 500
        assert "no longer matches the recipe" in r.text and template_id in r.text
        assert not list((pathlib.Path(repo) / "cache" / "products").rglob("*.fits"))
    finally:
        template.write_bytes(original)
    assert requests.get(file_url(server, dataset_id), timeout=60).status_code == 200


def test_kill_9_while_writing_leaves_nothing_a_restart_serves(repo, tmp_path):
    """A server killed (SIGKILL) while it re-creates products leaves no
    cache entry that a restart would serve; the restarted server makes them
    again, correctly."""
    cache = pathlib.Path(repo) / "cache" / "products"
    srv = start_server(repo)
    try:
        ids = [str(i) for i in rows(srv, "diffim")["dataset_id"]]
        shutil.rmtree(cache, ignore_errors=True)
        def fetch(dataset_id):
            try:
                requests.get(file_url(srv, dataset_id), timeout=120)
            except requests.ConnectionError:
                pass  # the server is killed under it

        threads = [threading.Thread(target=fetch, args=(i,)) for i in ids]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not [p for p in cache.rglob("*.partial-*")]:
            time.sleep(0.002)
        srv.process.send_signal(signal.SIGKILL)
        srv.process.wait()
        for t in threads:
            t.join()
    finally:
        if srv.process.poll() is None:
            srv.process.kill()
    finished_before = {p.name for p in cache.rglob("*.fits") if ".partial-" not in p.name}
    srv = start_server(repo)
    try:
        assert not list(cache.rglob("*.partial-*")), "partial files survived the restart"
        for dataset_id in ids:
            r = requests.get(file_url(srv, dataset_id), timeout=120)
            assert r.status_code == 200
            with fits.open(io.BytesIO(r.content), checksum=True) as hdul:
                assert hdul[0].header["DSTYPE"] == "diffim"
                assert hdul["IMAGE"].data.shape == (512, 512)
        # Whatever had been finished before the kill was complete.
        for name in finished_before:
            with fits.open(next(cache.rglob(name)), checksum=True) as hdul:
                assert hdul["VARIANCE"].data.shape == (512, 512)
    finally:
        assert stop_server(srv) == 0


def test_virtual_products_follow_later_changes_of_their_raws_rights(server, repo):
    """`pixserve rights` on a visit's raws: its virtual calexps and
    difference images become invisible to an anonymous caller with them
    (unknown IDs on every endpoint, nothing made), and visible again when
    the raws are public again."""
    diffim = rows(server, "diffim")[0]
    visit, dataset_id = int(diffim["visit"]), str(diffim["dataset_id"])
    calexp_id = dataset_id.replace(".diffim.", ".calexp.")
    shutil.rmtree(pathlib.Path(repo) / "cache" / "products", ignore_errors=True)
    out = run("rights", "--repo", repo, "--visit", visit, "--type", "raw", "--policy", "data-rights").stdout
    assert "2 stored datasets and 4 virtual products made from them are now data-rights" in out, out
    try:
        tap = TAPService(server.url + "/api/tap")
        hidden = tap.search(f"SELECT dataset_id FROM survey.datasets WHERE visit = {visit}").to_table()
        assert len(hidden) == 0
        for product in (dataset_id, calexp_id):
            for path in (f"/api/files/{product}", f"/api/files/{product}/recipe"):
                assert requests.get(server.url + path, timeout=60).status_code == 404, path
            r = requests.get(server.url + "/api/soda/sync", params={"ID": product, "PIXEL": "[1:8,1:8]"}, timeout=60)
            assert r.status_code == 404
        links = links_of(server, dataset_id)
        assert [str(e) for e in links["error_message"] if str(e)], "an invisible ID must be a DataLink error row"
        assert not list((pathlib.Path(repo) / "cache" / "products").rglob("*.fits"))
        refused = run("rights", "--repo", repo, "--id", dataset_id, "--policy", "public", check=False)
        assert refused.returncode != 0 and "set the rights of its raw" in refused.stderr + refused.stdout
    finally:
        run("rights", "--repo", repo, "--visit", visit, "--type", "raw", "--policy", "public")
    assert requests.get(file_url(server, dataset_id), timeout=120).status_code == 200


def small_file_size_limit():
    """In the server's process: every write past 512 KiB fails (EFBIG), as
    writes fail on a full disk; the signal that would kill the process
    instead is ignored, as an ignored signal stays ignored across exec."""
    import resource
    resource.setrlimit(resource.RLIMIT_FSIZE, (512 * 1024, resource.RLIM_INFINITY))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def test_a_full_disk_during_re_creation_leaves_the_cache_consistent(repo):
    """Writes that fail while a product is written: a server-side DALI
    error, no entry and no partial file in the cache, the server still
    serving; with room again the product is made."""
    cache = pathlib.Path(repo) / "cache" / "products"
    shutil.rmtree(cache, ignore_errors=True)
    srv = start_server(repo, preexec_fn=small_file_size_limit)
    try:
        dataset_id = str(rows(srv, "diffim")["dataset_id"][0])
        r = requests.get(file_url(srv, dataset_id), timeout=120)
        assert r.status_code == 500, r.text[:300]
        assert "the product cache cannot be written" in r.text, r.text[:600]
        assert not [p for p in cache.rglob("*") if p.is_file() and p.suffix == ".fits"]
        assert not list(cache.rglob("*.partial-*"))
        assert requests.get(srv.url + "/api/datalink/links", params={"ID": dataset_id}, timeout=60).status_code == 200
    finally:
        assert stop_server(srv) == 0
    srv = start_server(repo)
    try:
        r = requests.get(file_url(srv, dataset_id), timeout=120)
        assert r.status_code == 200
        with fits.open(io.BytesIO(r.content), checksum=True) as hdul:
            assert hdul[0].header["DSTYPE"] == "diffim"
    finally:
        assert stop_server(srv) == 0


def test_fifty_concurrent_requests_for_a_cold_difference_image_compute_it_once(server, repo):
    """50 clients at once ask for one difference image nothing of which is
    cached: it is made once, and its calexp once, and all get the same bytes."""
    import concurrent.futures
    shutil.rmtree(pathlib.Path(repo) / "cache" / "products", ignore_errors=True)
    dataset_id = str(rows(server, "diffim")["dataset_id"][2])
    calexp_id = dataset_id.replace(".diffim.", ".calexp.")
    made = lambda i: server.log().count(f"re-created {i} ")
    before = made(dataset_id), made(calexp_id)
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        bodies = list(pool.map(lambda _: requests.get(file_url(server, dataset_id), timeout=120), range(50)))
    assert all(b.status_code == 200 for b in bodies)
    assert len({b.content for b in bodies}) == 1
    assert (made(dataset_id), made(calexp_id)) == (before[0] + 1, before[1] + 1)
