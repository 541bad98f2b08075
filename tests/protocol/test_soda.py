"""SODA 1.0 cutouts (sync and async over UWS 1.1) through a real `pixserve
serve`, with astropy's Cutout2D as the oracle for pixels and WCS, Debian's
pyvo (1.2.1) as the DataLink/SODA client, and pyvo's UWS parser for jobs.

pyvo 1.2.1 has no generic UWS job class for SODA (AsyncTAPJob is TAP's), so
async jobs are driven with requests following UWS 1.1 and their documents
parsed with pyvo.io.uws."""
import io
import math
import os
import re
import shutil
import signal
import subprocess
import tarfile
import time
import zipfile
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import requests
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS
import astropy.units as u
from pyvo.dal import sia2
from pyvo.io import uws

from conftest import query, run, start_server, stop_server
from test_services import votable

SODA_SYNC = "ivo://ivoa.net/std/SODA#sync-1.0"
SODA_ASYNC = "ivo://ivoa.net/std/SODA#async-1.0"
PLANES = ("IMAGE", "MASK", "VARIANCE")
AUTHORITY_RE = re.compile(r"^ivo://")


@pytest.fixture(scope="module")
def registered(repo_dir):
    return {row["dataset_id"]: row for row in query(repo_dir)}


def of_type(registered, kind):
    """Datasets of a type; coadd patches only (no logical coadd, which has no file)."""
    return sorted((r for r in registered.values() if r["type"] == kind and r.get("storage") != "virtual"
                   or r["type"] == kind and kind not in ("deepCoadd", "goodSeeingCoadd")),
                  key=lambda r: r["dataset_id"])


def sync(server, params, method="get"):
    url = server.url + "/api/soda/sync"
    if method == "get":
        return requests.get(url, params=params, timeout=120)
    return requests.post(url, data=params, timeout=120)


def hdul_of(response):
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["Content-Type"] == "application/fits"
    assert int(response.headers["Content-Length"]) == len(response.content)
    return fits.open(io.BytesIO(response.content))


def error_text(response):
    """The QUERY_STATUS=ERROR message of a DALI error document."""
    assert response.headers["Content-Type"].startswith("application/x-votable+xml"), response.headers
    doc = votable(response.content)
    infos = [i for i in doc.resources[0].infos if i.name == "QUERY_STATUS"]
    assert infos and infos[0].value == "ERROR"
    return infos[0].content or ""


def psbox(header):
    """PSBOX '[x1:x2,y1:y2]' (1-based, inclusive) -> 0-based x0, x1, y0, y1 (last pixels)."""
    m = re.fullmatch(r"\[(\d+):(\d+),(\d+):(\d+)\]", header["PSBOX"])
    x1, x2, y1, y2 = map(int, m.groups())
    return x1 - 1, x2 - 1, y1 - 1, y2 - 1


def corners(w, width, height):
    return [(-0.5, -0.5), (width - 0.5, -0.5), (width - 0.5, height - 0.5), (-0.5, height - 0.5)]


def sky_distance_deg(a, b):
    return a.separation(b).deg


def assert_wcs_agrees(cut_header, oracle_wcs, width, height):
    """The cutout's WCS puts every corner where the oracle's does, to 1e-9 deg."""
    ours = WCS(cut_header)
    for x, y in corners(None, width, height) + [((width - 1) / 2, (height - 1) / 2)]:
        a = ours.pixel_to_world(x, y)
        b = oracle_wcs.pixel_to_world(x, y)
        assert sky_distance_deg(a, b) < 1e-9, (x, y, a, b)


def assert_matches_cutout2d(source_file, cut_hdul, dataset_id, expect_cutouts=None):
    """Every cutout plane in cut_hdul of `dataset_id` equals Cutout2D of the
    same plane of the source over the same box: exact pixels, WCS corners to
    1e-9 deg. Returns the boxes checked."""
    boxes = []
    with fits.open(source_file) as src:
        for hdu in cut_hdul[1:]:
            if hdu.header.get("PSDSID") != dataset_id:
                continue
            x0, x1, y0, y1 = psbox(hdu.header)
            size = (y1 - y0 + 1, x1 - x0 + 1)
            plane = src[hdu.header["EXTNAME"]]
            oracle = Cutout2D(plane.data, position=((x0 + x1) / 2, (y0 + y1) / 2), size=size,
                              wcs=WCS(plane.header), mode="trim")
            assert oracle.data.shape == hdu.data.shape
            assert np.array_equal(oracle.data, hdu.data, equal_nan=True), (dataset_id, hdu.header["EXTNAME"])
            assert oracle.data.dtype.kind == hdu.data.dtype.kind
            assert_wcs_agrees(hdu.header, oracle.wcs, size[1], size[0])
            boxes.append((hdu.header["EXTNAME"], hdu.header["EXTVER"], (x0, x1, y0, y1)))
    if expect_cutouts is not None:
        assert len(boxes) == expect_cutouts * len(PLANES), boxes
    return boxes


