"""Re-creation at the demo survey's size, against what the simulator keeps.

The demo survey (12 visits x 9 detectors of 512 x 512 pixels) is simulated
with its calexp files and their tile-compressed copies (calexp_comp); the
repository is given only the raws, calibrations and calexp_comp files, so
ingest registers every calexp as virtual. Every one of the 108 re-created
calexps is byte for byte the file the simulator kept (DATASUM equal), and
SODA cutouts of the virtual calexps agree with the same cutouts of the
calexp_comp files within one quantisation step of their tiles.
"""
import io
import pathlib
import random

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.wcs import WCS
from pyvo.dal import TAPService

from conftest import run, start_server, stop_server


@pytest.fixture(scope="module")
def survey(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo-survey")
    run("simulate", "--out", out, "--no-coadds")  # the demo's defaults otherwise
    return out


@pytest.fixture(scope="module")
def server(survey, tmp_path_factory):
    repo = tmp_path_factory.mktemp("demo-repo") / "repo"
    out = run("ingest", "--repo", repo, survey / "raw", survey / "calib", survey / "calexp_comp").stdout
    assert "and 108 virtual calexps" in out, out
    visits = sorted({int(p.name[1:]) for p in (survey / "raw").iterdir()})
    made = run("materialize", "--repo", repo, "--visit", ",".join(map(str, visits))).stdout
    assert "108 virtual datasets, 108 re-created" in made, made
    srv = start_server(repo)
    yield srv
    assert stop_server(srv) == 0, srv.log()[-3000:]


def kept_files(survey, pattern):
    """{(visit, detector): path} of the files the simulator kept."""
    out = {}
    for path in sorted(pathlib.Path(survey).rglob(pattern)):
        header = fits.getheader(path)
        out[(header["VISIT"], header["DETECTOR"])] = path
    return out


def datasets(server, dataset_type):
    tap = TAPService(server.url + "/api/tap")
    return tap.search(f"SELECT dataset_id, visit, detector, storage FROM survey.datasets "
                      f"WHERE dataset_type = '{dataset_type}' ORDER BY dataset_id").to_table()


def test_every_re_created_calexp_is_the_file_the_simulator_keeps(server, survey):
    kept = kept_files(survey, "calexp_*_S*.fits")
    rows = datasets(server, "calexp")
    assert len(rows) == 108 and len(kept) == 108
    assert {str(s) for s in rows["storage"]} == {"virtual"}
    for row in rows:
        r = requests.get(f"{server.url}/api/files/{row['dataset_id']}", timeout=120)
        assert r.status_code == 200
        expected = kept[(int(row["visit"]), int(row["detector"]))].read_bytes()
        with fits.open(io.BytesIO(r.content)) as got, fits.open(io.BytesIO(expected)) as want:
            assert [h.header.get("DATASUM") for h in got] == [h.header.get("DATASUM") for h in want]
        assert r.content == expected, row["dataset_id"]


def quantisation_steps(path, extname):
    """Per image row, the quantisation step (ZSCALE) of the tile holding it."""
    with fits.open(path, disable_image_compression=True) as hdul:
        hdu = hdul[extname]
        assert hdu.header["ZTILE1"] == hdu.header["ZNAXIS1"] and hdu.header["ZTILE2"] == 1
        return np.array(hdu.data["ZSCALE"], dtype=float)


def test_cutouts_agree_with_calexp_comp_within_one_quantisation_step(server, survey):
    comp = kept_files(survey, "calexp_comp_*.fits.fz")
    calexps = {(int(r["visit"]), int(r["detector"])): str(r["dataset_id"]) for r in datasets(server, "calexp")}
    comps = {(int(r["visit"]), int(r["detector"])): str(r["dataset_id"]) for r in datasets(server, "calexp_comp")}
    rng = random.Random(7)
    keys = sorted(calexps)
    compared = 0
    for k in range(40):
        key = keys[rng.randrange(len(keys))]
        with fits.open(comp[key]) as hdul:
            wcs = WCS(hdul["IMAGE"].header)
        x, y = rng.uniform(0, 511), rng.uniform(0, 511)
        ra, dec = wcs.all_pix2world([[x, y]], 0)[0]
        circle = f"{ra} {dec} {rng.uniform(2, 20) / 3600}"
        cuts = []
        for dataset_id in (calexps[key], comps[key]):
            r = requests.get(server.url + "/api/soda/sync", params={"ID": dataset_id, "CIRCLE": circle}, timeout=60)
            assert r.status_code == 200, r.text[:300]
            cuts.append(fits.open(io.BytesIO(r.content)))
        virtual, compressed = cuts
        y0 = int(round(1 - virtual["IMAGE"].header["LTV2"])) - 1  # source row of the cutout's first row
        assert virtual["IMAGE"].header["PSBOX"] == compressed["IMAGE"].header["PSBOX"]
        for extname in ("IMAGE", "VARIANCE"):
            a, b = virtual[extname].data.astype(float), compressed[extname].data.astype(float)
            steps = quantisation_steps(comp[key], extname)[y0:y0 + a.shape[0]]
            finite = np.isfinite(a)
            assert np.array_equal(finite, np.isfinite(b))
            diff = np.where(finite, np.abs(a - b), 0.0)
            assert np.all(diff <= steps[:, None] * (1 + 1e-6)), (extname, float(diff.max()), float(steps.min()))
        assert np.array_equal(virtual["MASK"].data, compressed["MASK"].data)
        compared += 1
        for c in cuts:
            c.close()
    assert compared == 40
