"""HiPS generation and serving, MOC coverage (issue 7).

Tiles are checked against an independent resampling of the coadds with
astropy (WCS) and astropy_healpix (HEALPix cell centres); the MOCs against the
coadds' pixel centres; the served tree against the HiPS 1.0 rules; and, when
Debian's `aladin` is installed, the tree against Hipsgen's LINT.
"""
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.wcs import WCS
import astropy.units as u
from astropy_healpix.core import healpix_to_lonlat, lonlat_to_healpix

from conftest import query, run, start_server, stop_server

ORDER = 11  # the coadds' 0.2" pixels: HEALPix order 20 = 11 + 9
PUBLIC_ORDER = 9
ALADIN_JAR = "/usr/share/java/aladin.jar"


@pytest.fixture(scope="module")
def hips_repo(survey_dir, tmp_path_factory):
    repo = tmp_path_factory.mktemp("hipsrepo") / "hrepo"
    run("ingest", "--repo", repo, "--transfer", "hardlink", survey_dir)
    return repo


@pytest.fixture(scope="module")
def band_map(hips_repo):
    out = hips_repo / "hips" / "deepCoadd-r"
    result = run("hips", "--repo", hips_repo, "--band", "r", "--order", ORDER, "--formats", "fits,png,jpeg")
    assert "tiles written" in result.stdout
    return out


@pytest.fixture(scope="module")
def color_map(hips_repo, band_map):
    run("hips", "--repo", hips_repo, "--color", "g,r,i", "--order", ORDER)
    return hips_repo / "hips" / "deepCoadd-gri"


@pytest.fixture(scope="module")
def hips_server(hips_repo, band_map, color_map, tmp_path_factory):
    config = tmp_path_factory.mktemp("hipsconf") / "pixserve.yaml"
    config.write_text(f"hips:\n  public_max_order: {PUBLIC_ORDER}\n  full_access: open\n")
    srv = start_server(hips_repo, "--config", config)
    yield srv
    assert stop_server(srv) == 0


def coadds(repo, band="r"):
    return [d for d in query(repo, "--type", "deepCoadd", "--band", band) if d["tract"] is not None]


def properties(path_or_text):
    text = path_or_text.read_text() if isinstance(path_or_text, pathlib.Path) else path_or_text
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            out[k.strip()] = v.strip()
    return out


def interleave(y, x):
    """The nested index inside a tile of FITS pixel (x, y), Hipsgen's layout:
    bits of 511 - y (the face's x axis) at even positions, bits of x at odd ones."""
    out = np.zeros_like(np.asarray(x, dtype=np.int64))
    y = 511 - np.asarray(y)
    for bit in range(9):
        out |= ((np.asarray(y) >> bit) & 1) << (2 * bit)
        out |= ((np.asarray(x) >> bit) & 1) << (2 * bit + 1)
    return out


def tiles_of(tree, order):
    return sorted(int(p.stem[4:]) for p in (tree / f"Norder{order}").glob("Dir*/Npix*.fits"))


def bilinear(data, x, y):
    """pixserve's (and the usual) bilinear rule: defined over the pixel area,
    edge pixels extended by half a pixel; NaN outside or next to a NaN."""
    h, w = data.shape
    if not (-0.5 <= x < w - 0.5 and -0.5 <= y < h - 0.5):
        return np.nan, 0.0
    cx, cy = min(max(x, 0.0), w - 1), min(max(y, 0.0), h - 1)
    x0, y0 = min(int(cx), w - 1), min(int(cy), h - 1)
    x1, y1 = min(x0 + 1, w - 1), min(y0 + 1, h - 1)
    fx, fy = cx - x0, cy - y0
    a, b, c, d = data[y0, x0], data[y0, x1], data[y1, x0], data[y1, x1]
    v = (1 - fy) * ((1 - fx) * a + fx * b) + fy * ((1 - fx) * c + fx * d)
    return v, float(np.max([a, b, c, d]) - np.min([a, b, c, d]))