def assert_box_covers_circle(source_file, box, ra, dec, radius_deg):
    """The box is the pixel cover of the circle: every pixel whose centre is
    inside is in it, and each edge row/column has a pixel that touches it."""
    x0, x1, y0, y1 = box
    with fits.open(source_file) as src:
        w = WCS(src["IMAGE"].header)
        ny, nx = src["IMAGE"].data.shape
    centre = SkyCoord(ra * u.deg, dec * u.deg)
    pad = 40
    xs, ys = np.meshgrid(np.arange(max(0, x0 - pad), min(nx, x1 + pad + 1)),
                         np.arange(max(0, y0 - pad), min(ny, y1 + pad + 1)))
    sep = w.pixel_to_world(xs, ys).separation(centre).deg
    inside = sep <= radius_deg
    assert inside.any()
    assert xs[inside].min() >= x0 and xs[inside].max() <= x1
    assert ys[inside].min() >= y0 and ys[inside].max() <= y1
    half_diag = math.sqrt(0.5) * abs(w.proj_plane_pixel_scales()[0].to(u.deg).value) * 1.001
    near = sep <= radius_deg + half_diag
    for edge in (xs == x0, xs == x1, ys == y0, ys == y1):
        assert (near & edge).any()


def circle_at(source_file, x, y, radius_px):
    with fits.open(source_file) as src:
        w = WCS(src["IMAGE"].header)
        scale = abs(w.proj_plane_pixel_scales()[0].to(u.deg).value)
    c = w.pixel_to_world(x, y)
    return c.ra.deg, c.dec.deg, radius_px * scale


# ---------------------------------------------------------------- sync

def test_capabilities_list_sync_and_async(server):
    r = requests.get(server.url + "/api/soda/capabilities")
    assert r.status_code == 200
    root = ET.fromstring(r.content)
    caps = {c.get("standardID"): c.find("interface/accessURL").text for c in root.findall("capability")}
    assert caps[SODA_SYNC] == server.url + "/api/soda/sync"
    assert caps[SODA_ASYNC] == server.url + "/api/soda/async"
    a = requests.get(server.url + "/api/soda/availability")
    assert a.status_code == 200 and "<avail:available>true</avail:available>" in a.text


@pytest.mark.parametrize("kind", ["calexp", "calexp_comp"])
def test_circle_cutout_equals_cutout2d(server, registered, kind):
    rows = of_type(registered, kind)[:3]
    for i, row in enumerate(rows):
        ra, dec, r = circle_at(row["file"], 40 + 50 * i, 200 - 30 * i, 25.4)
        with hdul_of(sync(server, {"ID": row["dataset_id"], "CIRCLE": f"{ra!r} {dec!r} {r!r}"})) as cut:
            assert cut[0].header["PSNCUT"] == 1
            boxes = assert_matches_cutout2d(row["file"], cut, row["dataset_id"], expect_cutouts=1)
            # 51 x 51 postage stamp, away from the edges.
            assert boxes[0][2][1] - boxes[0][2][0] + 1 == 51 and boxes[0][2][3] - boxes[0][2][2] + 1 == 51
            assert_box_covers_circle(row["file"], boxes[0][2], ra, dec, r)
            assert cut["IMAGE"].header["PSREGION"].startswith("CIRCLE ")


