"""Mosaics of logical coadds through SODA (issue: coadds across tracts on one
pixel grid).

A survey on the rings sky map straddling RA 0 and a ring boundary, so that
its coadd patches lie in several tracts (each its own TAN projection), is
ingested public (DR1) and for data-rights holders (DRT). Each band's coadd
is one logical dataset (DR1.deepCoadd.r); SODA with a region gives one
image, checked against astropy `reproject` of the same patches onto the same
grid, for flux in apertures around the simulator's stars, for seams at tract
boundaries, for its WCS across RA 0 and at a pole, for rights, for bad input,
for /async with progress and ABORT, and for memory that does not grow with
the mosaic.

Expected differences to reproject: with KERNEL=bilinear both interpolate
bilinearly between the same pixels; pixserve maps output to input pixels
exactly at nodes 32 pixels apart and bilinearly between them (under 1e-3
pixel here), so values agree to well under 1% of the image's noise except
where the two pick different patches or tracts in overlaps.
"""
import io
import json
import time

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.wcs import WCS

from conftest import query, run, run_uws_job, start_server, stop_server

pytest.importorskip("reproject")
from reproject import reproject_interp  # noqa: E402

CENTER = (0.05, -27.75)  # RA 0 and the boundary of two declination rings run through the field
SURVEY_ARGS = ["--skymap", "rings", "--field-center", f"{CENTER[0]},{CENTER[1]}", "--field-radius", "0.5",
               "--pointing-radius", "0.25", "--tract-size", "1.5", "--pixel-scale", "1.0", "--visits", "16",
               "--bands", "gr", "--detector-size", "256", "--patch-size", "600", "--patch-border", "30",
               "--no-comp", "--template-visits", "0", "--seed", "5"]


def make_token(repo, user, *args):
    out = run("token", "create", "--repo", repo, "--user", user, "--format", "json", *args)
    return json.loads(out.stdout)["token"]


