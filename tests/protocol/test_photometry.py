"""Forced photometry on demand (/api/photometry/sync and /async) through a
real `pixserve serve`.

The session's small survey is ingested twice into one repository: as DR1
(public) and as EMB (embargoed for a very long time, readable by staff
only). Measurements are checked against
  - Debian's photutils (aperture_photometry, CircularAperture, method
    'exact', VARIANCE as error**2, the rejected mask bits as mask) on the
    same pixels of the calexp files, read with astropy: equal to 1e-6;
  - the simulator's truth: constant bright stars measured in apertures of
    3 PSF FWHM agree with their true flux within 3 sigma for 95% of the
    measurements;
and the service's contract: a job gives the table /sync gives, a position
off every image gives an empty table, /sync refuses what belongs to /async
(naming it), anonymous callers get no rows of embargoed images, DataLink
offers the service on a calexp, and a virtual (re-created) calexp is
measured like a stored one.
"""
import csv
import io
import json
import math
import pathlib
import time

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.wcs import WCS
from photutils.aperture import CircularAperture, aperture_photometry

from conftest import query, run, run_uws_job, start_server, stop_server

NJY_MAGNITUDE = 31.4  # AB magnitude of 1 nJy
REJECTED = ("BAD", "SAT", "CR", "NO_DATA")  # mask planes a measurement leaves out
SYNC = "/api/photometry/sync"
BRIGHT = 22.0  # AB: the stars compared with the truth (high signal-to-noise, isolated)
ASYNC = "/api/photometry/async"
SYNC_MAX_POSITIONS = 120
MAX_RADIUS = 12.5


class Setup:
    def __init__(self, repo, server, staff_token):
        self.repo = repo
        self.server = server
        self.url = server.url
        self.staff = {"Authorization": "Bearer " + staff_token}


@pytest.fixture(scope="module")
def phot(survey_dir, tmp_path_factory):
    repo = tmp_path_factory.mktemp("phot-repo") / "repo"
    run("ingest", "--repo", repo, survey_dir)
    run("ingest", "--repo", repo, "--collection", "EMB", "--embargo-hours", "10000000", survey_dir)
    token = json.loads(run("token", "create", "--repo", repo, "--user", "ops", "--groups", "staff", "--format",
                           "json").stdout)["token"]
    config = tmp_path_factory.mktemp("phot-config") / "pixserve.yaml"
    # Limits of the configuration file, not the defaults (100 positions,
    # 30 arcsec), so that the refusals below show they are the operator's.
    config.write_text("auth:\n  embargo_exempt_groups: [staff]\n"
                      f"photometry:\n  sync_max_positions: {SYNC_MAX_POSITIONS}\n  max_radius_arcsec: {MAX_RADIUS}\n")
    server = start_server(repo, "--config", config)
    yield Setup(repo, server, token)
    assert stop_server(server) == 0, server.log()[-3000:]


def table_of(content):
    return parse_single_table(io.BytesIO(content)).to_table()


def photometry(url, params, headers=None, status=200):
    r = requests.post(url + SYNC, data=params, headers=headers or {}, timeout=300)
    assert r.status_code == status, r.text[:1000]
    return r


def calexps(repo, collection="DR1"):
    """{dataset_id: record} of the stored calexps of a collection."""
    return {d["dataset_id"]: d for d in query(repo, "--collection", collection, "--type", "calexp")}


def truth(survey):
    with open(pathlib.Path(survey) / "truth.csv", newline="") as f:
        return list(csv.DictReader(f))


class Calexp:
    """A calexp file as astropy reads it."""

    def __init__(self, path):
        with fits.open(path) as hdul:
            self.header = hdul[0].header
            self.wcs = WCS(hdul["IMAGE"].header)
            self.image = hdul["IMAGE"].data.astype(float)
            self.variance = hdul["VARIANCE"].data.astype(float)
            mask = hdul["MASK"].data
            bits = {k[3:]: v for k, v in hdul["MASK"].header.items() if k.startswith("MP_")}
        reject = 0
        for name in REJECTED:
            reject |= 1 << bits[name]
        self.bad = ((mask & reject) != 0) | ~np.isfinite(self.image) | ~np.isfinite(self.variance)
        cd = self.wcs.pixel_scale_matrix
        self.scale_arcsec = math.sqrt(abs(np.linalg.det(cd))) * 3600.0
        self.to_njy = 10 ** (-0.4 * (self.header["MAGZERO"] - NJY_MAGNITUDE)) / self.header["EXPTIME"]

    def contains(self, ra, dec, margin=0.0):
        # Far points first: the SIP inverse iteration diverges far off the image.
        h, w = self.image.shape
        if not hasattr(self, "centre"):
            self.centre = self.wcs.all_pix2world([[(w - 1) / 2, (h - 1) / 2]], 0)[0]
            self.reach_deg = 0.75 * math.hypot(w, h) * self.scale_arcsec / 3600
        dra = (ra - self.centre[0] + 180) % 360 - 180
        if math.hypot(dra * math.cos(math.radians(dec)), dec - self.centre[1]) > self.reach_deg:
            return False
        x, y = self.wcs.all_world2pix([[ra, dec]], 0, quiet=True)[0]
        return -0.5 + margin <= x < w - 0.5 - margin and -0.5 + margin <= y < h - 0.5 - margin

    def photutils(self, x, y, radius_arcsec):
        aperture = CircularAperture((x, y), r=radius_arcsec / self.scale_arcsec)
        t = aperture_photometry(self.image, aperture, error=np.sqrt(np.where(self.bad, 0.0, self.variance)),
                                mask=self.bad, method="exact")
        return float(t["aperture_sum"][0]) * self.to_njy, float(t["aperture_sum_err"][0]) * self.to_njy