def test_polygon_range_pixel_and_edges(server, registered):
    row = of_type(registered, "calexp")[1]
    with fits.open(row["file"]) as src:
        w = WCS(src["IMAGE"].header)
    poly = w.pixel_to_world([10, 60, 35], [10, 12, 70])
    polygon = " ".join(f"{c.ra.deg!r} {c.dec.deg!r}" for c in poly)
    lo, hi = w.pixel_to_world([100, 140], [100, 130])
    rng = f"RANGE {min(lo.ra.deg, hi.ra.deg)!r} {max(lo.ra.deg, hi.ra.deg)!r} {min(lo.dec.deg, hi.dec.deg)!r} {max(lo.dec.deg, hi.dec.deg)!r}"
    edge_ra, edge_dec, edge_r = circle_at(row["file"], 2.0, 250.0, 20.0)  # clipped by two edges
    params = [("ID", row["dataset_id"]), ("POLYGON", polygon), ("POS", rng),
              ("POS", f"CIRCLE {edge_ra!r} {edge_dec!r} {edge_r!r}")]
    with hdul_of(sync(server, params, method="post")) as cut:
        boxes = assert_matches_cutout2d(row["file"], cut, row["dataset_id"], expect_cutouts=3)
        # POS values come before POLYGON values in the output; the edge box is clipped.
        edge = [b for name, ver, b in boxes if name == "IMAGE"][1]
        assert edge[0] == 0 and edge[3] == 255
    # PIXEL: FITS-style ranges, alone and restricting a shape.
    with hdul_of(sync(server, {"ID": row["dataset_id"], "PIXEL": "[11:30,101:250]"})) as cut:
        (_, _, box), *_ = assert_matches_cutout2d(row["file"], cut, row["dataset_id"], expect_cutouts=1)
        assert box == (10, 29, 100, 249)
    with hdul_of(sync(server, {"ID": row["dataset_id"], "PIXEL": "[*,1:5]"})) as cut:
        (_, _, box), *_ = assert_matches_cutout2d(row["file"], cut, row["dataset_id"], expect_cutouts=1)
        assert box == (0, 255, 0, 4)


def test_several_ids_and_shapes_in_one_file(server, registered):
    """All epochs of one object: every calexp containing a position, with two
    circles, in one multi-extension FITS with unique EXTNAME/EXTVER."""
    first = of_type(registered, "calexp")[0]
    ra, dec, r = circle_at(first["file"], 128, 128, 25.4)
    hits = [row for row in of_type(registered, "calexp")
            if requests.get(server.url + "/api/soda/sync",
                            params={"ID": row["dataset_id"], "CIRCLE": f"{ra} {dec} {r}"}).status_code == 200]
    assert len(hits) >= 2
    params = [("ID", row["dataset_id"]) for row in hits] + [("CIRCLE", f"{ra} {dec} {r}"),
                                                            ("CIRCLE", f"{ra} {dec} {r / 2}")]
    with hdul_of(sync(server, params)) as cut:
        assert cut[0].header["PSNCUT"] == 2 * len(hits)
        keys = {(h.header["EXTNAME"], h.header["EXTVER"]) for h in cut[1:]}
        assert len(keys) == len(cut) - 1
        for row in hits:
            assert_matches_cutout2d(row["file"], cut, row["dataset_id"], expect_cutouts=2)


def test_coadd_cutout_across_patch_boundary(server, registered):
    """A circle over the boundary of two patches of one tract: assembled from
    both, each pixel from the patch whose inner region holds it; compared with
    Cutout2D of the mosaic built here from the two patch files."""
    patches = {r["dataset_id"]: r for r in of_type(registered, "deepCoadd")}
    a = next(r for k, r in patches.items() if k.endswith(".r.t0.p9_9"))
    b = next(r for k, r in patches.items() if k.endswith(".r.t0.p10_9"))
    with fits.open(a["file"]) as fa, fits.open(b["file"]) as fb:
        ha, hb = fa["IMAGE"].header, fb["IMAGE"].header
        dx = round(ha["CRPIX1"] - hb["CRPIX1"])  # b starts at x = dx in a's grid
        assert ha["CRPIX2"] == hb["CRPIX2"] and dx > 0
        wa = WCS(ha)
        ny, nx = fa["IMAGE"].data.shape
        # Ownership on the union grid (= a's grid, as a lies left): the larger
        # distance to the patch edge wins; ties go to the earlier file path.
        xs = np.arange(nx + dx)
        score_a = np.where(xs < nx, np.minimum(xs, nx - 1 - xs), -1)
        xb = xs - dx
        score_b = np.where(xb >= 0, np.minimum(xb, nx - 1 - xb), -1)
        b_first = b["file"] < a["file"]
        take_b = (score_b > score_a) | ((score_b == score_a) & b_first)
        mosaics = {}
        for plane in PLANES:
            da, db = fa[plane].data, fb[plane].data
            m = np.zeros((ny, nx + dx), dtype=da.dtype)
            m[:, :nx] = da
            m[:, take_b] = db[:, xb[take_b]]
            mosaics[plane] = m
    boundary_x = (nx - 1 + dx) / 2
    ra, dec, r = circle_at(a["file"], boundary_x, ny / 2, 60.0)
    for patch in (a, b):
        with hdul_of(sync(server, {"ID": patch["dataset_id"], "CIRCLE": f"{ra!r} {dec!r} {r!r}"})) as cut:
            assert cut[0].header["PSNCUT"] == 1
            for plane in PLANES:
                hdu = cut[plane]
                h = hdu.header
                # The cutout's grid offset in a's grid, from its CRPIX.
                ox = round(ha["CRPIX1"] - h["CRPIX1"])
                oy = round(ha["CRPIX2"] - h["CRPIX2"])
                height, width = hdu.data.shape
                assert ox < boundary_x < ox + width  # spans the boundary
                oracle = Cutout2D(mosaics[plane], position=(ox + (width - 1) / 2, oy + (height - 1) / 2),
                                  size=(height, width), wcs=wa, mode="trim")
                assert np.array_equal(oracle.data, hdu.data, equal_nan=True), plane
                assert_wcs_agrees(h, oracle.wcs, width, height)
            assert_box_covers_circle(a["file"], (ox, ox + width - 1, oy, oy + height - 1), ra, dec, r)


