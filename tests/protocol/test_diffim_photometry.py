"""Difference images against the simulator's truth.

A dense field (200,000 stars per square degree, a fifth of them variable)
simulated with --virtual, two template visits and four science visits on two
detectors. Every difference image is re-created by the server and measured
with photutils' aperture photometry at the true positions:
  - variable stars: the difference flux matches the truth (the star's flux
    at the visit minus its flux in the template, as the template coadd
    weighted its visits) within 3 sigma for at least 95% of them;
  - constant stars leave residuals consistent with the noise;
  - the moving object appears where it is at the visit.
"""
import csv
import io
import math
import pathlib

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.wcs import WCS
from photutils.aperture import CircularAperture, aperture_photometry
from pyvo.dal import TAPService

from conftest import run, start_server, stop_server, template_visits

SIM = ["--visits", "6", "--bands", "r", "--detectors", "2", "--detector-size", "512", "--seed", "5",
       "--template-visits", "2", "--no-comp", "--virtual", "--star-density", "200000",
       "--variable-fraction", "0.2", "--field-radius", "0.12"]
NJY_ZERO_POINT = 31.4  # AB magnitude of 1 nJy: the coadds' unit
R_BAND = 2  # index of r in ugrizy
EDGE = 20  # pixels: apertures closer to a detector edge are not measured


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("dense-survey")
    run("simulate", "--out", out, *SIM)
    return out


@pytest.fixture(scope="module")
def server(survey, tmp_path_factory):
    repo = tmp_path_factory.mktemp("dense-repo") / "repo"
    run("ingest", "--repo", repo, survey)
    srv = start_server(repo)
    yield srv
    assert stop_server(srv) == 0, srv.log()[-3000:]


def truth(survey):
    with open(pathlib.Path(survey) / "truth.csv", newline="") as f:
        return [row for row in csv.DictReader(f)]


def magnitude_at(obj, mjd):
    m = float(obj["r"])
    if obj["type"] == "variable":
        m += float(obj["var_amplitude"]) * math.sin(
            2 * math.pi * (mjd - float(obj["var_epoch_mjd"])) / float(obj["var_period_days"]))
    return m


def position_at(obj, mjd):
    ra, dec = float(obj["ra"]), float(obj["dec"])
    if obj["type"] != "moving":
        return ra, dec
    dt = mjd - float(obj["motion_epoch_mjd"])
    dec2 = dec + float(obj["rate_north_deg_per_day"]) * dt
    return ra + float(obj["rate_east_deg_per_day"]) * dt / math.cos(math.radians(dec)), dec2


class Exposure:
    """A calexp or difference image as the server gives it."""

    def __init__(self, content):
        with fits.open(io.BytesIO(content)) as hdul:
            self.header = hdul[0].header
            self.wcs = WCS(hdul["IMAGE"].header)
            self.image = hdul["IMAGE"].data.astype(float)
            self.variance = hdul["VARIANCE"].data.astype(float)
            self.mask = hdul["MASK"].data
            bits = {k[3:]: v for k, v in hdul["MASK"].header.items() if k.startswith("MP_")}
        # Pixels that spoil a measurement: anything but the detection bits.
        self.bad = 0
        for name, bit in bits.items():
            if name not in ("DETECTED", "DETECTED_NEGATIVE"):
                self.bad |= 1 << bit
        self.mjd_mid = self.header["MJD-OBS"] + self.header["EXPTIME"] / 2 / 86400
        # Electrons of a source of magnitude m: EXPTIME 10^(-0.4 (m - MAGZERO)).
        self.electrons_per_njy = self.header["EXPTIME"] * 10 ** (0.4 * (self.header["MAGZERO"] - NJY_ZERO_POINT))

    def pixel(self, ra, dec):
        x, y = self.wcs.all_world2pix([[ra, dec]], 0)[0]
        return x, y

    def inside(self, x, y, margin=EDGE):
        h, w = self.image.shape
        return margin <= x < w - margin and margin <= y < h - margin

    def electrons(self, obj):
        return self.header["EXPTIME"] * 10 ** (-0.4 * (magnitude_at(obj, self.mjd_mid) - self.header["MAGZERO"]))


def fetch(server, dataset_id):
    r = requests.get(f"{server.url}/api/files/{dataset_id}", timeout=120)
    assert r.status_code == 200, r.text[:300]
    return Exposure(r.content)


def products(server, dataset_type):
    tap = TAPService(server.url + "/api/tap")
    return [str(i) for i in tap.search(f"SELECT dataset_id FROM survey.datasets WHERE dataset_type = "
                                       f"'{dataset_type}' ORDER BY dataset_id").to_table()["dataset_id"]]