def check_against_photutils(rows, files, radius_arcsec):
    """Every row equals photutils on the same pixels of its image's file."""
    assert len(rows) > 0
    opened = {}
    for row in rows:
        obs_id = str(row["obs_id"])
        image = opened.setdefault(obs_id, Calexp(files[obs_id]))
        x, y = image.wcs.all_world2pix([[float(row["ra"]), float(row["dec"])]], 0)[0]
        assert abs(x - float(row["x"])) < 1e-4 and abs(y - float(row["y"])) < 1e-4, (obs_id, x, y, row)
        if np.ma.is_masked(row["flux"]):
            # No pixel of the aperture could be used.
            assert row["flag_masked"] and image.bad[int(round(float(row["y"]))), int(round(float(row["x"])))], row
            continue
        flux, err = image.photutils(float(row["x"]), float(row["y"]), radius_arcsec)
        assert float(row["flux"]) == pytest.approx(flux, rel=1e-6, abs=1e-6 * err), (obs_id, row["pos_index"])
        assert float(row["flux_err"]) == pytest.approx(err, rel=1e-6), (obs_id, row["pos_index"])
        assert float(row["zero_point"]) == pytest.approx(image.header["MAGZERO"])
        assert float(row["mjd"]) == pytest.approx(image.header["MJD-OBS"] + image.header["EXPTIME"] / 2 / 86400)
        if flux > 0:
            assert float(row["mag"]) == pytest.approx(NJY_MAGNITUDE - 2.5 * math.log10(flux), abs=1e-6)
        else:
            assert np.ma.is_masked(row["mag"])


def stars_on(images, objects, count, margin=12.0, kind=None):
    """Up to `count` truth objects well inside some image."""
    out = []
    for obj in objects:
        if kind and obj["type"] != kind:
            continue
        ra, dec = float(obj["ra"]), float(obj["dec"])
        if any(i.contains(ra, dec, margin) for i in images):
            out.append(obj)
            if len(out) == count:
                break
    return out


@pytest.fixture(scope="module")
def dr1(phot):
    records = calexps(phot.repo)
    assert records
    files = {k: pathlib.Path(v["file"]) for k, v in records.items()}
    return files, {k: Calexp(p) for k, p in files.items()}


def test_aperture_fluxes_equal_photutils_on_the_same_pixels(phot, dr1, survey_dir):
    files, images = dr1
    objects = stars_on(images.values(), truth(survey_dir), 25)
    assert len(objects) >= 10
    params = [("POS", f"{o['ra']} {o['dec']}") for o in objects] + [("COLLECTION", "DR1"), ("RADIUS", "2.0")]
    rows = table_of(photometry(phot.url, params).content)
    # Every epoch of every position: each image that contains it.
    expected = sum(1 for o in objects for i in images.values() if i.contains(float(o["ra"]), float(o["dec"])))
    assert len(rows) == expected
    assert set(rows["dataproduct_subtype"]) == {"calexp"}
    check_against_photutils(rows, files, 2.0)
    # Rows come as light curves: by position, then in time.
    keys = [(int(r["pos_index"]), float(r["mjd"])) for r in rows]
    assert keys == sorted(keys)
    # The stamp is the SODA cutout of that image around the position.
    stamp = rows[0]["stamp_url"]
    assert stamp.startswith(phot.url + "/api/soda/sync?ID=")
    r = requests.get(stamp, timeout=60)
    assert r.status_code == 200, r.text[:300]
    with fits.open(io.BytesIO(r.content)) as hdul:
        assert any(h.header.get("EXTNAME") == "IMAGE" for h in hdul)


