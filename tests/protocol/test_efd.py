"""The R-EFD tables (efd.weather, efd.visit_summary) in TAP, through a real
`pixserve serve` and pyvo: TAP_SCHEMA describes them with units, UCDs and
the key to survey.visits; joins with ivoa.obscore by visit and by time give
the rows the simulator's CSV files say; an embargoed visit's summary is
hidden from anonymous callers and shown to a token that may see the
visit's data. See docs/efd.md."""
import csv
import json

import pytest
import requests
from pyvo.dal import TAPService

from conftest import query, run, start_server, stop_server


def text(value):
    """A TAP_SCHEMA cell as text: '' for NULL (a masked value)."""
    return "" if value is None or getattr(value, "mask", False) is True or str(value) == "--" else str(value)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def tap(server):
    return TAPService(server.url + "/api/tap")


@pytest.fixture(scope="module")
def summaries(survey_dir):
    rows = read_csv(survey_dir / "efd" / "visit_summary.csv")
    assert rows
    return {int(r["visit"]): r for r in rows}


def test_the_simulator_writes_the_tables_and_ingest_loads_them(tap, survey_dir, summaries):
    weather = read_csv(survey_dir / "efd" / "weather.csv")
    counts = tap.search("SELECT COUNT(*) AS n FROM efd.weather").to_table()
    assert int(counts["n"][0]) == len(weather)
    rows = tap.search("SELECT visit, airmass, dimm_seeing FROM efd.visit_summary ORDER BY visit").to_table()
    assert [int(v) for v in rows["visit"]] == sorted(summaries)
    for row in rows:
        expected = summaries[int(row["visit"])]
        assert float(row["airmass"]) == pytest.approx(float(expected["airmass"]), abs=1e-12)
        assert float(row["dimm_seeing"]) == pytest.approx(float(expected["dimm_seeing"]), abs=1e-12)


def test_tap_schema_lists_the_tables_with_units_ucds_and_the_key(tap):
    tables = {r["table_name"]: r for r in tap.search(
        "SELECT table_name, schema_name, description FROM TAP_SCHEMA.tables WHERE schema_name = 'efd'").to_table()}
    assert set(tables) == {"efd.weather", "efd.visit_summary"}
    assert all(str(r["description"]) for r in tables.values())
    columns = {(str(r["table_name"]), str(r["column_name"])): r for r in tap.search(
        "SELECT table_name, column_name, unit, ucd, datatype, principal, indexed FROM TAP_SCHEMA.columns "
        "WHERE table_name LIKE 'efd.%'").to_table()}
    expected = {
        ("efd.weather", "time_mjd"): ("d", "time.epoch", "double"),
        ("efd.weather", "dimm_seeing"): ("arcsec", "instr.obsty.seeing", "double"),
        ("efd.weather", "air_temperature"): ("K", "phys.temperature", "double"),
        ("efd.weather", "wind_speed"): ("m/s", "phys.veloc", "double"),
        ("efd.weather", "wind_direction"): ("deg", "pos.az.azi", "double"),
        ("efd.weather", "relative_humidity"): ("%", "obs.atmos.humidity", "double"),
        ("efd.weather", "pressure"): ("hPa", "phys.pressure", "double"),
        ("efd.visit_summary", "visit"): ("", "meta.id;obs", "long"),
        ("efd.visit_summary", "t_start"): ("d", "time.start;obs.exposure", "double"),
        ("efd.visit_summary", "airmass"): ("", "obs.airMass", "double"),
    }
    for key, (unit, ucd, datatype) in expected.items():
        assert key in columns, key
        row = columns[key]
        assert (text(row["unit"]), text(row["ucd"]), text(row["datatype"])) == (unit, ucd, datatype), key
    assert int(columns[("efd.weather", "time_mjd")]["indexed"]) == 1
    assert int(columns[("efd.visit_summary", "visit")]["indexed"]) == 1
    assert len([k for k in columns if k[0] == "efd.weather"]) == 8
    assert len([k for k in columns if k[0] == "efd.visit_summary"]) == 12
    keys = tap.search("SELECT k.from_table, k.target_table, c.from_column, c.target_column FROM TAP_SCHEMA.keys AS k "
                      "JOIN TAP_SCHEMA.key_columns AS c ON c.key_id = k.key_id WHERE k.from_table LIKE 'efd.%'")
    assert [tuple(str(v) for v in r.values()) for r in keys] == [
        ("efd.visit_summary", "survey.visits", "visit", "visit")]
    # pyvo's VOSI tables reading agrees.
    names = {t.name for t in tap.tables}
    assert {"efd.weather", "efd.visit_summary"} <= names


