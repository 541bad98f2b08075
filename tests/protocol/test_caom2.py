"""The CAOM2 tables in TAP (caom2.Observation, Plane, Artifact, Part,
Chunk), through a real `pixserve serve` and pyvo: every dataset's plane has
the footprint, wavelength and time bounds of its ObsCore row and joins it by
publisher ID; every stored file's artifact has its SHA-256 and size, its
parts its HDUs and its chunks their WCS; provenance names the inputs;
TAP_SCHEMA describes the tables and their keys; embargoed planes and their
files are hidden from anonymous callers. See docs/caom2.md."""
import hashlib
import json
import math

import numpy as np
import pytest
import requests
from astropy.io import fits
from pyvo.dal import TAPService

from conftest import run, start_server, stop_server


def value(v):
    """A cell as Python: None for NULL (masked)."""
    if v is None or v is np.ma.masked or getattr(v, "mask", False) is True:
        return None
    return v


def text(v):
    v = value(v)
    return "" if v is None else str(v)


@pytest.fixture(scope="module")
def tap(server):
    return TAPService(server.url + "/api/tap")


@pytest.fixture(scope="module")
def planes(tap):
    rows = tap.search(
        "SELECT p.planeURI, p.publisherID, p.obsID, p.planeID, p.productID, p.dataset_id, p.position_bounds, "
        "p.energy_bounds_lower, p.energy_bounds_upper, p.time_bounds_lower, p.time_bounds_upper, p.time_exposure, "
        "p.calibrationLevel, p.provenance_inputs, o.obs_id, o.s_region, o.em_min, o.em_max, o.t_min, o.t_max, "
        "o.t_exptime, o.calib_level FROM caom2.Plane AS p JOIN ivoa.obscore AS o ON o.obs_publisher_did = p.publisherID",
        maxrec=100000).to_table()
    return rows


def stcs_vertices(stcs):
    tokens = stcs.split()
    assert tokens[0] == "POLYGON"
    numbers = [float(t) for t in tokens[1:] if t.upper() != "ICRS"]
    return np.array(numbers).reshape(-1, 2)


def test_every_dataset_has_a_plane_with_its_obscore_bounds(tap, planes):
    count = int(tap.search("SELECT COUNT(*) AS n FROM ivoa.obscore").to_table()["n"][0])
    assert len(planes) == count > 0
    assert len({str(r["obs_id"]) for r in planes}) == count
    with_footprint = 0
    for r in planes:
        assert str(r["dataset_id"]) == str(r["obs_id"])
        region = text(r["s_region"]) or None  # a NULL string reads as ''
        bounds = value(r["position_bounds"])
        if bounds is not None and np.ma.getmaskarray(bounds).all():
            bounds = None
        if region is None:
            assert bounds is None, r["obs_id"]
        else:
            with_footprint += 1
            expected = stcs_vertices(str(region))
            got = np.asarray(bounds, dtype=float).reshape(-1, 2)
            assert got.shape == expected.shape, r["obs_id"]
            assert np.allclose(got, expected, rtol=0, atol=1e-9), r["obs_id"]
        for caom, obscore in [("energy_bounds_lower", "em_min"), ("energy_bounds_upper", "em_max"),
                              ("time_bounds_lower", "t_min"), ("time_bounds_upper", "t_max"),
                              ("time_exposure", "t_exptime"), ("calibrationLevel", "calib_level")]:
            assert value(r[caom]) == value(r[obscore]), (r["obs_id"], caom)
        assert str(r["planeURI"]) == f"{r['obsID']}/{r['productID']}"
    assert with_footprint > 0


