"""A data centre's own images, ingested with a mapping file.

astropy writes a small survey the way other software does (not pixserve
simulate): 24 plain-TAN images in three bands with FILTER, DATE-OBS,
EXPTIME, OBJECT; half single-HDU, half with IMAGE/MASK/VARIANCE; one with
SIP distortion, one with TPV, one with PC + CDELT in FK5. They are ingested
with docs/mappings/plain-tan.yaml and checked through pyvo against
astropy's own reading of each header: SIA BAND and TIME searches return
exactly the images a brute-force check of the headers selects; ObsCore
em_min, t_min, t_exptime and s_region agree (footprint corners within 0.1
pixel); a SODA cutout equals astropy's Cutout2D. Bad mappings and files
that contradict them fail with the file, keyword and mapping line named,
and register nothing.
"""
import io
import json
import pathlib
import shutil

import numpy as np
import pytest
import pyvo
import requests
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.time import Time
from astropy.wcs import WCS
import astropy.units as u
from pyvo.dal import sia2

from conftest import ROOT, run, start_server, stop_server

MAPPING = ROOT / "docs" / "mappings" / "plain-tan.yaml"
BANDS = {"g_SDSS": (4.0e-7, 5.52e-7), "r_SDSS": (5.52e-7, 6.91e-7), "i_SDSS": (6.91e-7, 8.18e-7)}
SIZE = 96
SCALE = 0.3 / 3600


def band_limits(filter_name):
    """pixserve's band table, written independently: g, r, i edges in metres."""
    return BANDS[filter_name]


