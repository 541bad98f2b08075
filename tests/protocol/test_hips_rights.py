"""HiPS trees hold only what their audience may read.

One repository holds three overlapping surveys of the same sky (the same
tract and patches, different seeds, so different pixels) with different
rights:

    DR1   public
    DRT   for data-rights holders
    GRP   restricted to group team1

`pixserve hips` builds a public tree (REPO/hips/<map>) and a data-rights
tree (REPO/hips/full/<map>). Reference trees are built in repositories that
hold only what each audience may read (DR1; DR1 + DRT): every tile of each
tree must equal the reference tile exactly, and the progenitor index
(HpxFinder) of each tree may name only coadds its audience may read. The
served trees are checked the same way through the server.
"""
import json
import re
import shutil

import numpy as np
import pytest
import requests
from astropy.io import fits

from conftest import run, start_server, stop_server

ORDER = 8  # coarse tiles keep the builds short; the rights logic is order-independent
SIM = ["--visits", "2", "--detectors", "2", "--detector-size", "128"]
MAP = "deepCoadd-r"


def tiles(tree):
    """Relative path -> pixel array of every FITS tile of a tree."""
    out = {}
    for f in sorted(tree.glob("Norder*/Dir*/Npix*.fits")):
        with fits.open(f) as h:
            out[str(f.relative_to(tree))] = h[0].data.copy()
    return out


def finder_ids(tree):
    ids = set()
    for f in tree.glob("HpxFinder/Norder*/Dir*/Npix*"):
        for line in f.read_text().splitlines():
            if line.strip():
                ids.add(json.loads(line)["name"])
    return ids


def collection_of(dataset_id):
    return dataset_id.split(".")[0]


@pytest.fixture(scope="module")
def rights_repos(tmp_path_factory):
    surveys = {}
    for name, seed in (("DR1", 7), ("DRT", 8), ("GRP", 9)):
        surveys[name] = tmp_path_factory.mktemp(f"hipsrights-{name}")
        run("simulate", "--out", surveys[name], *SIM, "--seed", seed)
        if name != "DR1":
            # Other seeds, the same visit numbers and times: one site has one
            # weather, so only the first survey's R-EFD tables are loaded (a
            # row that disagrees with a registered one fails an ingest).
            shutil.rmtree(surveys[name] / "efd")

    def make(name, collections):
        repo = tmp_path_factory.mktemp(f"hipsrights-repo-{name}") / name
        for i, c in enumerate(collections):
            policy = {"DR1": ["--policy", "public"], "DRT": ["--policy", "data-rights"],
                      "GRP": ["--policy", "groups", "--groups", "team1"]}[c]
            new = ["--name", "rights"] if i == 0 else []
            run("ingest", "--repo", repo, *new, "--collection", c, "--transfer", "hardlink", *policy, surveys[c])
        return repo

    return {
        "all": make("all", ["DR1", "DRT", "GRP"]),
        "public": make("public", ["DR1"]),
        "rights": make("rights", ["DR1", "DRT"]),
    }


@pytest.fixture(scope="module")
def built(rights_repos):
    out = {}
    for name, repo in rights_repos.items():
        out[name] = run("hips", "--repo", repo, "--band", "r", "--order", ORDER, "--threads", "2").stdout
    return out


def test_hips_says_what_it_left_out_and_why(built):
    text = built["all"]
    public = [line for line in text.splitlines() if "(public)" in line]
    rights = [line for line in text.splitlines() if "(data-rights)" in line]
    assert any("left out" in line and "for data-rights holders" in line for line in public), text
    assert any("left out" in line and "restricted to groups" in line for line in public), text
    assert any("left out" in line and "restricted to groups" in line for line in rights), text
    assert not any("for data-rights holders" in line for line in rights), text
    # The repository of public coadds alone leaves nothing out of its public map.
    assert "left out" not in "\n".join(l for l in built["public"].splitlines() if "(public)" in l)


def test_public_tree_equals_the_tree_of_the_public_coadds_alone(rights_repos, built):
    got = tiles(rights_repos["all"] / "hips" / MAP)
    want = tiles(rights_repos["public"] / "hips" / MAP)
    assert got and set(got) == set(want)
    for path, pixels in want.items():
        np.testing.assert_array_equal(got[path], pixels, err_msg=path)
    # ... and differs from the tree of every coadd (the test could not pass by accident).
    every = tiles(rights_repos["rights"] / "hips" / "full" / MAP)
    assert any(not np.array_equal(every[p], got[p], equal_nan=True) for p in got)


