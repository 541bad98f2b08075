"""Foundation: simulate a survey, ingest it, and check the registry with
astropy as the independent oracle."""
import pathlib
import shutil
import subprocess

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from conftest import query, run
from spherical import (convex_polygon_contains, parse_stcs_polygon,
                       polygon_intersects_circle, unit_vectors, angular_distance_deg)


def science_hdu(hdul):
    """The HDU with the science pixels and WCS, as pixserve's ingest picks it."""
    if "IMAGE" in hdul:
        return hdul["IMAGE"]
    for hdu in hdul:
        if "CTYPE1" in hdu.header:
            return hdu
    raise AssertionError("no WCS HDU")


def image_size(hdul, hdu):
    detsize = hdul[0].header.get("DETSIZE")
    if hdul[0].header.get("DSTYPE") == "raw" or hdu.header.get("NAXIS", 0) < 2:
        x, y = detsize.strip("[]").split(",")
        return int(x.split(":")[1]), int(y.split(":")[1])
    return hdu.header["NAXIS1"], hdu.header["NAXIS2"]


@pytest.fixture(scope="module")
def registered(repo_dir):
    """The datasets registered from the survey's files (not the logical
    coadds, which stand for the patches and have no file of their own)."""
    rows = [r for r in query(repo_dir) if r["file"] is not None]
    assert rows, "nothing registered"
    return rows


def test_every_file_is_registered(survey_dir, registered):
    files = sorted(pathlib.Path(survey_dir).rglob("*.fits")) + sorted(pathlib.Path(survey_dir).rglob("*.fits.fz"))
    assert len(registered) == len(files)
    types = {r["type"] for r in registered}
    assert {"raw", "bias", "flat", "calexp", "deepCoadd"} <= types


def test_footprints_match_astropy_and_contain_every_pixel_centre(registered):
    checked = 0
    for row in registered:
        if row["s_region"] is None:
            assert row["type"] in ("bias", "flat")
            continue
        polygon = parse_stcs_polygon(row["s_region"])
        with fits.open(row["file"]) as hdul:
            hdu = science_hdu(hdul)
            w = WCS(hdu.header, fobj=hdul)
            nx, ny = image_size(hdul, hdu)
            # astropy's footprint of the outer pixel edges: each of its corners is
            # one of ours (pixserve may add vertices along distorted edges).
            w_sized = w.deepcopy()
            w_sized.pixel_shape = (nx, ny)
            corners = w_sized.calc_footprint(center=False)
            ours = unit_vectors(polygon[:, 0], polygon[:, 1])
            for ra, dec in corners:
                d = angular_distance_deg(ours, unit_vectors(ra, dec))
                assert d.min() < 1e-9, f"{row['dataset_id']}: corner {ra},{dec} off by {d.min()} deg"
            # Every pixel centre (all of them for small images, the border and a
            # random sample for large ones) lies inside the registered footprint.
            if nx * ny <= 300_000:
                yy, xx = np.mgrid[0:ny, 0:nx]
                xs, ys = xx.ravel(), yy.ravel()
            else:
                rng = np.random.default_rng(1)
                border_x = np.concatenate([np.arange(nx), np.arange(nx), np.zeros(ny), np.full(ny, nx - 1)])
                border_y = np.concatenate([np.zeros(nx), np.full(nx, ny - 1), np.arange(ny), np.arange(ny)])
                xs = np.concatenate([border_x, rng.integers(0, nx, 50_000)])
                ys = np.concatenate([border_y, rng.integers(0, ny, 50_000)])
            sky = w.all_pix2world(np.stack([xs, ys], axis=1).astype(float), 0)
            inside = convex_polygon_contains(polygon, sky[:, 0], sky[:, 1])
            assert inside.all(), f"{row['dataset_id']}: {np.count_nonzero(~inside)} pixel centres outside"
            checked += 1
    assert checked >= 10


def test_cone_search_equals_brute_force(repo_dir, registered):
    science = [r for r in registered if r["s_region"] is not None]
    # Brute force over the files themselves: astropy footprints, exact test.
    truth_polygons = {}
    for row in science:
        with fits.open(row["file"]) as hdul:
            hdu = science_hdu(hdul)
            w = WCS(hdu.header, fobj=hdul)
            w.pixel_shape = image_size(hdul, hdu)
            truth_polygons[row["dataset_id"]] = w.calc_footprint(center=False)
    ras = np.array([r["s_ra"] for r in science])
    decs = np.array([r["s_dec"] for r in science])
    rng = np.random.default_rng(3)
    nonempty = 0
    for trial in range(25):
        ra = float(rng.uniform(ras.min() - 0.1, ras.max() + 0.1))
        dec = float(rng.uniform(decs.min() - 0.1, decs.max() + 0.1))
        radius = float(rng.choice([0.001, 0.01, 0.05, 0.2]))
        got = sorted(r["dataset_id"] for r in query(repo_dir, "--pos", f"{ra},{dec},{radius}") if r["file"] is not None)
        expected = sorted(ds for ds, poly in truth_polygons.items()
                          if polygon_intersects_circle(poly, ra, dec, radius))
        assert got == expected, f"cone {ra},{dec},{radius}"
        nonempty += bool(expected)
    assert nonempty >= 5, "the random cones should hit the survey"


def test_filters_by_band_type_and_visit(repo_dir, registered):
    calexps = [r for r in registered if r["type"] == "calexp"]
    visit = calexps[0]["visit"]
    band = calexps[0]["band"]
    rows = query(repo_dir, "--type", "calexp", "--visit", str(visit))
    assert sorted(r["dataset_id"] for r in rows) == sorted(r["dataset_id"] for r in calexps if r["visit"] == visit)
    rows = query(repo_dir, "--type", "calexp", "--band", band)
    assert rows and all(r["band"] == band for r in rows)


def test_reingest_is_a_no_op(repo_dir, survey_dir, registered):
    result = run("ingest", "--repo", repo_dir, survey_dir)
    assert " 0 registered" in result.stdout, result.stdout
    assert len([r for r in query(repo_dir) if r["file"] is not None]) == len(registered)


def test_corrupt_file_leaves_repository_unchanged(tmp_path, survey_dir):
    src = tmp_path / "in"
    calexps = sorted(pathlib.Path(survey_dir, "calexp").rglob("*.fits"))[:3]
    src.mkdir()
    for f in calexps:
        shutil.copy(f, src / f.name)
    (src / "zz_corrupt.fits").write_bytes(calexps[0].read_bytes()[:5000])
    repo = tmp_path / "repo"
    result = run("ingest", "--repo", repo, src, check=False)
    assert result.returncode != 0
    assert "zz_corrupt.fits" in result.stderr
    assert query(repo) == []
    assert not (repo / "data").exists()
    result = run("ingest", "--repo", repo, "--skip-bad", src)
    assert " 3 registered" in result.stdout and "1 skipped" in result.stdout


def test_bad_command_line_is_refused(repo_dir):
    for args in (["query", "--repo", repo_dir, "--pos", "10,95,1"],
                 ["query", "--repo", repo_dir, "--pos", "abc"],
                 ["query", "--repo", "/nonexistent/repo"],
                 ["ingest", "--repo", repo_dir, "--policy", "everyone", "x"]):
        result = run(*args, check=False)
        assert result.returncode != 0, args
        assert result.stderr.strip(), args