def make_header(i, kind):
    ra, dec = 150.0 + 0.02 * (i % 6), 2.0 + 0.02 * (i // 6)
    w = WCS(naxis=2)
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [SIZE / 2 + 0.5, SIZE / 2 + 0.5]
    if kind == "pc":
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.cdelt = [-SCALE, SCALE]
        a = np.radians(20)
        w.wcs.pc = [[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]]
        w.wcs.radesys = "FK5"
        w.wcs.equinox = 2000.0
        header = w.to_header()
    elif kind == "sip":
        w.wcs.ctype = ["RA---TAN-SIP", "DEC--TAN-SIP"]
        w.wcs.cd = [[-SCALE, 0], [0, SCALE]]
        header = w.to_header()
        header["CTYPE1"], header["CTYPE2"] = "RA---TAN-SIP", "DEC--TAN-SIP"
        header["A_ORDER"], header["B_ORDER"] = 2, 2
        header["A_2_0"], header["A_0_2"], header["A_1_1"] = 2e-4, -1e-4, 5e-5
        header["B_2_0"], header["B_0_2"], header["B_1_1"] = -1e-4, 2e-4, 3e-5
    elif kind == "tpv":
        w.wcs.ctype = ["RA---TPV", "DEC--TPV"]
        w.wcs.cd = [[-SCALE, 0], [0, SCALE]]
        w.wcs.set_pv([(1, 1, 1.0), (2, 1, 1.0), (1, 4, 3e-3), (2, 4, -2e-3)])
        header = w.to_header()
    else:
        w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        w.wcs.cd = [[-SCALE, 0], [0, SCALE]]
        header = w.to_header()
    return header


def write_survey(root):
    """Returns {relative path: dict of what the headers say}."""
    truth = {}
    filters = list(BANDS)
    for i in range(24):
        kind = {5: "sip", 11: "tpv", 17: "pc"}.get(i, "plain")
        header = make_header(i, kind)
        header["FILTER"] = filters[i % 3]
        start = Time("2025-03-01T00:00:00", scale="utc") + (i * 0.25) * u.day
        header["DATE-OBS"] = start.isot
        header["EXPTIME"] = 30.0 + i
        header["OBJECT"] = f"field{i // 4}"
        header["INSTRUME"] = "DCcam"
        header["TELESCOP"] = "Data Centre 1m"
        header["AIRMASS"] = round(1.0 + 0.01 * i, 3)
        header["SEEING"] = round(0.6 + 0.02 * i, 3)
        data = (np.random.default_rng(i).normal(size=(SIZE, SIZE)) + i).astype(np.float32)
        single = i % 2 == 0
        rel = f"{'single' if single else 'processed'}/night{i // 8}/img{i:02d}.fits"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if single:
            fits.PrimaryHDU(data, header=header).writeto(path)
        else:
            hdus = [fits.PrimaryHDU()]
            for name, plane in (("IMAGE", data), ("MASK", np.zeros((SIZE, SIZE), np.int32)),
                                ("VARIANCE", np.ones((SIZE, SIZE), np.float32))):
                h = header.copy()
                h["EXTNAME"] = name
                hdus.append(fits.ImageHDU(plane, header=h))
            fits.HDUList(hdus).writeto(path)
        truth[rel] = {"filter": header["FILTER"], "start": start, "exptime": header["EXPTIME"],
                      "object": header["OBJECT"], "single": single, "header": header, "kind": kind}
    return truth


@pytest.fixture(scope="module")
def mapped(tmp_path_factory):
    survey = tmp_path_factory.mktemp("dc-survey")
    truth = write_survey(survey)
    repo = tmp_path_factory.mktemp("dc-repo") / "dc"
    dry = run("ingest", "--repo", repo, "--mapping", MAPPING, "--dry-run", "--format", "json", survey)
    planned = json.loads(dry.stdout)
    assert len(planned) == len(truth)
    assert not (repo / "data").exists() or not any((repo / "data").rglob("*.fits"))
    out = run("ingest", "--repo", repo, "--mapping", MAPPING, survey)
    assert f"{len(truth)} registered" in out.stdout, out.stdout
    # Idempotent.
    again = run("ingest", "--repo", repo, "--mapping", MAPPING, survey)
    assert f"0 registered, {len(truth)} unchanged" in again.stdout, again.stdout
    token = json.loads(run("token", "create", "--repo", repo, "--user", "dc", "--groups", "data-rights",
                           "--format", "json").stdout)["token"]
    config = tmp_path_factory.mktemp("dc-conf") / "pixserve.yaml"
    config.write_text("auth:\n  data_rights_groups: [data-rights]\n")
    srv = start_server(repo, "--config", config)
    yield srv, repo, survey, truth, {"Authorization": "Bearer " + token}
    assert stop_server(srv) == 0


def obs_id_of(rel, truth):
    stem = pathlib.PurePosixPath(rel).stem
    return f"DR1.calexp.{truth[rel]['object']}.{stem}"


def sia(srv, headers, **kwargs):
    session = requests.Session()
    session.headers.update(headers)
    service = sia2.SIAService(srv.url + "/api/sia", session=session)
    # pyvo 1.2.1's search does not use the service's session by itself.
    return service.search(maxrec=1000, session=session, **kwargs).to_table()


def test_band_searches_match_the_headers(mapped):
    srv, repo, survey, truth, headers = mapped
    for lo, hi in ((4.5e-7, 4.6e-7), (6.0e-7, 6.1e-7), (5.0e-7, 7.0e-7), (8.5e-7, 9e-7)):
        got = {str(x) for x in sia(srv, headers, band=(lo * u.m, hi * u.m))["obs_id"]}
        want = {obs_id_of(rel, truth) for rel, t in truth.items()
                if band_limits(t["filter"])[0] <= hi and band_limits(t["filter"])[1] >= lo}
        assert got == want, (lo, hi)


def test_time_searches_match_the_headers(mapped):
    srv, repo, survey, truth, headers = mapped
    t0 = Time("2025-03-02T00:10:00", scale="utc")  # away from any start or end: no boundary case
    t1 = Time("2025-03-03T12:10:00", scale="utc")
    got = {str(x) for x in sia(srv, headers, time=(t0, t1))["obs_id"]}
    want = set()
    for rel, t in truth.items():
        start = t["start"]
        end = start + t["exptime"] * u.s
        if start.tai.mjd <= t1.tai.mjd and end.tai.mjd >= t0.tai.mjd:
            want.add(obs_id_of(rel, truth))
    assert got == want and want


def test_obscore_columns_agree_with_astropy(mapped):
    srv, repo, survey, truth, headers = mapped
    table = sia(srv, headers, pos=(150.05 * u.deg, 2.05 * u.deg, 2 * u.deg))
    rows = {str(r["obs_id"]): r for r in table}
    assert len(rows) == len(truth)
    for rel, t in truth.items():
        r = rows[obs_id_of(rel, truth)]
        lo, hi = band_limits(t["filter"])
        assert abs(float(r["em_min"]) - lo) < 1e-12 and abs(float(r["em_max"]) - hi) < 1e-12, rel
        assert abs(float(r["t_min"]) - t["start"].tai.mjd) < 1e-8, rel  # times are stored in TAI
        assert abs(float(r["t_exptime"]) - t["exptime"]) < 1e-9, rel
        assert str(r["target_name"]) == t["object"]
        assert str(r["instrument_name"]) == "DCcam" and str(r["facility_name"]) == "Data Centre 1m"
        assert int(r["calib_level"]) == (1 if t["single"] else 2), rel  # the mapping's calib_level, else the type's
        if t["single"]:  # the rule of single-HDU images maps AIRMASS and SEEING to their columns
            assert abs(float(r["airmass"]) - t["header"]["AIRMASS"]) < 1e-12, rel
            assert abs(float(r["seeing"]) - t["header"]["SEEING"]) < 1e-12, rel
        else:
            assert np.ma.is_masked(r["airmass"]), rel
        # Footprint: each corner of astropy's footprint has a vertex of
        # s_region within 0.1 pixel.
        with fits.open(survey / rel) as hdul:
            hdu = hdul[0] if t["single"] else hdul["IMAGE"]
            w = WCS(hdu.header)
        corners = w.calc_footprint(center=False)  # pixel edges
        region = np.array(r["s_region"], dtype=float).reshape(-1, 2)
        for ra, dec in corners:
            sep = SkyCoord(region[:, 0] * u.deg, region[:, 1] * u.deg).separation(SkyCoord(ra * u.deg, dec * u.deg))
            assert sep.min().deg < 0.1 * SCALE, (rel, t["kind"], ra, dec, sep.min().arcsec)


def test_calib_level_from_the_mapping_in_sia_and_tap(mapped):
    srv, repo, survey, truth, headers = mapped
    singles = {obs_id_of(rel, truth) for rel, t in truth.items() if t["single"]}
    assert {str(x) for x in sia(srv, headers, calib_level=1)["obs_id"]} == singles
    assert {str(x) for x in sia(srv, headers, calib_level=2)["obs_id"]} == {obs_id_of(rel, truth) for rel in truth} - singles
    session = requests.Session()
    session.headers.update(headers)
    tap = pyvo.dal.TAPService(srv.url + "/api/tap", session=session)
    rows = tap.search("SELECT obs_id, calib_level FROM ivoa.obscore").to_table()
    assert {str(r["obs_id"]): int(r["calib_level"]) for r in rows} == {
        obs_id_of(rel, truth): 1 if t["single"] else 2 for rel, t in truth.items()}


def test_rights_from_the_mapping(mapped):
    srv, repo, survey, truth, headers = mapped
    anonymous = {str(x) for x in sia(srv, {}, pos=(150.05 * u.deg, 2.05 * u.deg, 2 * u.deg))["obs_id"]}
    assert anonymous == {obs_id_of(rel, truth) for rel, t in truth.items() if t["single"]}


@pytest.mark.parametrize("which", ["plain-single", "processed", "sip", "tpv", "pc"])
def test_soda_cutout_equals_cutout2d(mapped, which):
    srv, repo, survey, truth, headers = mapped
    pick = {"plain-single": lambda t: t["single"] and t["kind"] == "plain",
            "processed": lambda t: not t["single"] and t["kind"] == "plain",
            "sip": lambda t: t["kind"] == "sip", "tpv": lambda t: t["kind"] == "tpv", "pc": lambda t: t["kind"] == "pc"}
    rel = next(r for r, t in truth.items() if pick[which](t))
    t = truth[rel]
    with fits.open(survey / rel) as hdul:
        hdu = hdul[0] if t["single"] else hdul["IMAGE"]
        data, w = hdu.data.copy(), WCS(hdu.header)
    position, size = (40, 30), (21, 25)  # (x, y), (ny, nx)
    ref = Cutout2D(data, position, size, wcs=w, mode="strict")
    (y0, y1), (x0, x1) = ref.bbox_original
    r = requests.get(srv.url + "/api/soda/sync",
                     params={"ID": obs_id_of(rel, truth), "PIXEL": f"[{x0 + 1}:{x1 + 1},{y0 + 1}:{y1 + 1}]"},
                     headers=headers, timeout=60)
    assert r.status_code == 200, r.text[:500]
    with fits.open(io.BytesIO(r.content)) as cut:
        images = [h for h in cut if h.data is not None and h.header.get("EXTNAME", "IMAGE") in ("IMAGE", "")]
        got = images[0]
        np.testing.assert_array_equal(got.data, ref.data)
        got_wcs = WCS(got.header)
        for x, y in ((0, 0), (10, 12), (24, 20)):
            a = got_wcs.pixel_to_world(x, y)
            b = ref.wcs.pixel_to_world(x, y)
            assert a.separation(b).arcsec < 1e-4, (which, x, y)  # 0.1 mas: the header keeps 15 digits
        planes = {h.header.get("EXTNAME") for h in cut[1:]}
        assert planes == ({None} if t["single"] else {"IMAGE", "MASK", "VARIANCE"}) or t["single"]


# ------------------------------------------------------------------ bad input


def bad_ingest(repo, mapping_text, survey, tmp_path):
    mapping = tmp_path / "bad.yaml"
    mapping.write_text(mapping_text)
    result = run("ingest", "--repo", repo, "--mapping", mapping, survey, check=False)
    assert result.returncode != 0, result.stdout
    return result.stdout + result.stderr, mapping


BASE = """mapping: 1
rules:
  - name: all
    match: {path: "**/*.fits"}
    dataset_type: calexp
    band: {keyword: FILTER, values: {g_SDSS: g, r_SDSS: r, i_SDSS: i}}
    time: {start: DATE-OBS, exptime: EXPTIME}
"""


@pytest.fixture(scope="module")
def small_survey(tmp_path_factory):
    root = tmp_path_factory.mktemp("dc-small")
    truth = write_survey(root)
    # Keep a few single-HDU files.
    for rel, t in truth.items():
        if not t["single"] or int(pathlib.PurePosixPath(rel).stem[3:]) > 6:
            (root / rel).unlink()
    return root


@pytest.mark.parametrize("case, text, needles", [
    ("unknown key", BASE + "    colour: red\n", ["bad.yaml:8", "unknown key 'colour'"]),
    ("wrong type", BASE.replace("dataset_type: calexp", "dataset_type: [calexp]"), ["bad.yaml:5", "dataset_type"]),
    ("unknown dataset type", BASE.replace("calexp", "picture"), ["bad.yaml:5", "'picture'"]),
    ("glob matches nothing", BASE.replace("**/*.fits", "nowhere/*.fits"), ["bad.yaml:3", "matches none"]),
    ("band table gap", BASE.replace(", i_SDSS: i", ""), ["FILTER='i_SDSS'", "bad.yaml:6"]),
    ("missing keyword", BASE.replace("EXPTIME", "EXPOSURE"), ["keyword EXPOSURE is missing", "bad.yaml:7"]),
    ("two rules", BASE + BASE.split("rules:\n")[1].replace("name: all", "name: again"),
     ["two rules match", "'all'", "'again'"]),
    ("not yaml", "mapping: 1\nrules: [\n", ["bad.yaml", "not valid YAML"]),
    ("no version", BASE.replace("mapping: 1\n", ""), ["mapping: 1"]),
])
def test_bad_mappings_register_nothing(small_survey, tmp_path, case, text, needles):
    repo = tmp_path / "repo"
    message, _ = bad_ingest(repo, text, small_survey, tmp_path)
    for needle in needles:
        assert needle in message, (case, needle, message)
    if (repo / "registry.sqlite3").exists():
        assert json.loads(run("query", "--repo", repo, "--format", "json").stdout) == []


def test_a_file_that_contradicts_the_mapping_fails_atomically_or_is_skipped(small_survey, tmp_path):
    survey = tmp_path / "survey"
    shutil.copytree(small_survey, survey)
    victim = sorted(survey.rglob("*.fits"))[0]
    with fits.open(victim, mode="update") as h:
        h[0].header["DATE-OBS"] = "yesterday"
    repo = tmp_path / "repo"
    mapping = tmp_path / "m.yaml"
    mapping.write_text(BASE)
    result = run("ingest", "--repo", repo, "--mapping", mapping, survey, check=False)
    assert result.returncode != 0
    assert victim.name in result.stderr + result.stdout and "DATE-OBS='yesterday'" in result.stderr + result.stdout
    assert json.loads(run("query", "--repo", repo, "--format", "json").stdout) == []
    ok = run("ingest", "--repo", repo, "--mapping", mapping, "--skip-bad", survey)
    files = len(list(survey.rglob("*.fits")))
    assert f"{files - 1} registered" in ok.stdout and "1 skipped" in ok.stdout, ok.stdout


def test_datalink_of_a_mapped_image(mapped):
    srv, repo, survey, truth, headers = mapped
    rel = next(r for r, t in truth.items() if t["single"])
    obs_id = obs_id_of(rel, truth)
    r = requests.get(srv.url + "/api/datalink/links", params={"ID": obs_id}, headers=headers, timeout=60)
    assert r.status_code == 200
    from astropy.io.votable import parse
    links = parse(io.BytesIO(r.content)).get_first_table().to_table()
    semantics = {str(s) for s in links["semantics"]}
    assert {"#this", "#preview", "#cutout"} <= semantics, semantics
    this = next(row for row in links if str(row["semantics"]) == "#this")
    data = requests.get(str(this["access_url"]), headers=headers, timeout=60)
    assert data.status_code == 200 and data.content == (survey / rel).read_bytes()
    preview = next(row for row in links if str(row["semantics"]) == "#preview")
    png = requests.get(str(preview["access_url"]), headers=headers, timeout=60)
    assert png.status_code == 200 and png.content[:8] == b"\x89PNG\r\n\x1a\n"


def test_mapped_coadds_make_hips_and_moc(survey_dir, tmp_path):
    """The simulator's coadds through docs/mappings/pixserve-sim.yaml: the
    same HiPS and MOC as the built-in convention gives."""
    mapping = ROOT / "docs" / "mappings" / "pixserve-sim.yaml"
    repo = tmp_path / "simmapped"
    run("ingest", "--repo", repo, "--mapping", mapping, "--transfer", "hardlink",
        survey_dir / "deepCoadd", survey_dir / "calexp", survey_dir / "calib")
    builtin = tmp_path / "builtin"
    run("ingest", "--repo", builtin, "--transfer", "hardlink", survey_dir)
    for r in (repo, builtin):
        run("hips", "--repo", r, "--band", "r", "--order", 8, "--audience", "public")
        run("moc", "--repo", r, "--type", "deepCoadd", "--order", 10, "--format", "json", "--out", r / "moc.json")
    assert json.loads((repo / "moc.json").read_text()) == json.loads((builtin / "moc.json").read_text())
    mapped_tiles = sorted(p.relative_to(repo / "hips") for p in (repo / "hips").rglob("Npix*.fits"))
    builtin_tiles = sorted(p.relative_to(builtin / "hips") for p in (builtin / "hips").rglob("Npix*.fits"))
    assert mapped_tiles and mapped_tiles == builtin_tiles
    for rel in mapped_tiles:
        with fits.open(repo / "hips" / rel) as a, fits.open(builtin / "hips" / rel) as b:
            np.testing.assert_array_equal(a[0].data, b[0].data)