def test_data_rights_tree_equals_the_tree_of_what_data_rights_holders_may_read(rights_repos, built):
    got = tiles(rights_repos["all"] / "hips" / "full" / MAP)
    want = tiles(rights_repos["rights"] / "hips" / "full" / MAP)
    assert got and set(got) == set(want)
    for path, pixels in want.items():
        np.testing.assert_array_equal(got[path], pixels, err_msg=path)


def test_hpxfinder_names_only_what_the_audience_may_read(rights_repos, built):
    public = finder_ids(rights_repos["all"] / "hips" / MAP)
    rights = finder_ids(rights_repos["all"] / "hips" / "full" / MAP)
    assert public and rights
    assert {collection_of(i) for i in public} == {"DR1"}
    assert {collection_of(i) for i in rights} == {"DR1", "DRT"}


def test_served_trees_follow_their_audience(rights_repos, built, tmp_path):
    repo = rights_repos["all"]
    token = json.loads(run("token", "create", "--repo", repo, "--user", "dr", "--groups", "data-rights,team1",
                           "--format", "json").stdout)["token"]
    config = tmp_path / "pixserve.yaml"
    config.write_text("auth:\n  data_rights_groups: [data-rights]\nhips:\n  public_max_order: 8\n")
    srv = start_server(repo, "--config", config)
    try:
        base = srv.url + "/api/hips"
        some = sorted((repo / "hips" / MAP).glob("Norder*/Dir*/Npix*.fits"))[0].relative_to(repo / "hips" / MAP)
        r = requests.get(f"{base}/{MAP}/{some}", timeout=60)
        assert r.status_code == 200
        assert r.content == (repo / "hips" / MAP / some).read_bytes()
        headers = {"Authorization": "Bearer " + token}
        full_some = sorted((repo / "hips" / "full" / MAP).glob("Norder*/Dir*/Npix*.fits"))[0]
        rel = full_some.relative_to(repo / "hips" / "full" / MAP)
        r = requests.get(f"{base}/full/{MAP}/{rel}", headers=headers, timeout=60)
        assert r.status_code == 200
        assert r.content == full_some.read_bytes()
        assert requests.get(f"{base}/full/{MAP}/{rel}", timeout=60).status_code == 401
        # The progenitor index as served: a member of team1 with data rights
        # still reads only the data-rights tree's index, without GRP coadds.
        finder = sorted((repo / "hips" / "full" / MAP).glob("HpxFinder/Norder*/Dir*/Npix*"))[0]
        r = requests.get(f"{base}/full/{MAP}/{finder.relative_to(repo / 'hips' / 'full' / MAP)}", headers=headers,
                         timeout=60)
        assert r.status_code == 200
        names = {json.loads(line)["name"] for line in r.text.splitlines() if line.strip()}
        assert names and all(collection_of(n) in ("DR1", "DRT") for n in names)
        # The HiPS list names the public map with its data-rights tree.
        listing = requests.get(f"{base}/list", timeout=60).text
        assert re.search(rf"^hips_service_url_1 *= {re.escape(srv.url)}/api/hips/full/{MAP}$", listing, re.M), listing
    finally:
        assert stop_server(srv) == 0


def test_a_tree_made_before_audiences_is_not_served(rights_repos, built, tmp_path):
    """A tree without pixserve_audience (made by an earlier version from every
    coadd) must not be served: it may hold restricted pixels."""
    repo = rights_repos["public"]
    legacy = repo / "hips" / "legacy-r"
    legacy.mkdir()
    props = (repo / "hips" / MAP / "properties").read_text()
    (legacy / "properties").write_text("\n".join(l for l in props.splitlines() if "pixserve_audience" not in l) + "\n")
    srv = start_server(repo)
    try:
        assert requests.get(srv.url + "/api/hips/legacy-r/properties", timeout=60).status_code == 404
        assert "legacy-r" not in requests.get(srv.url + "/api/hips/list", timeout=60).text
        assert requests.get(srv.url + f"/api/hips/{MAP}/properties", timeout=60).status_code == 200
    finally:
        assert stop_server(srv) == 0


def test_an_audience_that_may_read_nothing_gets_no_tree(tmp_path_factory):
    survey = tmp_path_factory.mktemp("hipsrights-grp-only")
    run("simulate", "--out", survey, *SIM, "--seed", 9)
    repo = tmp_path_factory.mktemp("hipsrights-grp-repo") / "g"
    run("ingest", "--repo", repo, "--policy", "groups", "--groups", "team1", "--transfer", "hardlink", survey)
    text = run("hips", "--repo", repo, "--band", "r", "--order", ORDER).stdout
    assert "may read none of the coadds" in text, text
    assert not (repo / "hips" / MAP).exists()
    assert not (repo / "hips" / "full" / MAP).exists()