def aperture_noise_scale(d, radius, rng, count=400):
    """How much the scatter of aperture sums on empty sky exceeds what the
    variance plane predicts for them. The variance plane is per pixel; the
    template's warp (Lanczos-3) and its convolution with the kernel make
    neighbouring pixels' noise correlated, which a sum over an aperture
    feels (the survey's pipeline corrects its difference images for it by
    decorrelation); aperture errors are scaled by this measured factor."""
    h, w = d.image.shape
    positions = []
    for _ in range(count * 10):
        x, y = rng.uniform(EDGE, w - EDGE), rng.uniform(EDGE, h - EDGE)
        stamp = CircularAperture((x, y), r=radius).to_mask(method="center").cutout(d.mask, fill_value=1 << 30)
        if stamp is None or np.any(stamp != 0):
            continue
        positions.append((x, y))
        if len(positions) == count:
            break
    ratios = []
    if positions:  # one call for all apertures: photutils' cost is per call
        phot = aperture_photometry(d.image, CircularAperture(positions, r=radius), error=np.sqrt(d.variance))
        ratios = list(np.asarray(phot["aperture_sum"], dtype=float) / np.asarray(phot["aperture_sum_err"], dtype=float))
    ratios = np.array(ratios)
    scale = 1.4826 * np.median(np.abs(ratios - np.median(ratios)))
    assert len(ratios) >= 100 and 0.9 < scale < 1.6, (len(ratios), scale)
    print(f"{d.header['VISIT']} {d.header['DETECTOR']}: empty-aperture noise / variance plane = {scale:.2f}, "
          f"kernel {d.header['KERNSRC']} on {d.header['KERNSTMP']} stars")
    return scale


def objects_near_another(objects, others, reach_deg):
    """The indexes of the objects with one of `others` (not itself) within
    reach_deg at their truth positions. The others are put in cells at
    least reach_deg across (in RA, at the field's largest |Dec|), so each
    object only looks at its own cell and the eight around it."""
    widest = max(abs(float(o["dec"])) for o in objects + others)
    ra_cell = reach_deg / math.cos(math.radians(widest))

    def cell(o):
        return math.floor(float(o["dec"]) / reach_deg), math.floor(float(o["ra"]) / ra_cell)

    cells = {}
    for o in others:
        cells.setdefault(cell(o), []).append(o)
    near = set()
    for index, obj in enumerate(objects):
        ra, dec = float(obj["ra"]), float(obj["dec"])
        row, column = cell(obj)
        for o in (o for dr in (-1, 0, 1) for dc in (-1, 0, 1) for o in cells.get((row + dr, column + dc), ())):
            if o is not obj and abs(float(o["dec"]) - dec) < reach_deg and math.hypot(
                    (float(o["ra"]) - ra) * math.cos(math.radians(dec)), float(o["dec"]) - dec) < reach_deg:
                near.add(index)
                break
    return near


@pytest.fixture(scope="module")
def measured(server, survey):
    """Per difference image and truth object: (object, measured, expected,
    sigma, where), `where` naming the image, the position, the aperture and
    the image's units and noise, for the forced photometry service's test."""
    objects = truth(survey)
    visits = template_visits(survey)
    # The template's inputs: each template visit's calexps, weighted as the
    # coadd weighs them (the inverse of their typical variance in nJy^2).
    template_inputs = [fetch(server, i) for i in products(server, "calexp")
                       if int(i.split(".v")[1].split(".")[0]) in visits]
    for t in template_inputs:
        t.weight = 1.0 / (np.nanmedian(t.variance) / t.electrons_per_njy ** 2)
    variables = [o for o in objects if o["type"] == "variable"]
    near_variable = objects_near_another(objects, variables, 4 / 3600)
    out = []
    rng = np.random.default_rng(1)
    for dataset_id in products(server, "diffim"):
        d = fetch(server, dataset_id)
        radius = 2.0 * d.header["PSFFWHM"] / (abs(d.wcs.pixel_scale_matrix[0, 0]) * 3600)
        noise = aperture_noise_scale(d, radius, rng)
        # The same aperture in arcsec on the scale the service uses (the
        # square root of the CD matrix's determinant).
        radius_arcsec = radius * math.sqrt(abs(np.linalg.det(d.wcs.pixel_scale_matrix))) * 3600
        chosen = []  # (object, ra, dec, x, y)
        for index, obj in enumerate(objects):
            if obj["type"] not in ("star", "variable", "moving"):
                continue
            ra, dec = position_at(obj, d.mjd_mid)
            x, y = d.pixel(ra, dec)
            if not d.inside(x, y):
                continue
            aperture_mask = CircularAperture((x, y), r=radius).to_mask(method="center")
            stamp = aperture_mask.cutout(d.mask, fill_value=1 << 30)
            if stamp is None or np.any(stamp & d.bad) or not np.all(np.isfinite(
                    aperture_mask.cutout(d.image, fill_value=np.nan))):
                continue
            # Another variable star within reach would add its own change.
            if obj["type"] != "moving" and index in near_variable:
                continue
            chosen.append((obj, ra, dec, x, y))
        if not chosen:
            continue
        phot = aperture_photometry(d.image, CircularAperture([(x, y) for *_, x, y in chosen], r=radius),
                                   error=np.sqrt(d.variance))
        for (obj, ra, dec, _, _), flux, error in zip(chosen, phot["aperture_sum"], phot["aperture_sum_err"]):
            flux, sigma = float(flux), noise * float(error)
            where = {"dataset_id": dataset_id, "ra": ra, "dec": dec, "radius_arcsec": radius_arcsec, "noise": noise,
                     "electrons_per_njy": d.electrons_per_njy}
            if obj["type"] == "moving":
                out.append((obj, flux, None, sigma, where))
                continue
            covering = []
            for t in template_inputs:
                tx, ty = t.pixel(float(obj["ra"]), float(obj["dec"]))
                if t.inside(tx, ty, margin=0):
                    if not t.inside(tx, ty):
                        covering = None  # near an input's edge: the template mixes partial inputs
                        break
                    covering.append(t)
            if not covering:
                continue
            template_njy = sum(t.weight * t.electrons(obj) / t.electrons_per_njy for t in covering) / sum(
                t.weight for t in covering)
            expected = d.electrons(obj) - d.electrons_per_njy * template_njy
            out.append((obj, flux, expected, sigma, where))
    return out