def test_observations_group_an_exposures_planes(tap, planes):
    observations = {str(r["obsID"]): r for r in tap.search(
        "SELECT obsID, observationURI, collection, observationID, intent, type, algorithm_name, sequenceNumber, "
        "members FROM caom2.Observation", maxrec=100000).to_table()}
    assert {str(r["obsID"]) for r in planes} == set(observations)
    products = {}
    for r in planes:
        products.setdefault(str(r["obsID"]), set()).add(str(r["productID"]))
    for key, o in observations.items():
        assert str(o["observationURI"]) == key == f"caom:{o['collection']}/{o['observationID']}"
    # A visit's detector: its raw and calexp share one observation.
    exposures = [k for k, p in products.items() if {"raw", "calexp"} <= p]
    assert exposures
    for k in exposures:
        assert text(observations[k]["intent"]) == "science"
        assert text(observations[k]["algorithm_name"]) == "exposure"
        assert value(observations[k]["sequenceNumber"]) is not None
    # The elevation is the airmass's (1 / sin of the elevation), as ObsCore gives it.
    rows = tap.search("SELECT o.environment_elevation, v.airmass FROM caom2.Observation AS o "
                      "JOIN survey.visits AS v ON v.visit = o.sequenceNumber", maxrec=100000).to_table()
    assert len(rows) >= len(exposures)
    for row in rows:
        assert float(row["environment_elevation"]) == pytest.approx(
            math.degrees(math.asin(1.0 / float(row["airmass"]))), abs=1e-9)
    calibrations = [o for o in observations.values() if text(o["type"]) in ("bias", "flat")]
    assert calibrations and all(text(o["intent"]) == "calibration" for o in calibrations)
    # The coadd patches (not the logical coadds of a whole band, made on request).
    coadds = [o for o in observations.values() if text(o["algorithm_name"]) in ("deepCoadd", "goodSeeingCoadd")
              and ".t" in str(o["observationID"])]
    assert coadds
    for o in coadds:
        members = text(o["members"]).split()
        assert members and all(m in observations for m in members), o["obsID"]


def test_artifacts_carry_the_files_checksum_and_size(tap, repo_dir):
    rows = tap.search(
        "SELECT a.uri, a.contentChecksum, a.contentLength, a.contentType, a.productType, a.releaseType, "
        "d.storage, d.content_type FROM caom2.Artifact AS a JOIN caom2.Plane AS p ON p.planeID = a.planeID "
        "JOIN survey.datasets AS d ON d.dataset_id = p.dataset_id", maxrec=100000).to_table()
    stored = 0
    for r in rows:
        assert str(r["uri"]).startswith("pixserve:virtual/" if text(r["storage"]) == "virtual" else "pixserve:data/")
        assert (text(r["productType"]), text(r["releaseType"])) == ("this", "data")
        assert text(r["contentType"]) == text(r["content_type"])
        if text(r["storage"]) == "virtual":
            assert text(r["contentChecksum"]) == "" and value(r["contentLength"]) is None
            continue
        stored += 1
        path = repo_dir / str(r["uri"])[len("pixserve:"):]
        data = path.read_bytes()
        assert text(r["contentChecksum"]) == "sha256:" + hashlib.sha256(data).hexdigest(), path
        assert int(r["contentLength"]) == len(data)
    assert stored > 0