def test_band_time_pol_select_whole_images(server, registered):
    row = of_type(registered, "calexp")[0]
    ra, dec, r = circle_at(row["file"], 100, 100, 10)
    base = {"ID": row["dataset_id"], "CIRCLE": f"{ra} {dec} {r}"}
    table = votable(requests.get(server.url + "/api/sia/query", params={"MAXREC": 100000}).content)
    t = table.get_first_table().to_table()
    t = t[[str(x).endswith("?" + row["dataset_id"]) for x in t["obs_publisher_did"]]]
    assert len(t) == 1
    em_min, em_max, t_min, t_max = (float(t[c][0]) for c in ("em_min", "em_max", "t_min", "t_max"))
    assert sync(server, {**base, "BAND": f"{em_min} {em_max}"}).status_code == 200
    assert sync(server, {**base, "BAND": f"{em_max * 1.5} {em_max * 2}"}).status_code == 204
    assert sync(server, {**base, "TIME": f"{t_min - 1} {t_max + 1}"}).status_code == 200
    r = sync(server, {**base, "TIME": f"{t_max + 1} {t_max + 2}"})
    assert r.status_code == 204 and r.content == b"" and r.headers["X-SODA-Status"].startswith("NoOverlap")
    assert sync(server, {**base, "POL": "I"}).status_code == 200
    assert sync(server, {**base, "POL": "Q"}).status_code == 204


@pytest.mark.parametrize("fmt,mime", [("tar", "application/x-tar"), ("application/zip", "application/zip")])
def test_tar_and_zip_hold_one_fits_per_cutout(server, registered, fmt, mime):
    rows = of_type(registered, "calexp")[:2]
    shapes = [circle_at(rows[0]["file"], 60, 60, 8), circle_at(rows[0]["file"], 150, 90, 5)]
    params = [("ID", r["dataset_id"]) for r in rows] + [("CIRCLE", f"{a} {b} {c}") for a, b, c in shapes]
    params.append(("RESPONSEFORMAT", fmt))
    resp = sync(server, params)
    assert resp.status_code == 200, resp.text[:1000]
    assert resp.headers["Content-Type"] == mime
    assert int(resp.headers["Content-Length"]) == len(resp.content)
    members = {}
    if mime == "application/x-tar":
        with tarfile.open(fileobj=io.BytesIO(resp.content)) as t:
            for m in t.getmembers():
                members[m.name] = t.extractfile(m).read()
    else:
        with zipfile.ZipFile(io.BytesIO(resp.content)) as z:
            assert z.testzip() is None
            members = {n: z.read(n) for n in z.namelist()}
    assert len(members) >= 2
    for name, data in members.items():
        did = next(r["dataset_id"] for r in rows if r["dataset_id"] in name)
        with fits.open(io.BytesIO(data)) as cut:
            assert cut[0].header["PSDSID"] == did
            assert_matches_cutout2d(registered[did]["file"], cut, did, expect_cutouts=1)