def test_variable_stars_difference_fluxes_match_the_truth(measured):
    pulls = [(m - e) / s for o, m, e, s, _ in measured if o["type"] == "variable"]
    assert len(pulls) >= 40, len(pulls)
    within = np.mean(np.abs(pulls) < 3)
    print(f"variable stars: {len(pulls)} measurements, {within:.1%} within 3 sigma")
    assert within >= 0.95, (within, sorted(pulls, key=abs)[-10:])
    # The variables are really seen to vary: many differences are far from zero.
    significant = [abs(e) / s for o, m, e, s, _ in measured if o["type"] == "variable"]
    assert sum(v > 5 for v in significant) >= 10


def test_constant_stars_leave_residuals_consistent_with_noise(measured):
    pulls = np.array([(m - e) / s for o, m, e, s, _ in measured if o["type"] == "star"])
    assert len(pulls) >= 200, len(pulls)
    print(f"constant stars: {len(pulls)} measurements, {np.mean(np.abs(pulls) < 3):.1%} within 3 sigma, "
          f"median pull {np.median(pulls):.2f}")
    assert np.mean(np.abs(pulls) < 3) >= 0.95
    assert abs(np.median(pulls)) < 0.3
    assert 0.7 < 1.4826 * np.median(np.abs(pulls - np.median(pulls))) < 1.3


def test_the_moving_object_appears(measured):
    seen = [m / s for o, m, e, s, _ in measured if o["type"] == "moving"]
    assert seen, "the moving object is on no difference image"
    print(f"moving object: signal-to-noise {max(seen):.0f}")
    assert max(seen) > 10, seen


def test_the_forced_photometry_service_measures_the_same_on_difference_images(server, measured):
    """/api/photometry on each re-created difference image, at the truth's
    positions with the same aperture: variable stars give their change
    since the template, constant stars zero, within the service's own errors
    (scaled by the image's measured aperture noise, as above)."""
    by_image = {}
    for entry in measured:
        by_image.setdefault(entry[4]["dataset_id"], []).append(entry)
    pulls = {"variable": [], "star": []}
    for dataset_id, entries in by_image.items():
        entries = [e for e in entries if e[2] is not None]
        for start in range(0, len(entries), 100):  # /sync measures up to 100 positions a request
            chunk = entries[start:start + 100]
            params = [("ID", dataset_id), ("RADIUS", repr(chunk[0][4]["radius_arcsec"]))]
            params += [("POS", f"{w['ra']!r} {w['dec']!r}") for *_, w in chunk]
            r = requests.post(f"{server.url}/api/photometry/sync", data=params, timeout=600)
            assert r.status_code == 200, r.text[:1000]
            rows = parse_single_table(io.BytesIO(r.content)).to_table()
            assert len(rows) == len(chunk), (dataset_id, len(rows), len(chunk))
            for row in rows:
                obj, _, expected, _, where = chunk[int(row["pos_index"])]
                assert row["obs_id"] == dataset_id
                if row["flag_masked"] or row["flag_edge"]:
                    continue
                expected_njy = expected / where["electrons_per_njy"]
                pulls[obj["type"]].append((float(row["flux"]) - expected_njy) / (where["noise"] * float(row["flux_err"])))
    variables, stars = np.array(pulls["variable"]), np.array(pulls["star"])
    print(f"service on difference images: variables {np.mean(np.abs(variables) < 3):.1%} of {len(variables)} "
          f"within 3 sigma, constant stars {np.mean(np.abs(stars) < 3):.1%} of {len(stars)}")
    assert len(variables) >= 40 and np.mean(np.abs(variables) < 3) >= 0.95
    assert len(stars) >= 200 and np.mean(np.abs(stars) < 3) >= 0.95
    assert abs(np.median(stars)) < 0.3