def test_parts_are_the_files_hdus_and_chunks_their_wcs(tap, repo_dir):
    artifacts = {int(r["artifactID"]): str(r["uri"])[len("pixserve:"):] for r in tap.search(
        "SELECT a.artifactID, a.uri FROM caom2.Artifact AS a WHERE a.contentChecksum IS NOT NULL",
        maxrec=100000).to_table()}
    parts = {}
    for r in tap.search("SELECT artifactID, partID, name, productType FROM caom2.Part", maxrec=100000).to_table():
        parts.setdefault(int(r["artifactID"]), []).append((int(r["partID"]), str(r["name"]), str(r["productType"])))
    chunks = {int(r["partID"]): r for r in tap.search(
        "SELECT * FROM caom2.Chunk", maxrec=100000).to_table()}
    assert set(parts) == set(artifacts)
    checked_wcs = 0
    for artifact, path in artifacts.items():
        with fits.open(repo_dir / path) as hdus:
            got = sorted(parts[artifact])
            assert len(got) == len(hdus), path
            for (part_id, name, product_type), (number, hdu) in zip(got, enumerate(hdus)):
                assert part_id == artifact * 1000 + number
                # A tile-compressed image's name is its stored table's EXTNAME.
                stored = getattr(hdu, "_header", None) if isinstance(hdu, fits.CompImageHDU) else None
                extname = (stored if stored is not None else hdu.header).get("EXTNAME")
                assert name == (str(extname).strip() if extname else str(number)), (path, number)
                assert product_type == ("auxiliary" if name in ("MASK", "VARIANCE") or not hdu.is_image else "this")
                has_array = hdu.is_image and hdu.header.get("NAXIS", 0) > 0
                assert (part_id in chunks) == has_array, (path, name)
                if not has_array:
                    continue
                c = chunks[part_id]
                header = hdu.header
                assert int(c["naxis"]) == header["NAXIS"]
                assert int(c["position_axis_function_dimension_naxis1"]) == header["NAXIS1"]
                assert int(c["position_axis_function_dimension_naxis2"]) == header["NAXIS2"]
                if "CTYPE1" not in header:
                    assert value(c["positionAxis1"]) is None and text(c["position_axis_axis1_ctype"]) == ""
                    continue
                checked_wcs += 1
                assert (int(c["positionAxis1"]), int(c["positionAxis2"])) == (1, 2)
                assert text(c["position_axis_axis1_ctype"]) == header["CTYPE1"].strip()
                assert text(c["position_axis_axis2_ctype"]) == header["CTYPE2"].strip()
                assert text(c["position_axis_axis1_cunit"]) == str(header.get("CUNIT1", "")).strip()
                # The frame as FITS WCS defines it: RADESYS, else ICRS without an EQUINOX.
                frame = str(header.get("RADESYS", "")).strip() or ("ICRS" if "EQUINOX" not in header else "FK5")
                assert text(c["position_coordsys"]) == frame
                if frame == "ICRS":
                    assert value(c["position_equinox"]) is None
                for column, key in [("refCoord_coord1_pix", "CRPIX1"), ("refCoord_coord2_pix", "CRPIX2"),
                                    ("refCoord_coord1_val", "CRVAL1"), ("refCoord_coord2_val", "CRVAL2"),
                                    ("cd11", "CD1_1"), ("cd12", "CD1_2"), ("cd21", "CD2_1"), ("cd22", "CD2_2")]:
                    assert float(c["position_axis_function_" + column]) == pytest.approx(
                        float(header.get(key, 0.0)), rel=1e-12, abs=1e-300), (path, name, key)
    assert checked_wcs > 0


def test_provenance_inputs_name_the_inputs(tap, planes):
    authority = str(planes[0]["publisherID"]).split("?")[0] + "?"
    inputs = {}
    for r in tap.search("SELECT dataset_id, input_id FROM survey.provenance", maxrec=100000).to_table():
        inputs.setdefault(str(r["dataset_id"]), set()).add(authority + str(r["input_id"]))
    made = [r for r in planes if str(r["productID"]) in ("calexp", "deepCoadd")]
    assert made
    for r in planes:
        assert set(text(r["provenance_inputs"]).split()) == inputs.get(str(r["dataset_id"]), set()), r["dataset_id"]
    assert any(inputs.get(str(r["dataset_id"])) for r in made)


def test_tap_schema_describes_the_tables_and_keys(tap):
    tables = {str(r["table_name"]) for r in tap.search(
        "SELECT table_name FROM TAP_SCHEMA.tables WHERE schema_name = 'caom2'").to_table()}
    assert tables == {"caom2.Observation", "caom2.Plane", "caom2.Artifact", "caom2.Part", "caom2.Chunk"}
    columns = {(str(r["table_name"]), str(r["column_name"])): r for r in tap.search(
        "SELECT table_name, column_name, unit, ucd, utype, datatype, xtype FROM TAP_SCHEMA.columns "
        "WHERE table_name LIKE 'caom2.%'", maxrec=10000).to_table()}
    expected = {
        ("caom2.Plane", "position_bounds"): ("deg", "obs.field", "caom2:Plane.position.bounds", "double", "polygon"),
        ("caom2.Plane", "energy_bounds_lower"): ("m", "em.wl;stat.min", "caom2:Plane.energy.bounds.lower", "double", ""),
        ("caom2.Plane", "time_bounds_upper"): ("d", "time.end;obs.exposure", "caom2:Plane.time.bounds.upper", "double",
                                               ""),
        ("caom2.Plane", "time_exposure"): ("s", "time.duration;obs.exposure", "caom2:Plane.time.exposure", "double", ""),
        ("caom2.Artifact", "contentLength"): ("byte", "phys.size;meta.file", "caom2:Artifact.contentLength", "long", ""),
        ("caom2.Artifact", "contentChecksum"): ("", "meta.checksum", "caom2:Artifact.contentChecksum", "char", ""),
        ("caom2.Observation", "environment_seeing"): ("arcsec", "instr.obsty.seeing",
                                                      "caom2:Observation.environment.seeing", "double", ""),
        ("caom2.Chunk", "position_axis_function_cd11"): ("deg", "pos.wcs.cdmatrix",
                                                         "caom2:Chunk.position.axis.function.cd11", "double", ""),
    }
    for key, want in expected.items():
        assert key in columns, key
        r = columns[key]
        assert (text(r["unit"]), text(r["ucd"]), text(r["utype"]), text(r["datatype"]), text(r["xtype"])) == want, key
    keys = {(str(r["from_table"]), str(r["target_table"]), str(r["from_column"]), str(r["target_column"])) for r in
            tap.search("SELECT k.from_table, k.target_table, c.from_column, c.target_column FROM TAP_SCHEMA.keys AS k "
                       "JOIN TAP_SCHEMA.key_columns AS c ON c.key_id = k.key_id "
                       "WHERE k.from_table LIKE 'caom2.%'").to_table()}
    assert keys == {
        ("caom2.Plane", "caom2.Observation", "obsID", "obsID"),
        ("caom2.Artifact", "caom2.Plane", "planeID", "planeID"),
        ("caom2.Part", "caom2.Artifact", "artifactID", "artifactID"),
        ("caom2.Chunk", "caom2.Part", "partID", "partID"),
        ("caom2.Plane", "ivoa.obscore", "publisherID", "obs_publisher_did"),
    }