def test_plane_cuts_only_the_planes_asked(server, registered):
    """PLANE (repeatable: IMAGE, MASK, VARIANCE) keeps the image's own plane
    order, on the streamed FITS path, in tar members, for a coadd assembled
    across patches; planes no image has and mosaics are refused."""
    row = of_type(registered, "calexp")[0]
    ra, dec, r = circle_at(row["file"], 100, 120, 20.0)
    base = [("ID", row["dataset_id"]), ("CIRCLE", f"{ra!r} {dec!r} {r!r}")]
    with hdul_of(sync(server, base + [("PLANE", "VARIANCE")])) as cut:
        assert [h.header["EXTNAME"] for h in cut[1:]] == ["VARIANCE"]
        assert_matches_cutout2d(row["file"], cut, row["dataset_id"])
    with hdul_of(sync(server, base + [("PLANE", "MASK"), ("PLANE", "IMAGE"), ("PLANE", "MASK")])) as cut:
        assert [h.header["EXTNAME"] for h in cut[1:]] == ["IMAGE", "MASK"]
        assert_matches_cutout2d(row["file"], cut, row["dataset_id"])
        assert any(k.startswith("MP_") for k in cut["MASK"].header)
    resp = sync(server, base + [("PLANE", "IMAGE"), ("RESPONSEFORMAT", "tar")])
    assert resp.status_code == 200, resp.text[:1000]
    with tarfile.open(fileobj=io.BytesIO(resp.content)) as t:
        (member,) = t.getmembers()
        with fits.open(io.BytesIO(t.extractfile(member).read())) as cut:
            assert [h.header["EXTNAME"] for h in cut[1:]] == ["IMAGE"]
            assert_matches_cutout2d(row["file"], cut, row["dataset_id"])
    # A coadd patch's cutout across its neighbour: the mask alone, as the
    # full assembly's mask.
    patch = next(p for p in of_type(registered, "deepCoadd") if p["dataset_id"].endswith(".r.t0.p9_9"))
    with fits.open(patch["file"]) as src:
        ny, nx = src["IMAGE"].data.shape
    pra, pdec, pr = circle_at(patch["file"], nx - 60, ny / 2, 80.0)
    coadd = [("ID", patch["dataset_id"]), ("CIRCLE", f"{pra!r} {pdec!r} {pr!r}")]
    with hdul_of(sync(server, coadd)) as whole, hdul_of(sync(server, coadd + [("PLANE", "MASK")])) as cut:
        assert [h.header["EXTNAME"] for h in cut[1:]] == ["MASK"]
        assert np.array_equal(cut["MASK"].data, whole["MASK"].data)
        assert cut["MASK"].header["PSBOX"] == whole["MASK"].header["PSBOX"]
    bad = sync(server, base + [("PLANE", "FLUX")])
    assert bad.status_code == 400 and "PLANE" in error_text(bad)
    mosaic = sync(server, {"ID": "DR1.deepCoadd.r", "CIRCLE": f"{pra!r} {pdec!r} 0.01", "PLANE": "IMAGE"})
    assert mosaic.status_code == 400 and "PLANE does not apply to a mosaic" in error_text(mosaic)
    # DataLink's cutout descriptor offers the parameter with its values.
    links = requests.get(server.url + "/api/datalink/links", params={"ID": row["dataset_id"]}, timeout=60)
    plane_param = re.search(r'<PARAM[^>]*name="PLANE".*?</PARAM>', links.text, re.S)
    assert plane_param, links.text[:3000]
    assert all(f'value="{v}"' in plane_param.group(0) for v in PLANES)


# ---------------------------------------------------------------- errors and hostile input

def test_errors_follow_soda(server, registered):
    row = of_type(registered, "calexp")[0]
    # No overlap: 204, no body (SODA 1.0 section 5.1).
    r = sync(server, {"ID": row["dataset_id"], "CIRCLE": "200 10 0.01"})
    assert r.status_code == 204 and r.content == b""
    # Bad shapes: 400 with a UsageError naming the parameter.
    for params in ({"CIRCLE": "10 20"}, {"CIRCLE": "10 NaN 1"}, {"CIRCLE": "10 20 -1"}, {"POS": "BOX 1 2 3 4"},
                   {"POLYGON": "1 2 3 4"}, {"POS": "CIRCLE 1 95 1"}, {"PIXEL": "[0:5,1:5]"},
                   {"PIXEL": "[5:1,1:5]"}, {"RESPONSEFORMAT": "text/html"}, {"CIRCEL": "1 2 3"}):
        r = sync(server, {"ID": row["dataset_id"], **params})
        assert r.status_code == 400, (params, r.status_code)
        assert error_text(r).startswith("UsageError: "), params
    r = sync(server, {"CIRCLE": "1 2 3"})
    assert r.status_code == 400 and "ID" in error_text(r)
    # A raw exposure cannot be cut.
    raw = of_type(registered, "raw")[0]
    r = sync(server, {"ID": raw["dataset_id"]})
    assert r.status_code == 400 and "cannot be cut out" in error_text(r)