def test_bright_constant_stars_agree_with_truth(phot, dr1, survey_dir):
    files, images = dr1
    fwhm = max(i.header["PSFFWHM"] for i in images.values())
    radius = round(3.0 * fwhm, 2)  # a Gaussian PSF loses ~1e-11 of its flux outside 3 FWHM
    objects = truth(survey_dir)
    candidates = [o for o in stars_on(images.values(), objects, 10**6, margin=radius * 2, kind="star")
                  if min(float(o[b]) for b in "ugrizy") < BRIGHT]

    def isolated(o):
        ra, dec = float(o["ra"]), float(o["dec"])
        bright = min(float(o[b]) for b in "ugrizy")
        for other in objects:
            if other is o:
                continue
            d = math.hypot((float(other["ra"]) - ra) * math.cos(math.radians(dec)), float(other["dec"]) - dec) * 3600
            if d < 2 * radius and min(float(other[b]) for b in "ugrizy") < bright + 3:
                return False
        return True

    stars = [o for o in candidates if isolated(o)][:100]
    assert len(stars) >= 5, len(stars)
    params = [("POS", f"{o['ra']} {o['dec']}") for o in stars] + [("COLLECTION", "DR1"), ("RADIUS", str(radius))]
    rows = table_of(photometry(phot.url, params).content)
    checked = within = 0
    for row in rows:
        if row["flag_edge"] or row["flag_masked"] or row["flag_saturated"]:
            continue
        star = stars[int(row["pos_index"])]
        true_mag = float(star[str(row["band"])])
        if true_mag > BRIGHT:
            continue
        expected = 10 ** (-0.4 * (true_mag - NJY_MAGNITUDE))
        checked += 1
        within += abs(float(row["flux"]) - expected) <= 3 * float(row["flux_err"])
    assert checked >= 10, checked
    print(f"{within} of {checked} within 3 sigma")
    assert within >= 0.95 * checked, f"{within} of {checked} within 3 sigma"


def test_a_job_gives_the_table_sync_gives(phot, dr1, survey_dir):
    _, images = dr1
    objects = stars_on(images.values(), truth(survey_dir), 5)
    params = [("POS", f"{o['ra']} {o['dec']}") for o in objects] + [("COLLECTION", "DR1"), ("METHOD", "psf")]
    sync = photometry(phot.url, params).content
    params.append(("PHASE", "RUN"))
    url, job = run_uws_job(phot.url, ASYNC, params)
    assert job.phase == "COMPLETED", requests.get(url, timeout=60).text[:2000]
    result = requests.get(f"{url}/results/result", timeout=60)
    assert result.status_code == 200
    # The job reported its progress image by image, to the end.
    assert 'fraction="1.000"' in requests.get(url, timeout=60).text
    a, b = table_of(sync), table_of(result.content)
    assert len(a) == len(b) > 0
    for name in a.colnames:
        assert list(a[name]) == list(b[name]), name
    assert np.all(np.isfinite(np.array(a["flux"], dtype=float)))


def positions_votable(objects):
    from astropy.table import Table

    t = Table({"ra": [float(o["ra"]) for o in objects], "dec": [float(o["dec"]) for o in objects]})
    out = io.BytesIO()
    t.write(out, format="votable")
    return out.getvalue()


def test_uploaded_positions_are_measured_as_pos_values(phot, dr1, survey_dir):
    _, images = dr1
    objects = stars_on(images.values(), truth(survey_dir), 4)
    by_pos = table_of(photometry(phot.url, [("POS", f"{o['ra']} {o['dec']}") for o in objects]
                                 + [("COLLECTION", "DR1")]).content)
    files = {"table": ("positions.xml", positions_votable(objects), "application/x-votable+xml")}
    params = {"UPLOAD": "pos,param:table", "COLLECTION": "DR1"}
    r = requests.post(phot.url + SYNC, data=params, files=files, timeout=300)
    assert r.status_code == 200, r.text[:500]
    uploaded = table_of(r.content)
    assert len(uploaded) == len(by_pos) > 0
    for name in ("pos_index", "obs_id", "flux", "flux_err"):
        assert list(uploaded[name]) == list(by_pos[name]), name
    # The same as a job.
    r = requests.post(phot.url + ASYNC, data={**params, "PHASE": "RUN"}, files=files, allow_redirects=False,
                      timeout=60)
    assert r.status_code == 303, r.text[:500]
    url = r.headers["Location"] if r.headers["Location"].startswith("http") else phot.url + r.headers["Location"]
    for _ in range(600):
        phase = requests.get(url + "/phase", timeout=60).text.strip()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            break
        time.sleep(0.1)
    assert phase == "COMPLETED", requests.get(url, timeout=60).text[:2000]
    job_rows = table_of(requests.get(url + "/results/result", timeout=60).content)
    assert list(job_rows["flux"]) == list(by_pos["flux"])
    # A table without positions is refused, naming the column.
    bad = requests.post(phot.url + SYNC, data=params, files={"table": ("t.xml", b"<VOTABLE/>")}, timeout=60)
    assert bad.status_code == 400