@pytest.fixture(scope="module")
def embargoed(survey_dir, tmp_path_factory):
    """Only the first visit's raws are public (DR1); every visit's raws are
    also registered embargoed for a very long time (EMB); a staff token may
    see embargoed data."""
    visits = sorted(p.name for p in (survey_dir / "raw").iterdir() if p.is_dir())
    repo = tmp_path_factory.mktemp("caom2-repo") / "caom2repo"
    run("ingest", "--repo", repo, "--name", "caom2repo", survey_dir / "raw" / visits[0])
    run("ingest", "--repo", repo, "--collection", "EMB", "--embargo-hours", "10000000", survey_dir / "raw")
    token = json.loads(run("token", "create", "--repo", repo, "--user", "ops", "--groups", "staff",
                           "--format", "json").stdout)["token"]
    config = tmp_path_factory.mktemp("caom2-config") / "pixserve.yaml"
    config.write_text("auth:\n  embargo_exempt_groups: [staff]\n")
    server = start_server(repo, "--config", config)
    yield server, token
    assert stop_server(server) == 0, server.log()[-3000:]


def first_column(server, adql, headers=None):
    r = requests.post(server.url + "/api/tap/sync", data={"LANG": "ADQL", "QUERY": adql, "FORMAT": "csv"},
                      headers=headers or {}, timeout=60)
    assert r.status_code == 200, r.text
    return sorted(line.split(",")[0] for line in r.text.strip().splitlines()[1:])


def test_embargoed_planes_and_their_files_are_hidden_from_anonymous_callers(embargoed):
    server, token = embargoed
    staff = {"Authorization": "Bearer " + token}
    for table, where in [("caom2.Plane AS p", "p.planeURI"), ("caom2.Observation AS p", "p.collection"),
                         ("caom2.Artifact AS a JOIN caom2.Plane AS p ON p.planeID = a.planeID", "p.planeURI"),
                         ("caom2.Part AS t JOIN caom2.Artifact AS a ON a.artifactID = t.artifactID "
                          "JOIN caom2.Plane AS p ON p.planeID = a.planeID", "p.planeURI"),
                         ("caom2.Chunk AS c JOIN caom2.Part AS t ON t.partID = c.partID JOIN caom2.Artifact AS a "
                          "ON a.artifactID = t.artifactID JOIN caom2.Plane AS p ON p.planeID = a.planeID",
                          "p.planeURI")]:
        column = "p.collection" if "Observation" in table else where
        anonymous = first_column(server, f"SELECT {column} FROM {table}")
        everyone = first_column(server, f"SELECT {column} FROM {table}", staff)
        assert anonymous, table
        assert not any(v.startswith(("EMB", "caom:EMB")) for v in anonymous), table
        assert any(v.startswith(("EMB", "caom:EMB")) for v in everyone), table
        assert len(everyone) > len(anonymous), table