def test_hostile_inputs(server, registered):
    row = of_type(registered, "calexp")[0]
    # Path-like and malformed IDs: the unknown-ID error, never a file.
    for bad in ("../../../etc/passwd", "/etc/passwd", "DR1/../../registry.sqlite3", "ivo://evil.org/x?../../etc",
                "DR1.calexp.v1.d001%00", "\x01\x02", "x" * 5000, ""):
        r = sync(server, {"ID": bad}, method="post")
        assert r.status_code == 404, (bad[:40], r.status_code)
        text = error_text(r)
        assert text.startswith("UsageError: ID") and "is not a known dataset" in text
        assert "root:" not in text  # echoed (printable, shortened), never resolved
        assert len(text) < 300
    # Huge polygons: too many vertices are refused at once; a huge area is fine.
    t = time.monotonic()
    many = " ".join(f"{53 + 0.5 * math.cos(a)} {-28 + 0.5 * math.sin(a)}"
                    for a in np.linspace(0, 2 * math.pi, 200000, endpoint=False))
    r = sync(server, {"ID": row["dataset_id"], "POLYGON": many}, method="post")
    assert r.status_code == 400 and "vertices" in error_text(r)
    assert time.monotonic() - t < 10
    with hdul_of(sync(server, {"ID": row["dataset_id"], "POLYGON": "0 -10 240 -10 120 -10"})) as cut:
        assert cut["IMAGE"].data.shape == (256, 256)  # the whole image
    # NaN and infinities.
    for bad in ("nan 1 1", "1 nan 1", "1 1 inf", "1 1 NaN"):
        assert sync(server, {"ID": row["dataset_id"], "CIRCLE": bad}).status_code == 400
    # Thousands of IDs: capped with a clear message.
    r = sync(server, [("ID", row["dataset_id"])] * 1001, method="post")
    assert r.status_code == 400 and "at most 1000" in error_text(r)
    # Hundreds are served (the same ID repeated: one cutout each).
    with hdul_of(sync(server, [("ID", row["dataset_id"])] * 300 + [("PIXEL", "[1:3,1:3]")], method="post")) as cut:
        assert cut[0].header["PSNCUT"] == 300


def test_embargoed_ids_look_unknown(embargo_server, embargo_repo):
    srv, embargoed = embargo_server
    unknown = sync(srv, {"ID": "DR2.calexp.v1.d999"})
    hidden = sync(srv, {"ID": embargoed})
    assert unknown.status_code == hidden.status_code == 404
    assert error_text(hidden) == error_text(unknown).replace("DR2.calexp.v1.d999", embargoed)
    # And through async: the job fails the same way.
    job = create_job(srv, {"ID": embargoed}, run=True)
    assert wait_final(srv, job).phase == "ERROR"
    assert "is not a known dataset" in requests.get(f"{job}/error").text


# ---------------------------------------------------------------- pyvo

def test_pyvo_processed_through_datalink(server, registered):
    sia = sia2.SIAService(server.url + "/api/sia")
    row = next(r for r in sia.search(maxrec=100000) if str(r["dataproduct_subtype"]) == "calexp")
    links = row.getdatalink()
    proc = links.get_first_proc()
    did = str(row["obs_publisher_did"])
    dataset_id = did.split("?", 1)[1]
    src = registered[dataset_id]["file"]
    ra, dec, r = circle_at(src, 128, 128, 25.4)
    stream = proc.processed(circle=(ra, dec, r))
    data = stream.read()
    with fits.open(io.BytesIO(data)) as cut:
        assert_matches_cutout2d(src, cut, dataset_id, expect_cutouts=1)


# ---------------------------------------------------------------- async (UWS 1.1)

def create_job(server, params, run=False):
    data = list(params.items()) if isinstance(params, dict) else list(params)
    if run:
        data.append(("PHASE", "RUN"))
    r = requests.post(server.url + "/api/soda/async", data=data, allow_redirects=False)
    assert r.status_code == 303, r.text
    return r.headers["Location"]