def test_a_position_off_every_image_gives_an_empty_table(phot):
    rows = table_of(photometry(phot.url, {"POS": "200.0 80.0"}).content)
    assert len(rows) == 0
    assert "flux" in rows.colnames and rows["flux"].unit == "nJy"


def test_sync_refuses_what_belongs_to_async(phot):
    # The configured number of positions is taken (all off the images), one more is refused naming /async.
    params = [("POS", f"{10 + i * 0.01} 5") for i in range(SYNC_MAX_POSITIONS)]
    assert len(table_of(photometry(phot.url, params).content)) == 0
    r = photometry(phot.url, params + [("POS", "11 5")], status=400)
    assert "/async" in r.text and str(SYNC_MAX_POSITIONS) in r.text
    # Bad values are refused before any work, by the declaration; the
    # largest radius is the configured one.
    assert len(table_of(photometry(phot.url, {"POS": "10 5", "RADIUS": str(MAX_RADIUS)}).content)) == 0
    r = photometry(phot.url, {"POS": "53 -28", "RADIUS": str(MAX_RADIUS + 0.5)}, status=400)
    assert "RADIUS" in r.text and str(MAX_RADIUS) in r.text
    assert "METHOD" in photometry(phot.url, {"POS": "53 -28", "METHOD": "model"}, status=400).text


def test_anonymous_callers_get_no_rows_of_embargoed_images(phot, dr1, survey_dir):
    _, images = dr1
    objects = stars_on(images.values(), truth(survey_dir), 3)
    params = [("POS", f"{o['ra']} {o['dec']}") for o in objects]
    anonymous = table_of(photometry(phot.url, params).content)
    staff = table_of(photometry(phot.url, params, headers=phot.staff).content)
    assert len(anonymous) > 0
    assert all(str(i).startswith("DR1.") for i in anonymous["obs_id"])
    assert any(str(i).startswith("EMB.") for i in staff["obs_id"])
    assert len(staff) == 2 * len(anonymous)
    # Naming an embargoed image does not reach it either.
    emb = next(str(i) for i in staff["obs_id"] if str(i).startswith("EMB."))
    named = table_of(photometry(phot.url, params + [("ID", emb)]).content)
    assert len(named) == 0


def test_datalink_offers_photometry_on_a_calexp(phot, dr1):
    files, _ = dr1
    dataset_id = sorted(files)[0]
    r = requests.get(phot.url + "/api/datalink/links", params={"ID": dataset_id}, timeout=60)
    assert r.status_code == 200
    votable = r.text
    assert 'ID="photometry-sync"' in votable
    assert phot.url + SYNC in votable
    links = table_of(r.content)
    proc = [row for row in links if str(row["service_def"]) == "photometry-sync"]
    assert len(proc) == 1 and str(proc[0]["ID"]) == dataset_id


# ------------------------------------------------------------------ virtual

# Virtual calexps and difference images (templates from two visits), one small detector.
VIRTUAL_SIM = ["--visits", "4", "--bands", "r", "--detectors", "1", "--detector-size", "128", "--seed", "5",
               "--template-visits", "2", "--no-comp", "--virtual"]


@pytest.fixture(scope="module")
def virtual(tmp_path_factory):
    survey = tmp_path_factory.mktemp("phot-virtual-survey")
    run("simulate", "--out", survey, *VIRTUAL_SIM)
    repo = tmp_path_factory.mktemp("phot-virtual-repo") / "repo"
    run("ingest", "--repo", repo, survey)
    server = start_server(repo)
    yield repo, server
    assert stop_server(server) == 0, server.log()[-3000:]


@pytest.mark.parametrize("subtype", ["calexp", "diffim"])
def test_virtual_images_are_measured(virtual, subtype, tmp_path):
    repo, server = virtual
    records = [d for d in query(repo, "--type", subtype) if d["storage"] == "virtual"]
    assert len(records) >= 2
    params = [("POS", f"{d['s_ra']} {d['s_dec']}") for d in records[:2]] + [("DPSUBTYPE", subtype)]
    rows = table_of(photometry(server.url, params).content)
    measured = {str(i) for i in rows["obs_id"]}
    assert {d["dataset_id"] for d in records[:2]} <= measured
    assert set(rows["dataproduct_subtype"]) == {subtype}
    assert np.count_nonzero(~np.ma.getmaskarray(rows["flux"])) >= 1
    # The same numbers as photutils on the re-created file.
    files = {}
    for dataset_id in measured:
        r = requests.get(f"{server.url}/api/files/{dataset_id}", timeout=300)
        assert r.status_code == 200
        files[dataset_id] = tmp_path / f"{dataset_id}.fits"
        files[dataset_id].write_bytes(r.content)
    check_against_photutils(rows, files, 2.0)