def test_an_efd_joined_query_gives_the_calexps_of_the_good_seeing_visits(tap, repo_dir, summaries):
    seeing = sorted(float(r["dimm_seeing"]) for r in summaries.values())
    bound = (seeing[len(seeing) // 2 - 1] + seeing[len(seeing) // 2]) / 2  # about half the visits
    good = {v for v, r in summaries.items() if float(r["dimm_seeing"]) < bound}
    assert 0 < len(good) < len(summaries)
    expected = {r["dataset_id"] for r in query(repo_dir) if r["type"] == "calexp" and int(r["visit"]) in good}
    assert expected
    rows = tap.search("SELECT o.obs_id, e.dimm_seeing FROM ivoa.obscore AS o JOIN efd.visit_summary AS e "
                      f"ON e.visit = o.visit WHERE o.dataproduct_subtype = 'calexp' AND e.dimm_seeing < {bound}",
                      maxrec=100000).to_table()
    assert {str(x) for x in rows["obs_id"]} == expected
    assert all(float(s) < bound for s in rows["dimm_seeing"])


def test_a_join_by_time_gives_the_weather_samples_inside_each_exposure(tap, survey_dir, repo_dir):
    weather = [float(r["time_mjd"]) for r in read_csv(survey_dir / "efd" / "weather.csv")]
    calexps = [r for r in query(repo_dir) if r["type"] == "calexp"]
    expected = {(r["dataset_id"], t) for r in calexps for t in weather if r["t_min"] <= t <= r["t_max"]}
    assert expected
    rows = tap.search("SELECT o.obs_id, w.time_mjd FROM ivoa.obscore AS o JOIN efd.weather AS w "
                      "ON w.time_mjd BETWEEN o.t_min AND o.t_max WHERE o.dataproduct_subtype = 'calexp'",
                      maxrec=100000).to_table()
    assert {(str(r["obs_id"]), float(r["time_mjd"])) for r in rows} == expected


@pytest.fixture(scope="module")
def embargoed(survey_dir, summaries, tmp_path_factory):
    """A repository where only the first visit's raws are public (DR1) and
    every visit is also registered embargoed for a very long time (EMB),
    with the EFD; a staff token may see embargoed data."""
    first = min(summaries)
    rows = len(summaries) + len(read_csv(survey_dir / "efd" / "weather.csv"))
    repo = tmp_path_factory.mktemp("efd-repo") / "efdrepo"
    run("ingest", "--repo", repo, "--name", "efdrepo", survey_dir / "raw" / f"v{first}")
    out = run("ingest", "--repo", repo, "--collection", "EMB", "--embargo-hours", "10000000",
              survey_dir / "raw", survey_dir / "efd").stdout
    assert f"2 EFD files, {rows} EFD rows registered, 0 unchanged" in out, out
    again = run("ingest", "--repo", repo, "--collection", "EMB", survey_dir / "efd").stdout
    assert f"2 EFD files, 0 EFD rows registered, {rows} unchanged" in again, again
    token = json.loads(run("token", "create", "--repo", repo, "--user", "ops", "--groups", "staff",
                           "--format", "json").stdout)["token"]
    config = tmp_path_factory.mktemp("efd-config") / "pixserve.yaml"
    config.write_text("auth:\n  embargo_exempt_groups: [staff]\n")
    server = start_server(repo, "--config", config)
    yield server, token, first
    assert stop_server(server) == 0, server.log()[-3000:]


def tap_visits(server, adql, headers=None):
    r = requests.post(server.url + "/api/tap/sync", data={"LANG": "ADQL", "QUERY": adql, "FORMAT": "csv"},
                      headers=headers or {}, timeout=60)
    assert r.status_code == 200, r.text
    return sorted(int(line.split(",")[0]) for line in r.text.strip().splitlines()[1:])


def test_embargoed_visits_summaries_are_hidden_from_anonymous_callers(embargoed, summaries):
    server, token, first = embargoed
    adql = "SELECT visit FROM efd.visit_summary"
    assert tap_visits(server, adql) == [first]
    assert tap_visits(server, adql, {"Authorization": "Bearer " + token}) == sorted(summaries)
    # Joined, too; and the weather is public.
    joined = ("SELECT DISTINCT e.visit FROM efd.visit_summary AS e JOIN survey.visits AS v ON v.visit = e.visit")
    assert tap_visits(server, joined) == [first]
    assert tap_visits(server, joined, {"Authorization": "Bearer " + token}) == sorted(summaries)
    assert tap_visits(server, "SELECT COUNT(*) FROM efd.weather") == \
        tap_visits(server, "SELECT COUNT(*) FROM efd.weather", {"Authorization": "Bearer " + token})