def test_tree_has_every_hips_file(band_map):
    p = properties(band_map / "properties")
    for key in ["creator_did", "obs_title", "dataproduct_type", "hips_version", "hips_release_date", "hips_status",
                "hips_tile_format", "hips_order", "hips_frame", "hips_tile_width", "hips_pixel_bitpix",
                "hips_pixel_cut", "hips_initial_ra", "hips_initial_dec", "moc_sky_fraction", "hips_estsize"]:
        assert p.get(key), key
    assert p["hips_order"] == str(ORDER)
    assert p["hips_frame"] == "equatorial"
    assert set(p["hips_tile_format"].split()) == {"fits", "png", "jpeg"}
    for f in ["Norder3/Allsky.fits", "Norder3/Allsky.png", "Norder3/Allsky.jpg", "Moc.fits", "index.html",
              "HpxFinder/properties"]:
        assert (band_map / f).is_file(), f
    with fits.open(band_map / "Norder3" / "Allsky.fits") as h:
        assert h[0].data.shape == (29 * 64, 27 * 64)
    for order in range(ORDER + 1):
        tiles = tiles_of(band_map, order)
        assert tiles, f"no tiles at order {order}"
        for n in tiles:
            assert (band_map / f"Norder{order}" / f"Dir{(n // 10000) * 10000}" / f"Npix{n}.png").is_file()
    # The MOC holds exactly the deepest tiles.
    with fits.open(band_map / "Moc.fits") as h:
        uniq = np.sort(h[1].data["UNIQ"].astype(np.int64))
        assert h[1].header["MOCORD_S"] == ORDER and h[1].header["MOCVERS"] == "2.0"
    cells = set()
    for v in uniq:
        order = int(np.log2(v // 4) // 2)
        idx = int(v - 4 * 4 ** order)
        cells.update(range(idx * 4 ** (ORDER - order), (idx + 1) * 4 ** (ORDER - order)))
    assert cells == set(tiles_of(band_map, ORDER))


def test_tile_wcs_and_pixels_match_astropy(band_map, hips_repo):
    images = []
    for d in coadds(hips_repo):
        with fits.open(d["file"]) as h:
            hdu = h["IMAGE"]
            images.append((WCS(hdu.header), np.asarray(hdu.data, dtype=np.float64)))
    assert images
    rng = np.random.default_rng(1)
    nside = 2 ** (ORDER + 9)
    checked = 0
    for npix in tiles_of(band_map, ORDER):
        with fits.open(band_map / f"Norder{ORDER}" / f"Dir{(npix // 10000) * 10000}" / f"Npix{npix}.fits") as h:
            tile = h[0].data.astype(np.float64)
            header = h[0].header
        assert header["BITPIX"] == -32 and tile.shape == (512, 512)
        assert header["ORDER"] == ORDER and header["NPIX"] == npix
        xs = rng.integers(0, 512, 300)
        ys = rng.integers(0, 512, 300)
        cells = npix * 4 ** 9 + interleave(ys, xs)
        lon, lat = healpix_to_lonlat(cells, nside, order="nested")
        # The tile's HPX WCS puts each pixel on its cell centre.
        world = WCS(header).pixel_to_world_values(xs, ys)
        sep = np.degrees(np.arccos(np.clip(
            np.sin(lat.rad) * np.sin(np.radians(world[1])) +
            np.cos(lat.rad) * np.cos(np.radians(world[1])) * np.cos(lon.rad - np.radians(world[0])), -1, 1)))
        assert np.max(sep) * 3600 < 0.01, f"tile {npix}: WCS off by {np.max(sep) * 3600} arcsec"
        for x, y, ra, dec in zip(xs, ys, lon.deg, lat.deg):
            values, ranges = [], []
            for w, data in images:
                px, py = w.world_to_pixel_values(ra, dec)
                v, r = bilinear(data, float(px), float(py))
                if np.isfinite(v):
                    values.append(v)
                    ranges.append(r)
            got = tile[y, x]
            if not values:
                assert np.isnan(got), f"tile {npix} pixel {x},{y}: {got} where no coadd reaches"
                continue
            want = np.mean(values)
            tol = 0.02 * max(ranges) + 1e-4 * abs(want) + 1e-3
            assert abs(got - want) <= tol, f"tile {npix} pixel {x},{y}: {got} vs astropy {want}"
            checked += 1
    assert checked > 100


def test_lower_orders_average_their_children(band_map):
    order = ORDER - 1
    for npix in tiles_of(band_map, order)[:3]:
        with fits.open(band_map / f"Norder{order}" / f"Dir{(npix // 10000) * 10000}" / f"Npix{npix}.fits") as h:
            parent = h[0].data
        for q in range(4):
            child_n = npix * 4 + q
            path = band_map / f"Norder{ORDER}" / f"Dir{(child_n // 10000) * 10000}" / f"Npix{child_n}.fits"
            x0, y0 = (q >> 1) * 256, (1 - (q & 1)) * 256
            if not path.is_file():
                assert np.all(np.isnan(parent[y0:y0 + 256, x0:x0 + 256]))
                continue
            child = fits.getdata(path).astype(np.float64)
            blocks = child.reshape(256, 2, 256, 2)
            with np.errstate(invalid="ignore"), _nowarn():
                mean = np.nanmean(blocks, axis=(1, 3))
            np.testing.assert_allclose(parent[y0:y0 + 256, x0:x0 + 256], mean, rtol=1e-5, atol=1e-4, equal_nan=True)


class _nowarn:
    def __enter__(self):
        import warnings
        self._w = warnings.catch_warnings()
        self._w.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *a):
        self._w.__exit__(*a)


def test_rerun_is_incremental(hips_repo, band_map):
    result = run("hips", "--repo", hips_repo, "--band", "r", "--order", ORDER, "--formats", "fits,png,jpeg")
    assert " 0 tiles written" in result.stdout, result.stdout
    # A deleted tile is rebuilt, and only it (and nothing else at its order).
    npix = tiles_of(band_map, ORDER)[0]
    (band_map / f"Norder{ORDER}" / f"Dir{(npix // 10000) * 10000}" / f"Npix{npix}.png").unlink()
    result = run("hips", "--repo", hips_repo, "--band", "r", "--order", ORDER, "--formats", "fits,png,jpeg")
    assert " 1 tiles written" in result.stdout, result.stdout


def test_color_map(color_map):
    p = properties(color_map / "properties")
    assert p["dataproduct_subtype"] == "color"
    assert set(p["hips_tile_format"].split()) == {"png", "jpeg"}
    assert (color_map / "Norder3" / "Allsky.png").is_file()
    pngs = list((color_map / f"Norder{ORDER}").glob("Dir*/Npix*.png"))
    assert pngs and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    jpgs = list((color_map / f"Norder{ORDER}").glob("Dir*/Npix*.jpg"))
    assert jpgs and jpgs[0].read_bytes()[:2] == b"\xff\xd8"


def moc_cells(path_or_bytes):
    h = fits.open(path_or_bytes) if not isinstance(path_or_bytes, bytes) else fits.open(__import__("io").BytesIO(path_or_bytes))
    with h:
        uniq = h[1].data["UNIQ"].astype(np.int64)
        order = h[1].header["MOCORD_S"]
        assert h[1].header["ORDERING"] == "NUNIQ" and h[1].header["COORDSYS"] == "C"
    cells = set()
    for v in uniq:
        o = int(np.log2(v // 4) // 2)
        idx = int(v - 4 * 4 ** o)
        cells.update(range(idx * 4 ** (order - o), (idx + 1) * 4 ** (order - o)))
    return order, cells


def test_moc_contains_every_pixel_centre_and_nothing_far(hips_repo, tmp_path):
    out = tmp_path / "moc.fits"
    run("moc", "--repo", hips_repo, "--type", "deepCoadd", "--band", "r", "--order", 12, "--out", out)
    order, cells = moc_cells(out)
    assert order == 12 and cells
    images = []
    for d in coadds(hips_repo):
        with fits.open(d["file"]) as h:
            hdu = h["IMAGE"]
            w = WCS(hdu.header)
            ny, nx = hdu.data.shape
        images.append((w, nx, ny))
        yy, xx = np.mgrid[0:ny:5, 0:nx:5]
        xs = np.concatenate([xx.ravel(), np.arange(nx), np.arange(nx), np.zeros(ny), np.full(ny, nx - 1)])
        ys = np.concatenate([yy.ravel(), np.zeros(nx), np.full(nx, ny - 1), np.arange(ny), np.arange(ny)])
        ra, dec = w.pixel_to_world_values(xs, ys)
        idx = lonlat_to_healpix(ra * u.deg, dec * u.deg, 2 ** order, order="nested")
        missing = set(int(i) for i in idx) - cells
        assert not missing, f"{len(missing)} cells with pixel centres of {d['dataset_id']} missing"
    # Every cell touches a footprint: its centre lies within a cell radius of some coadd's pixel area.
    cell_deg = np.degrees(np.sqrt(4 * np.pi / (12 * 4 ** order)))
    lon, lat = healpix_to_lonlat(np.array(sorted(cells)), 2 ** order, order="nested")
    near = np.zeros(len(cells), dtype=bool)
    for w, nx, ny in images:
        px, py = w.world_to_pixel_values(lon.deg, lat.deg)
        margin = cell_deg / 0.2 * 3600 * 0.75
        near |= (px > -0.5 - margin) & (px < nx - 0.5 + margin) & (py > -0.5 - margin) & (py < ny - 0.5 + margin)
    assert near.all(), f"{(~near).sum()} MOC cells away from every footprint"


def test_http_hips(hips_server, band_map):
    base = hips_server.url
    listing = requests.get(f"{base}/api/hips/list")
    assert listing.status_code == 200
    records = [properties(r) for r in listing.text.split("\n\n") if r.strip()]
    by_url = {r["hips_service_url"]: r for r in records}
    assert f"{base}/api/hips/deepCoadd-r" in by_url and f"{base}/api/hips/deepCoadd-gri" in by_url
    assert by_url[f"{base}/api/hips/deepCoadd-r"]["hips_service_url_1"] == f"{base}/api/hips/full/deepCoadd-r"
    pub = requests.get(f"{base}/api/hips/deepCoadd-r/properties")
    assert pub.status_code == 200 and pub.headers["Content-Type"].startswith("text/plain")
    assert properties(pub.text)["hips_order"] == str(PUBLIC_ORDER) and "public" in properties(pub.text)["hips_status"]
    full = requests.get(f"{base}/api/hips/full/deepCoadd-r/properties")
    assert properties(full.text)["hips_order"] == str(ORDER) and "private" in properties(full.text)["hips_status"]
    assert properties(full.text)["hips_progenitor_url"] == f"{base}/api/hips/full/deepCoadd-r/HpxFinder"
    npix = tiles_of(band_map, ORDER)[0]
    tile = f"Norder{ORDER}/Dir{(npix // 10000) * 10000}/Npix{npix}.fits"
    assert requests.get(f"{base}/api/hips/deepCoadd-r/{tile}").status_code == 403
    r = requests.get(f"{base}/api/hips/full/deepCoadd-r/{tile}")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/fits"
    assert "max-age" in r.headers["Cache-Control"] and r.headers.get("ETag")
    assert r.content == (band_map / tile).read_bytes()
    low = tiles_of(band_map, PUBLIC_ORDER)[0]
    r = requests.get(f"{base}/api/hips/deepCoadd-r/Norder{PUBLIC_ORDER}/Dir{(low // 10000) * 10000}/Npix{low}.png")
    assert r.status_code == 200 and r.headers["Content-Type"] == "image/png" and "public" in r.headers["Cache-Control"]
    assert requests.get(f"{base}/api/hips/deepCoadd-r/Norder3/Allsky.jpg").headers["Content-Type"] == "image/jpeg"
    # Hostile paths and numbers.
    for bad in ["deepCoadd-r/.pixserve-tiles", "deepCoadd-r/Norder3/Dir0/Npix999999.fits",
                "deepCoadd-r/Norder3/Dir10000/Npix5.fits", "deepCoadd-r/Norder99/Allsky.fits",
                "nosuchmap/properties", "deepCoadd-r/%2e%2e/%2e%2e/registry.sqlite3", "deepCoadd-r/Norder3/Dir0/Npix5.exe",
                "..%2f..%2fregistry.sqlite3/properties"]:
        r = requests.get(f"{base}/api/hips/{bad}")
        assert r.status_code in (400, 404), (bad, r.status_code)
    # The progenitors of a tile are the coadds in HpxFinder.
    finder = band_map / "HpxFinder" / f"Norder{ORDER}" / f"Dir{(npix // 10000) * 10000}" / f"Npix{npix}"
    names = {__import__("json").loads(line)["name"] for line in finder.read_text().splitlines()}
    r = requests.get(f"{base}/api/hips/progenitors", params={"MAP": "deepCoadd-r", "ORDER": ORDER, "NPIX": npix,
                                                             "RESPONSEFORMAT": "csv"})
    assert r.status_code == 200, r.text
    got = {line.split(",")[0] for line in r.text.splitlines()[1:] if line}
    assert got == names
    assert "/api/datalink/links?ID=" in r.text
    for params in [{"MAP": "deepCoadd-r", "ORDER": 30, "NPIX": 0}, {"MAP": "deepCoadd-r", "ORDER": 3, "NPIX": 768},
                   {"MAP": "deepCoadd-r", "ORDER": 3, "NPIX": -1}, {"MAP": "x/../..", "ORDER": 3, "NPIX": 0}]:
        r = requests.get(f"{base}/api/hips/progenitors", params=params)
        assert r.status_code in (400, 404), (params, r.status_code)
        assert "QUERY_STATUS" in r.text and "ERROR" in r.text


def test_http_moc(hips_server, hips_repo, tmp_path):
    base = hips_server.url
    r = requests.get(f"{base}/api/moc/query", params={"DPSUBTYPE": "deepCoadd", "BAND": "r", "ORDER": 12})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/fits"
    out = tmp_path / "cli.fits"
    run("moc", "--repo", hips_repo, "--type", "deepCoadd", "--band", "r", "--order", 12, "--out", out)
    assert moc_cells(r.content) == moc_cells(out)
    a = requests.get(f"{base}/api/moc/query", params={"DPSUBTYPE": "deepCoadd", "BAND": "r", "ORDER": 8,
                                                      "FORMAT": "ascii"})
    assert a.status_code == 200 and a.text.strip().startswith(("7/", "8/", "6/", "5/"))
    j = requests.get(f"{base}/api/moc/query", params={"DPSUBTYPE": "deepCoadd", "BAND": "r", "ORDER": 8,
                                                      "FORMAT": "json"})
    assert j.status_code == 200 and isinstance(j.json(), dict)
    st = requests.get(f"{base}/api/moc/stmoc", params={"ORDER": 8, "TIME_ORDER": 35})
    assert st.status_code == 200
    with fits.open(__import__("io").BytesIO(st.content)) as h:
        assert h[1].header["MOCDIM"] == "TIME.SPACE" and h[1].header["ORDERING"] == "RANGE"
        values = h[1].data.field(0).astype(np.uint64) if h[1].data is not None else []
        assert len(values) > 0 and (int(values[0]) >> 63) == 1
    for params in [{"ORDER": 25}, {"ORDER": -1}, {"FORMAT": "xml"}, {"POS": "CIRCLE 1 2"}]:
        r = requests.get(f"{base}/api/moc/query", params=params)
        assert r.status_code == 400, (params, r.status_code)


@pytest.mark.skipif(not os.path.exists(ALADIN_JAR), reason="Debian package aladin not installed")
def test_hipsgen_lint(band_map, color_map):
    for tree in (band_map, color_map):
        result = subprocess.run(["java", "-Xmx1g", "-cp", ALADIN_JAR, "cds.allsky.HipsGen", f"out={tree}", "LINT"],
                                capture_output=True, text=True, timeout=600)
        text = result.stdout + result.stderr
        assert "IVOA HiPS 1.0 compatible" in text and "not IVOA" not in text, text[-3000:]