def job_of(url, **params):
    r = requests.get(url, params=params)
    assert r.status_code == 200, r.text
    return uws.parse_job(io.BytesIO(r.content))


def wait_final(server, url, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = job_of(url, WAIT=10)
        if job.phase in ("COMPLETED", "ERROR", "ABORTED"):
            return job
    raise AssertionError(f"job {url} did not finish")


def test_async_job_lifecycle(server, registered):
    rows = of_type(registered, "calexp")[:2]
    shape = circle_at(rows[0]["file"], 80, 80, 10)
    params = [("ID", r["dataset_id"]) for r in rows] + [("CIRCLE", "%r %r %r" % shape), ("CIRCLE", "200 10 0.01")]
    url = create_job(server, params)
    job = job_of(url)
    assert job.phase == "PENDING"
    assert {p.id_.upper() if hasattr(p, "id_") else p.id.upper() for p in job.parameters} >= {"ID", "CIRCLE"}
    r = requests.post(url + "/phase", data={"PHASE": "RUN"}, allow_redirects=False)
    assert r.status_code == 303
    job = wait_final(server, url)
    assert job.phase == "COMPLETED", job.errorsummary
    results = {res.id_ if hasattr(res, "id_") else res.id: res for res in job.results}
    assert len(results) == 4  # each ID x shape combination is one result (SODA 1.0 section 6)
    fits_count = 0
    for rid, res in results.items():
        href = res.href if hasattr(res, "href") else res.xlink_href
        body = requests.get(href)
        assert body.status_code == 200
        if body.content[:6] == b"SIMPLE":
            fits_count += 1
            with fits.open(io.BytesIO(body.content)) as cut:
                did = cut["IMAGE"].header["PSDSID"]
                assert_matches_cutout2d(registered[did]["file"], cut, did, expect_cutouts=1)
        else:
            assert body.text.startswith("UsageError: NoOverlap"), body.text
    assert fits_count >= 1
    # Progress reached the end; the job list shows it; DELETE removes it.
    listing = requests.get(server.url + "/api/soda/async")
    assert listing.status_code == 200
    r = requests.delete(url, allow_redirects=False)
    assert r.status_code == 303
    assert requests.get(url).status_code == 404


def test_async_validation_error_and_abort(server, registered):
    row = of_type(registered, "calexp")[0]
    # Parameters are checked when the job is created.
    r = requests.post(server.url + "/api/soda/async", data={"ID": row["dataset_id"], "CIRCLE": "1 2"},
                      allow_redirects=False)
    assert r.status_code == 400 and r.text.startswith("UsageError: CIRCLE")
    r = requests.post(server.url + "/api/soda/async", data=[("ID", "x")] * 1001, allow_redirects=False)
    assert r.status_code == 400 and "at most 1000" in r.text
    # No overlap at all: ERROR with the SODA label, and the /error resource.
    url = create_job(server, {"ID": row["dataset_id"], "CIRCLE": "200 10 0.01"}, run=True)
    job = wait_final(server, url)
    assert job.phase == "ERROR"
    assert "NoOverlap" in requests.get(url + "/error").text
    # Unknown ID.
    url = create_job(server, {"ID": "DR1.calexp.v0.d000"}, run=True)
    assert wait_final(server, url).phase == "ERROR"
    # ABORT of a pending job.
    url = create_job(server, {"ID": row["dataset_id"]})
    requests.post(url + "/phase", data={"PHASE": "ABORT"})
    assert job_of(url).phase == "ABORTED"


def test_async_tar_result(server, registered):
    rows = of_type(registered, "calexp_comp")[:2]
    shape = circle_at(rows[0]["file"], 100, 100, 12)
    url = create_job(server, [("ID", r["dataset_id"]) for r in rows] + [("CIRCLE", "%r %r %r" % shape),
                                                                          ("RESPONSEFORMAT", "tar")], run=True)
    job = wait_final(server, url)
    assert job.phase == "COMPLETED"
    [res] = job.results
    body = requests.get(res.href if hasattr(res, "href") else res.xlink_href).content
    with tarfile.open(fileobj=io.BytesIO(body)) as t:
        for m in t.getmembers():
            with fits.open(io.BytesIO(t.extractfile(m).read())) as cut:
                did = cut["IMAGE"].header["PSDSID"]
                assert_matches_cutout2d(registered[did]["file"], cut, did, expect_cutouts=1)


# ---------------------------------------------------------------- kill -9 during a job

@pytest.fixture(scope="module")
def embargo_repo(survey_dir, tmp_path_factory):
    """A second repository over the same files (symlinked) plus an embargoed
    collection, for tests that restart servers or need embargoed data."""
    repo = tmp_path_factory.mktemp("soda-repo") / "repo"
    run("ingest", "--repo", repo, "--transfer", "symlink", survey_dir)
    run("ingest", "--repo", repo, "--transfer", "symlink", "--collection", "DR2", "--embargo-hours", "10000000",
        survey_dir / "calexp")
    return repo


@pytest.fixture(scope="module")
def embargo_server(embargo_repo):
    rows = query(embargo_repo, "--collection", "DR2")
    assert rows
    srv = start_server(embargo_repo)
    yield srv, rows[0]["dataset_id"]
    stop_server(srv)


def test_kill_9_during_a_job_leaves_coherent_state(embargo_repo, tmp_path):
    """A server killed while it runs a job: the next server takes the job
    over once its lease has expired (a second attempt, said in jobInfo),
    finished jobs keep their results and pending ones stay pending."""
    calexps = [r for r in query(embargo_repo, "--type", "calexp", "--collection", "DR1")]
    config = tmp_path / "short-lease.yaml"
    config.write_text("jobs:\n  lease_s: 2\n  poll_interval_s: 0.2\n")
    srv = start_server(embargo_repo, "--config", config)
    try:
        # A finished job and a pending one, which must survive the crash.
        first = calexps[0]
        ra, dec, r = circle_at(first["file"], 100, 100, 10)
        done = create_job(srv, {"ID": first["dataset_id"], "CIRCLE": f"{ra} {dec} {r}"}, run=True)
        assert wait_final(srv, done).phase == "COMPLETED"
        done_bytes = requests.get(done + "/results/cutout-1").content
        pending = create_job(srv, {"ID": first["dataset_id"], "PIXEL": "[1:5,1:5]"})
        # A long job: 1000 IDs x 5 shapes = 5000 cutouts.
        ids = [("ID", calexps[i % len(calexps)]["dataset_id"]) for i in range(1000)]
        shapes = [("CIRCLE", f"{ra} {dec} {r * (1 + k / 10)}") for k in range(5)]
        long_job = create_job(srv, ids + shapes, run=True)
        deadline = time.monotonic() + 60
        while True:
            text = requests.get(long_job).text
            if "<uws:phase>EXECUTING</uws:phase>" in text and re.search(r"progress", text, re.I):
                break
            assert "COMPLETED" not in text, "the long job finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        srv.process.send_signal(signal.SIGKILL)
        srv.process.wait(10)
    finally:
        if srv.process.poll() is None:
            srv.process.kill()
            srv.process.wait()
    srv = start_server(embargo_repo, "--config", config)
    rebase = lambda url: srv.url + url[url.index("/api/"):]  # the new server has a new port
    long_job, done, pending = rebase(long_job), rebase(done), rebase(pending)
    try:
        # Taken over by the new server when the dead one's lease ran out.
        deadline = time.monotonic() + 30
        while "<attempts>2</attempts>" not in (text := requests.get(long_job).text):
            assert time.monotonic() < deadline, text
            time.sleep(0.1)
        assert "<uws:phase>EXECUTING</uws:phase>" in text or "<uws:phase>COMPLETED</uws:phase>" in text, text
        # No result of the killed attempt is served as this attempt's.
        if "<uws:phase>EXECUTING</uws:phase>" in text:
            assert "<uws:result " not in text, text
        requests.post(long_job + "/phase", data={"PHASE": "ABORT"})
        assert job_of(long_job).phase in ("ABORTED", "COMPLETED")
        assert job_of(done).phase == "COMPLETED"
        assert requests.get(done + "/results/cutout-1").content == done_bytes
        assert job_of(pending).phase == "PENDING"
        # The pending job still runs after the restart.
        requests.post(pending + "/phase", data={"PHASE": "RUN"})
        assert wait_final(srv, pending).phase == "COMPLETED"
        # The taken-over job can be deleted with its files.
        assert requests.delete(long_job, allow_redirects=False).status_code == 303
        assert requests.get(long_job).status_code == 404
    finally:
        assert stop_server(srv) == 0