@pytest.fixture(scope="module")
def field(tmp_path_factory):
    base = tmp_path_factory.mktemp("mosaics")
    survey, repo = base / "survey", base / "repo"
    run("simulate", "--out", survey, *SURVEY_ARGS)
    run("ingest", "--repo", repo, "--name", "mosaics", "--transfer", "hardlink", survey)
    run("ingest", "--repo", repo, "--collection", "DRT", "--policy", "data-rights", "--transfer", "hardlink", survey)
    patches = [r for r in query(repo, "--type", "deepCoadd", "--band", "r", "--collection", "DR1")
               if r["tract"] is not None]
    # One patch of DR1 readable by data-rights holders only.
    restricted = sorted(patches, key=lambda r: r["dataset_id"])[len(patches) // 2]
    run("rights", "--repo", repo, "--id", restricted["dataset_id"], "--policy", "data-rights")
    token = make_token(repo, "dr", "--groups", "data-rights")
    srv = start_server(repo)
    yield {"repo": repo, "survey": survey, "server": srv, "url": srv.url, "patches": patches,
           "restricted": restricted, "dr": {"Authorization": "Bearer " + token}}
    assert stop_server(srv) == 0, srv.log()[-3000:]


def soda(field, params, headers=None, timeout=120):
    return requests.get(field["url"] + "/api/soda/sync", params=params, headers=headers or {}, timeout=timeout)


def mosaic(field, params, headers=None):
    r = soda(field, params, headers)
    assert r.status_code == 200, r.text[:2000]
    assert r.headers["Content-Length"] == str(len(r.content))
    hdul = fits.open(io.BytesIO(r.content))
    hdul.verify("exception")
    return hdul


def input_patches(header):
    return [header[f"PATCH{i:03d}"] for i in range(1, min(header["NPATCH"], 999) + 1)]


def patch_file(field, dataset_id):
    files = field.setdefault("files", {})
    if not files:
        files.update({r["dataset_id"]: r["file"] for r in query(field["repo"], "--type", "deepCoadd,goodSeeingCoadd")})
    return files[dataset_id]


def patches_by_tract(field, header):
    """The input patches' files of a mosaic by tract, in tract order."""
    by_tract = {}
    for pid in input_patches(header):
        tract = int(pid.split(".t")[1].split(".")[0])
        by_tract.setdefault(tract, []).append(patch_file(field, pid))
    return dict(sorted(by_tract.items()))


def tract_centres(by_tract):
    """The tangent point (CRVAL) of each tract of patches_by_tract, in the
    same order: every patch of a tract has its tract's."""
    centres = {}
    for tract, files in by_tract.items():
        with fits.open(files[0]) as h:
            centres[tract] = (h["IMAGE"].header["CRVAL1"], h["IMAGE"].header["CRVAL2"])
    return centres


def tract_owner(header, centres):
    """For each pixel of the output grid, the index (in the order of
    centres) of the tract whose tangent point is nearest: pixserve's rule
    for where a pixel comes from."""
    yy, xx = np.mgrid[0:header["NAXIS2"], 0:header["NAXIS1"]]
    p = unit(*WCS(header).pixel_to_world_values(xx, yy))
    dist = np.stack([np.arccos(np.clip(p @ unit(*c), -1, 1)) for c in centres.values()])
    return np.argmin(dist, axis=0)


def reprojected(hdu, wcs, shape, order):
    """reproject_interp of an image HDU onto the grid (wcs, shape): the
    image and its footprint, computed only within the bounding box of the
    image's edges on the grid (with a margin for the interpolation), where
    all of its footprint lies; zero footprint and NaN elsewhere."""
    ny, nx = hdu.data.shape
    t = np.linspace(0, 1, 16)  # points along each edge of the image's pixels
    xs = np.concatenate([t * nx, np.full(16, nx), t * nx, np.zeros(16)]) - 0.5
    ys = np.concatenate([np.zeros(16), t * ny, np.full(16, ny), t * ny]) - 0.5
    gx, gy = wcs.world_to_pixel_values(*WCS(hdu.header).pixel_to_world_values(xs, ys))
    if not (np.all(np.isfinite(gx)) and np.all(np.isfinite(gy))):
        return reproject_interp((hdu.data, WCS(hdu.header)), wcs, shape_out=shape, order=order)
    image, footprint = np.full(shape, np.nan), np.zeros(shape)
    x0, x1 = max(int(np.floor(gx.min())) - 3, 0), min(int(np.ceil(gx.max())) + 4, shape[1])
    y0, y1 = max(int(np.floor(gy.min())) - 3, 0), min(int(np.ceil(gy.max())) + 4, shape[0])
    if x0 < x1 and y0 < y1:
        image[y0:y1, x0:x1], footprint[y0:y1, x0:x1] = reproject_interp(
            (hdu.data, WCS(hdu.header)), wcs[y0:y1, x0:x1], shape_out=(y1 - y0, x1 - x0), order=order)
    return image, footprint


def reprojected_by_tract(field, header, order):
    """reproject_interp of the input patches onto the output grid, each
    pixel from the tract whose tangent point is nearest (pixserve's rule),
    else from any tract: (image, tract index per pixel, tract numbers)."""
    wcs = WCS(header)
    shape = (header["NAXIS2"], header["NAXIS1"])
    by_tract = patches_by_tract(field, header)
    layers = []
    for files in by_tract.values():
        layer = np.full(shape, np.nan)
        for f in files:
            with fits.open(f) as h:
                r, fp = reprojected(h["IMAGE"], wcs, shape, order)
                take = np.isnan(layer) & (fp > 0) & np.isfinite(r)
                layer[take] = r[take]
        layers.append(layer)
    owner = tract_owner(header, tract_centres(by_tract))
    out = np.full(shape, np.nan)
    for k, layer in enumerate(layers):
        take = owner == k
        out[take] = layer[take]
    for layer in layers:
        take = np.isnan(out) & np.isfinite(layer)
        out[take] = layer[take]
    return out, owner, list(by_tract)


def tract_nearest(centres, ra, dec):
    """The tract (of tract_centres) whose tangent point is nearest (ra, dec)."""
    return min(centres, key=lambda t: np.arccos(np.clip(unit(ra, dec) @ unit(*centres[t]), -1, 1)))


def unit(ra, dec):
    ra, dec = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


# ------------------------------------------------------------------ the logical dataset

def test_each_band_is_one_logical_dataset(field):
    r = requests.get(field["url"] + "/api/tap/sync", params={
        "LANG": "ADQL", "QUERY": "SELECT obs_publisher_did, tract, patch, s_region, dataproduct_subtype "
                                 "FROM ivoa.obscore WHERE obs_id = 'DR1.deepCoadd.r'"})
    assert r.status_code == 200, r.text
    assert b"mosaics?DR1.deepCoadd.r" in r.content and b"POLYGON" in r.content
    links = requests.get(field["url"] + "/api/datalink/links", params={"ID": "DR1.deepCoadd.r"})
    assert links.status_code == 200
    assert b"#cutout" in links.content and b"#provenance" in links.content and b"#this" not in links.content
    # The descriptor declares the mosaic parameters.
    for name in (b"GRID_CENTER", b"GRID_SCALE", b"GRID_ROTATION", b"KERNEL"):
        assert name in links.content
    recipe = requests.get(field["url"] + "/api/files/DR1.deepCoadd.r/recipe").json()
    listed = {i["id"] for i in recipe["recipe"]["inputs"]}
    assert {p["dataset_id"] for p in field["patches"]} == listed
    f = requests.get(field["url"] + "/api/files/DR1.deepCoadd.r")
    assert f.status_code == 400 and b"SODA" in f.content
    # Two tracts at least, as the test needs.
    assert len({p["tract"] for p in field["patches"]}) >= 2


def tap_rows(field, adql, headers=None):
    r = requests.get(field["url"] + "/api/tap/sync", params={"LANG": "ADQL", "QUERY": adql, "FORMAT": "csv"},
                     headers=headers or {}, timeout=60)
    assert r.status_code == 200, r.text
    lines = r.text.strip().splitlines()
    header = lines[0].split(",")
    import csv
    return [dict(zip(header, row)) for row in csv.reader(lines[1:])]


def test_the_sky_map_is_queryable_in_tap(field):
    # Every DR1 r patch is a row of survey.patches with its tract, footprint and bands.
    rows = tap_rows(field, "SELECT skymap, tract, patch, s_ra, s_dec, s_region, s_xel1, pixel_scale, bands, "
                           "coadd_types, n_datasets FROM survey.patches ORDER BY tract, patch")
    by_key = {(int(r["tract"]), r["patch"]): r for r in rows}
    assert len(by_key) == len(rows)
    public = [p for p in field["patches"] if p["dataset_id"] != field["restricted"]["dataset_id"]]
    # What an anonymous caller may read: the DR1 coadds but the restricted one.
    visible = [r for r in query(field["repo"], "--type", "deepCoadd,goodSeeingCoadd", "--collection", "DR1")
               if r["tract"] is not None and r["dataset_id"] != field["restricted"]["dataset_id"]]
    assert {(int(r["tract"]), r["patch"]) for r in rows} == {(r["tract"], r["patch"]) for r in visible}
    for p in public:
        row = by_key[(p["tract"], p["patch"])]
        here = [r for r in visible if (r["tract"], r["patch"]) == (p["tract"], p["patch"])]
        assert row["skymap"] == p["skymap"]
        assert abs(float(row["s_ra"]) - p["s_ra"]) < 1e-9 and abs(float(row["s_dec"]) - p["s_dec"]) < 1e-9
        assert row["s_region"].startswith("POLYGON")
        assert row["bands"] == ",".join(sorted({r["band"] for r in here}))
        assert row["coadd_types"] == ",".join(sorted({r["type"] for r in here}))
        assert int(row["n_datasets"]) == len(here)
        assert abs(float(row["pixel_scale"]) - 1.0) < 1e-6
    # Tracts: at least two, each with its patches; ADQL geometry works on the footprints.
    tracts = tap_rows(field, "SELECT tract, COUNT(*) AS n FROM survey.patches GROUP BY tract ORDER BY tract")
    assert len(tracts) >= 2 and all(int(t["n"]) >= 1 for t in tracts)
    ra, dec = public[0]["s_ra"], public[0]["s_dec"]
    hit = tap_rows(field, f"SELECT tract, patch FROM survey.patches WHERE "
                          f"CONTAINS(POINT('ICRS', {ra}, {dec}), s_region) = 1")
    assert (str(public[0]["tract"]), public[0]["patch"]) in {(h["tract"], h["patch"]) for h in hit}
    # Joined with the datasets through the declared key.
    joined = tap_rows(field, "SELECT COUNT(*) AS n FROM survey.datasets AS d JOIN survey.patches AS p "
                             "ON p.skymap = d.skymap AND p.tract = d.tract AND p.patch = d.patch")
    assert int(joined[0]["n"]) == sum(int(r["n_datasets"]) for r in rows)


def test_the_sky_map_in_tap_holds_only_what_the_caller_may_read(tmp_path_factory):
    # A survey whose coadds are all for data-rights holders: anonymous
    # callers see no patch, a data-rights token sees all of them.
    base = tmp_path_factory.mktemp("skymap-rights")
    survey, repo = base / "survey", base / "repo"
    run("simulate", "--out", survey, *SURVEY_ARGS[:SURVEY_ARGS.index("--visits")], "--visits", "4",
        "--bands", "r", "--detector-size", "128", "--patch-size", "600", "--patch-border", "30", "--no-comp",
        "--template-visits", "0", "--seed", "7")
    run("ingest", "--repo", repo, "--collection", "DRT", "--policy", "data-rights", "--transfer", "hardlink", survey)
    token = make_token(repo, "dr", "--groups", "data-rights")
    srv = start_server(repo)
    try:
        f = {"url": srv.url}
        assert tap_rows(f, "SELECT tract, patch FROM survey.patches") == []
        seen = tap_rows(f, "SELECT tract, patch, n_datasets FROM survey.patches", {"Authorization": "Bearer " + token})
        patches = {(r["tract"], r["patch"]) for r in query(repo, "--type", "deepCoadd") if r["tract"] is not None}
        assert {(int(r["tract"]), r["patch"]) for r in seen} == patches
    finally:
        assert stop_server(srv) == 0


# ------------------------------------------------------------------ pixels

def test_mosaic_across_tracts_and_ra_zero_matches_reproject(field):
    # A circle over RA 0 and the ring boundary.
    params = {"ID": "DR1.deepCoadd.r", "CIRCLE": "0.0 -27.75 0.12", "KERNEL": "bilinear"}
    with mosaic(field, params) as m:
        img, h = m["IMAGE"].data.astype(float), m["IMAGE"].header
        assert m["MASK"].data.shape == img.shape == m["VARIANCE"].data.shape
        assert h["RESAMPK"] == "bilinear" and h["PSDSID"] == "DR1.deepCoadd.r"
        mask, var = m["MASK"].data, m["VARIANCE"].data
        nodata = 1 << m["MASK"].header["MP_NO_DATA"]
    w = WCS(h)
    # The grid: TAN about the circle's centre across RA 0, north up.
    ra, dec = w.pixel_to_world_values((h["NAXIS1"] - 1) / 2, (h["NAXIS2"] - 1) / 2)
    assert abs(((ra + 180) % 360) - 180) < 1e-3 and abs(dec + 27.75) < 1e-3
    left, _ = w.pixel_to_world_values(0, (h["NAXIS2"] - 1) / 2)
    right, _ = w.pixel_to_world_values(h["NAXIS1"] - 1, (h["NAXIS2"] - 1) / 2)
    assert 0 < left < 1 and 359 < right < 360  # east is left, through RA 0
    want, owner, tracts = reprojected_by_tract(field, h, "bilinear")
    assert len(tracts) >= 2 and len(np.unique(owner[np.isfinite(img)])) >= 2
    both = np.isfinite(img) & np.isfinite(want)
    assert both.sum() > 0.3 * img.size
    noise = np.nanmedian(np.sqrt(var[both]))
    diff = np.abs(img[both] - want[both])
    print(f"bilinear vs reproject_interp: median |diff| {np.median(diff):.3g}, 99th {np.percentile(diff, 99):.3g}, "
          f"noise {noise:.3g}")
    assert np.median(diff) < 0.01 * noise
    assert np.percentile(diff, 99) < 0.1 * noise
    # NO_DATA exactly where nothing covers; data with finite variance elsewhere.
    assert np.array_equal((mask & nodata) != 0, ~np.isfinite(img))
    assert np.all(np.isfinite(var[np.isfinite(img)]))


def truth_stars(field, brighter_than=19.5):
    data = np.genfromtxt(field["survey"] / "truth.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    stars = data[(data["type"] == "star") & (data["r"] < brighter_than) & (data["var_amplitude"] == 0)]
    return stars


def aperture_sum(img, x, y, radius):
    """The sum of the pixels whose centres lie within radius of (x, y), or
    None when the aperture holds none or one that is not finite."""
    x0, y0 = max(int(np.floor(x - radius)), 0), max(int(np.floor(y - radius)), 0)
    x1, y1 = min(int(np.ceil(x + radius)) + 1, img.shape[1]), min(int(np.ceil(y + radius)) + 1, img.shape[0])
    if x0 >= x1 or y0 >= y1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1]
    values = img[y0:y1, x0:x1][(xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2]
    return values.sum() if np.all(np.isfinite(values)) and values.size else None


def test_flux_is_conserved_and_tract_boundaries_leave_no_seam(field):
    params = {"ID": "DR1.deepCoadd.r", "CIRCLE": "0.0 -27.75 0.15", "GRID_ROTATION": "30"}
    with mosaic(field, params) as m:
        img, h = m["IMAGE"].data.astype(float), m["IMAGE"].header
    assert h["RESAMPK"] == "lanczos3"
    w = WCS(h)
    centres = tract_centres(patches_by_tract(field, h))
    ratios = []
    for star in truth_stars(field):
        x, y = w.world_to_pixel_values(star["ra"], star["dec"])
        if not (10 < x < img.shape[1] - 10 and 10 < y < img.shape[0] - 10):
            continue
        got = aperture_sum(img, x, y, 6.0)
        if got is None:
            continue
        # The same aperture on a patch of the tract the mosaic takes the star
        # from (the nearest tangent point; tracts are coadded separately).
        star_tract = tract_nearest(centres, star["ra"], star["dec"])
        for pid in input_patches(h):
            if f".t{star_tract}." not in pid:
                continue
            with fits.open(patch_file(field, pid)) as p:
                pw = WCS(p["IMAGE"].header)
                px, py = pw.world_to_pixel_values(star["ra"], star["dec"])
                ref = aperture_sum(p["IMAGE"].data.astype(float), px, py, 6.0)
                if ref is not None and 10 < px < p["IMAGE"].data.shape[1] - 10 and 10 < py < p["IMAGE"].data.shape[0] - 10:
                    if ref > 0:
                        ratios.append(got / ref)
                    break
    ratios = np.array(ratios)
    print(f"aperture flux mosaic/patch over {len(ratios)} stars: median {np.median(ratios):.5f}, "
          f"worst {ratios[np.argmax(np.abs(ratios - 1))]:.5f}")
    assert len(ratios) >= 5
    assert np.all(np.abs(ratios - 1) < 0.005), ratios

    # Seams: jumps between neighbouring pixels where the tract changes are
    # no larger than elsewhere.
    owner = tract_owner(h, centres)
    finite = np.isfinite(img)
    dx = np.abs(np.diff(img, axis=1))
    pairs = finite[:, 1:] & finite[:, :-1]
    across = pairs & (owner[:, 1:] != owner[:, :-1])
    elsewhere = pairs & (owner[:, 1:] == owner[:, :-1])
    assert across.sum() > 20
    ratio = np.median(dx[across]) / np.median(dx[elsewhere])
    print(f"median jump across the tract boundary / elsewhere: {ratio:.3f} ({across.sum()} pairs)")
    assert ratio < 1.3


def test_region_within_one_tract_keeps_the_tract_grid(field):
    # A small circle at a patch's centre, where no other tract's patch
    # reaches: the mosaic is on the tract's own grid, the patch pixels as they are.
    checked = 0
    for p in field["patches"]:
        with fits.open(p["file"]) as patch:
            pw = WCS(patch["IMAGE"].header)
            ny, nx = patch["IMAGE"].data.shape
            ra, dec = pw.pixel_to_world_values(nx / 2, ny / 2)
            with mosaic(field, {"ID": "DR1.deepCoadd.r", "CIRCLE": f"{ra} {dec} 0.01"}) as m:
                h = m["IMAGE"].header
                if len({pid.split(".t")[1].split(".")[0] for pid in input_patches(h)}) > 1:
                    continue  # other tracts reach here: a TAN grid about the circle
                assert h["CD1_1"] == patch["IMAGE"].header["CD1_1"]
                assert h["CRVAL1"] == patch["IMAGE"].header["CRVAL1"]
                # Pixel (0, 0) of the mosaic is a whole pixel of the patch.
                px, py = pw.world_to_pixel_values(*WCS(h).pixel_to_world_values(0, 0))
                x0, y0 = int(round(float(px))), int(round(float(py)))
                assert abs(px - x0) < 1e-6 and abs(py - y0) < 1e-6
                ny2, nx2 = m["IMAGE"].data.shape
                assert x0 >= 0 and y0 >= 0 and x0 + nx2 <= nx and y0 + ny2 <= ny
                src = patch["IMAGE"].data[y0:y0 + ny2, x0:x0 + nx2]
                assert np.array_equal(src, m["IMAGE"].data, equal_nan=True)
                checked += 1
        if checked >= 3:
            break
    assert checked >= 1


# ------------------------------------------------------------------ a visit

def test_visit_mosaic_puts_every_ccd_on_one_grid(field):
    calexps = [r for r in query(field["repo"], "--type", "calexp", "--collection", "DR1")]
    visit = calexps[0]["visit"]
    ccds = sorted(r["dataset_id"] for r in calexps if r["visit"] == visit)
    with mosaic(field, {"ID": ccds[0], "MOSAIC": "visit", "KERNEL": "bilinear"}) as m:
        img, h = m["IMAGE"].data.astype(float), m["IMAGE"].header
    assert input_patches(h) == ccds and h["VISIT"] == visit
    wcs = WCS(h)
    want = np.full(img.shape, np.nan)
    files = {r["dataset_id"]: r["file"] for r in calexps}
    for ccd in ccds:
        with fits.open(files[ccd]) as c:
            r, fp = reprojected(c["IMAGE"], wcs, img.shape, "bilinear")
            take = np.isnan(want) & (fp > 0) & np.isfinite(r)
            want[take] = r[take]
    both = np.isfinite(img) & np.isfinite(want)
    assert both.sum() > 0.4 * img.size
    diff = np.abs(img[both] - want[both])
    assert np.median(diff) < 0.01 * np.nanstd(img), np.median(diff)
    # The raw's visit mosaic is that of its calexps; a region narrows it.
    raw = ccds[0].replace(".calexp.", ".raw.")
    with mosaic(field, {"ID": raw, "MOSAIC": "visit", "KERNEL": "bilinear"}) as m:
        assert input_patches(m["IMAGE"].header) == ccds
    ra, dec = wcs.pixel_to_world_values(img.shape[1] / 2, img.shape[0] / 2)
    with mosaic(field, {"ID": ccds[0], "MOSAIC": "visit", "CIRCLE": f"{ra} {dec} 0.03"}) as m:
        assert 0 < len(input_patches(m["IMAGE"].header)) < len(ccds)
    r = soda(field, {"ID": "DR1.deepCoadd.r", "MOSAIC": "visit", "CIRCLE": "0 -27.75 0.05"})
    assert r.status_code == 400 and "not an image of a visit" in r.text


# ------------------------------------------------------------------ a pole

def test_mosaic_around_a_pole(tmp_path_factory):
    base = tmp_path_factory.mktemp("pole")
    run("simulate", "--out", base / "survey", "--skymap", "rings", "--field-center", "0,-89.85", "--field-radius", "0.3",
        "--pointing-radius", "0.15", "--tract-size", "1.5", "--pixel-scale", "1.0", "--visits", "6", "--bands", "r",
        "--detector-size", "256", "--patch-size", "600", "--patch-border", "30", "--no-comp", "--template-visits", "0")
    run("ingest", "--repo", base / "repo", "--transfer", "hardlink", base / "survey")
    srv = start_server(base / "repo")
    try:
        field = {"url": srv.url, "repo": base / "repo"}
        for params in ({"ID": "DR1.deepCoadd.r", "CIRCLE": "0 -90 0.1"},
                       {"ID": "DR1.deepCoadd.r", "CIRCLE": "0 -90 0.1", "GRID_SCALE": "2", "GRID_ROTATION": "45",
                        "KERNEL": "bilinear"}):
            with mosaic(field, params) as m:
                img, h = m["IMAGE"].data.astype(float), m["IMAGE"].header
            w = WCS(h)
            x, y = w.world_to_pixel_values(123.0, -90.0)
            assert 0 < x < h["NAXIS1"] - 1 and 0 < y < h["NAXIS2"] - 1
            # Every corner is 0.1 degree or more from the pole, every edge midpoint about 0.1.
            for px, py in ((0, (h["NAXIS2"] - 1) / 2), ((h["NAXIS1"] - 1) / 2, 0)):
                _, dec = w.pixel_to_world_values(px, py)
                assert abs(dec + 90 - 0.1) < 0.01
            assert np.isfinite(img).mean() > 0.3
            if params.get("KERNEL") == "bilinear":
                want, _, _ = reprojected_by_tract(field, h, "bilinear")
                both = np.isfinite(img) & np.isfinite(want)
                diff = np.abs(img[both] - want[both])
                assert both.sum() > 0.2 * img.size
                assert np.median(diff) < 0.01 * np.nanstd(img)
    finally:
        assert stop_server(srv) == 0


# ------------------------------------------------------------------ rights

def test_mosaics_show_only_what_the_caller_may_read(field):
    restricted = field["restricted"]
    ra, dec = restricted["s_ra"], restricted["s_dec"]
    # Wider than the patch (0.17 degree): its neighbours are in the mosaic for everyone.
    params = {"ID": "DR1.deepCoadd.r", "CIRCLE": f"{ra} {dec} 0.15", "GRID_SCALE": "2"}
    with mosaic(field, params) as anon:
        assert restricted["dataset_id"] not in input_patches(anon["IMAGE"].header)
        anon_img = anon["IMAGE"].data
    with mosaic(field, params, field["dr"]) as dr:
        assert restricted["dataset_id"] in input_patches(dr["IMAGE"].header)
        dr_img = dr["IMAGE"].data
    assert np.isfinite(dr_img).sum() >= np.isfinite(anon_img).sum()
    # The row itself stays public; its footprint is that of the public patches.
    r = requests.get(field["url"] + "/api/datalink/links", params={"ID": "DR1.deepCoadd.r"})
    assert b"#cutout" in r.content
    # A collection for data-rights holders: unknown to others, the same message as for nonsense.
    drt = {"ID": "DRT.deepCoadd.r", "CIRCLE": f"{ra} {dec} 0.15", "GRID_SCALE": "2"}
    anon_drt = soda(field, drt)
    assert anon_drt.status_code == 404
    assert soda(field, {"ID": "DRT.deepCoadd.nope", "CIRCLE": f"{ra} {dec} 0.02"}).text.replace(
        "DRT.deepCoadd.nope", "X") == anon_drt.text.replace("DRT.deepCoadd.r", "X")
    with mosaic(field, drt, field["dr"]) as m:
        assert np.isfinite(m["IMAGE"].data).any()


# ------------------------------------------------------------------ bad input

@pytest.mark.parametrize("extra, needle", [
    ({"GRID_SCALE": "0"}, "GRID_SCALE"),
    ({"GRID_SCALE": "-1"}, "GRID_SCALE"),
    ({"GRID_SCALE": "nan"}, "GRID_SCALE"),
    ({"GRID_SCALE": "0.0001", "CIRCLE": "0 -27.75 1"}, "at most"),
    ({"KERNEL": "cubic"}, "KERNEL"),
    ({"GRID_CENTER": "400 95"}, "GRID_CENTER"),
    ({"GRID_ROTATION": "inf"}, "GRID_ROTATION"),
    ({"CIRCLE": None, "POLYGON": "0 -27.7 0.1 -27.8 0.1 -27.7 0 -27.8"}, "POLYGON"),
    ({"CIRCLE": None}, "give the region"),
    ({"PIXEL": "[1:10,1:10]"}, "PIXEL"),
    ({"RESPONSEFORMAT": "application/x-tar"}, "FITS"),
    ({"GRID_SCALE": "0.05", "CIRCLE": "0 -27.75 0.3"}, "/async"),
    ({"GRID_CENTER": "180 27.75", "GRID_SCALE": "10"}, "degrees from the grid centre"),
])
def test_bad_mosaic_requests_are_usage_errors(field, extra, needle):
    params = {"ID": "DR1.deepCoadd.r", "CIRCLE": "0 -27.75 0.05", **extra}
    params = {k: v for k, v in params.items() if v is not None}
    r = soda(field, params)
    assert r.status_code == 400, (params, r.status_code, r.text[:500])
    assert "UsageError" in r.text and needle in r.text, r.text[:1000]


def test_grid_parameters_need_a_logical_coadd(field):
    calexp = next(r for r in query(field["repo"], "--type", "calexp") if r["collection"] == "DR1")
    r = soda(field, {"ID": calexp["dataset_id"], "CIRCLE": f"{calexp['s_ra']} {calexp['s_dec']} 0.01",
                     "GRID_SCALE": "0.5"})
    assert r.status_code == 400 and "logical coadds" in r.text
    r = soda(field, {"ID": ["DR1.deepCoadd.r", calexp["dataset_id"]], "CIRCLE": "0 -27.75 0.01"})
    assert r.status_code == 400 and "separate requests" in r.text


def test_no_patch_in_the_region_is_no_content(field):
    r = soda(field, {"ID": "DR1.deepCoadd.r", "CIRCLE": "180 30 0.01"})
    assert r.status_code == 204


# ------------------------------------------------------------------ async, progress, ABORT

def test_async_mosaic_with_progress_and_abort(field):
    url, job = run_uws_job(field["url"], "/api/soda/async",
                           [("ID", "DR1.deepCoadd.g"), ("CIRCLE", "0.05 -27.75 0.1"), ("GRID_SCALE", "0.5"),
                            ("PHASE", "RUN")])
    assert job.phase == "COMPLETED", requests.get(url).text
    result = requests.get(url + "/results/cutout-1")
    assert result.status_code == 200
    with fits.open(io.BytesIO(result.content)) as m:
        assert m["IMAGE"].header["NAXIS1"] > 1000 and m["IMAGE"].header["PSDSID"] == "DR1.deepCoadd.g"
    # A large one, aborted while it runs: it stops between strips.
    r = requests.post(field["url"] + "/api/soda/async",
                      data=[("ID", "DR1.deepCoadd.g"), ("CIRCLE", "0.05 -27.75 0.25"), ("GRID_SCALE", "0.1"),
                            ("PHASE", "RUN")], allow_redirects=False)
    assert r.status_code == 303
    job_url = r.headers["Location"]
    job_url = job_url if job_url.startswith("http") else field["url"] + job_url
    deadline = time.monotonic() + 60
    while requests.get(job_url + "/phase").text.strip() != "EXECUTING" and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)
    requests.post(job_url + "/phase", data={"PHASE": "ABORT"})
    started = time.monotonic()
    while requests.get(job_url + "/phase").text.strip() not in ("ABORTED", "ERROR", "COMPLETED"):
        assert time.monotonic() - started < 30, "ABORT did not stop the mosaic"
        time.sleep(0.1)
    assert requests.get(job_url + "/phase").text.strip() == "ABORTED"


# ------------------------------------------------------------------ memory

def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_peak_memory_does_not_grow_with_the_mosaic(field):
    srv = start_server(field["repo"])
    try:
        url = srv.url + "/api/soda/sync"
        # 2 Mpixel (25 MB) three times, so that every worker thread has
        # made one (each keeps its own freed memory), then 20 Mpixel (250 MB).
        small = {"ID": "DR1.deepCoadd.r", "CIRCLE": "0.05 -27.75 0.05", "GRID_SCALE": "0.25"}
        large = {"ID": "DR1.deepCoadd.r", "CIRCLE": "0.05 -27.75 0.05", "GRID_SCALE": "0.079"}
        sizes = []
        for params in (small, small, small, large):
            with requests.get(url, params=params, stream=True, timeout=300) as r:
                assert r.status_code == 200, r.text[:500]
                sizes.append(sum(len(c) for c in r.iter_content(1 << 20)))
            if params is small:
                after_small = peak_rss_mb(srv.process.pid)
        after_large = peak_rss_mb(srv.process.pid)
        print(f"peak RSS after a {sizes[0] / 1e6:.0f} MB mosaic: {after_small:.1f} MB; "
              f"after a {sizes[3] / 1e6:.0f} MB one: {after_large:.1f} MB")
        assert sizes[3] > 9 * sizes[0]
        assert after_large < 1.2 * after_small
    finally:
        assert stop_server(srv) == 0
