"""Access-control audit through a real `pixserve serve`.

One repository holds the same small survey in five collections with
different rights (ingest options), and tokens are made with the CLI:

    DR1   public
    EMB   public, embargoed for a very long time (visit data only)
    GRP   policy groups, group team1
    PRIV  owner alice, policy owner
    DRT   policy data-rights

Every endpoint that exists (SIA, DataLink, /api/datasets/query, files,
previews, headers, Level-3 uploads) is tried as anonymous, as another user
(mallory), as a group member (bob), as the owner (alice), as staff (ops) and
as a data-rights holder (dr): nothing leaks, invisible looks exactly like
unknown, and bad credentials are refused with the RFC 6750 status and
challenge.
"""
import io
import json
import time
import urllib.parse

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.wcs import WCS
from pyvo.dal import sia2
from pyvo.dal.adhoc import DatalinkResults

from conftest import registry_execute, run, start_server, stop_server
from test_services import votable

REALM = "pixserve-test"
COLLECTIONS = ["DR1", "EMB", "GRP", "PRIV", "DRT"]
IDENTITIES = ["anon", "mallory", "bob", "alice", "ops", "dr"]
VISIT_TYPES = {"raw", "calexp", "calexp_comp", "diffim"}


def may_see(who, collection, dataset_type):
    """The expected policy, written independently of the server."""
    if collection == "DR1":
        return True
    if collection == "EMB":
        return dataset_type not in VISIT_TYPES or who == "ops"
    if collection == "GRP":
        return who == "bob"
    if collection == "PRIV":
        return who == "alice"
    if collection == "DRT":
        return who == "dr"
    raise AssertionError(collection)


def make_token(repo, user, *args):
    out = run("token", "create", "--repo", repo, "--user", user, "--format", "json", *args)
    info = json.loads(out.stdout)
    assert info["token"].startswith("pxs_") and info["user"] == user
    return info


class Audit:
    def __init__(self, repo, server, tokens, infos, registered):
        self.repo = repo
        self.server = server
        self.url = server.url
        self.tokens = tokens
        self.infos = infos
        self.registered = registered  # collection -> [records from `pixserve query`]

    def headers(self, who):
        if who == "anon":
            return {}
        return {"Authorization": "Bearer " + self.tokens[who]}

    def get(self, who, path, **kwargs):
        return requests.get(self.url + path, headers=self.headers(who), timeout=60, **kwargs)

    def did(self, dataset_id):
        return f"ivo://pixserve.example/audit?{dataset_id}"


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    survey = tmp_path_factory.mktemp("audit-survey")
    run("simulate", "--out", survey, "--visits", "2", "--detectors", "2", "--detector-size", "128", "--seed", "11")
    repo = tmp_path_factory.mktemp("audit-repo") / "audit"
    run("ingest", "--repo", repo, "--name", "audit", survey)
    run("ingest", "--repo", repo, "--collection", "EMB", "--embargo-hours", "10000000", survey)
    run("ingest", "--repo", repo, "--collection", "GRP", "--policy", "groups", "--groups", "team1", survey)
    run("ingest", "--repo", repo, "--collection", "PRIV", "--owner", "alice", "--policy", "owner", survey)
    run("ingest", "--repo", repo, "--collection", "DRT", "--policy", "data-rights", survey)

    infos = {
        "alice": make_token(repo, "alice", "--scope", "read:image", "--scope", "write:image", "--note", "owner"),
        "bob": make_token(repo, "bob", "--groups", "team1", "--scope", "read:image,write:image"),
        "mallory": make_token(repo, "mallory", "--groups", "team2", "--scope", "read:image,write:image"),
        "ops": make_token(repo, "ops", "--groups", "staff"),
        "dr": make_token(repo, "dr", "--groups", "data-rights"),
        "alice_read": make_token(repo, "alice"),
        "write_only": make_token(repo, "alice", "--scope", "write:image"),
        "expired": make_token(repo, "alice", "--expires", "1s"),
        "revoked": make_token(repo, "alice", "--groups", "team1"),
    }
    run("token", "revoke", "--repo", repo, infos["revoked"]["id"])
    tokens = {k: v["token"] for k, v in infos.items()}

    registered = {}
    for c in COLLECTIONS:
        registered[c] = json.loads(run("query", "--repo", repo, "--collection", c, "--format", "json").stdout)
        assert registered[c], c

    config = tmp_path_factory.mktemp("audit-config") / "pixserve.yaml"
    config.write_text(
        "auth:\n"
        f"  realm: {REALM}\n"
        "  data_rights_groups: [data-rights]\n"
        "  embargo_exempt_groups: [staff]\n"
        "user_images:\n"
        "  max_file_mb: 1\n"
        "  quota_mb: 1\n"
    )
    server = start_server(repo, "--config", config)
    time.sleep(1.1)  # the 1 s token has expired by the time it is used
    yield Audit(repo, server, tokens, infos, registered)
    status = stop_server(server)
    assert status == 0, server.log()[-3000:]
    # Tokens never reach the log.
    log = server.log()
    for t in tokens.values():
        assert t not in log
        assert t[4:] not in log


def rows(content):
    table = votable(content).get_first_table().to_table()
    return table


def obs_ids(content):
    return sorted(str(r["obs_id"]) for r in rows(content))


def expected_ids(audit, who, collection, types=None):
    return sorted(
        r["dataset_id"]
        for r in audit.registered[collection]
        if (types is None or r["type"] in types) and may_see(who, collection, r["type"])
    )


def record_of(audit, collection, dataset_type):
    """The first dataset of a type (for coadds, the first patch: not the logical coadd)."""
    return next(r for r in audit.registered[collection]
                if r["type"] == dataset_type and (dataset_type != "deepCoadd" or r.get("tract") is not None))


# --------------------------------------------------------------- searches


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_sia_rows_follow_the_policy(audit, who, collection):
    r = audit.get(who, "/api/sia/query", params={"COLLECTION": collection, "MAXREC": 100000})
    assert r.status_code == 200, r.text
    got = obs_ids(r.content)
    assert set(got) <= set(expected_ids(audit, who, collection))
    # Every visible processed image is found (what SIA lists of calibrations is not the point here).
    assert set(expected_ids(audit, who, collection, {"calexp", "deepCoadd"})) <= set(got)
    for invisible in set(x["dataset_id"] for x in audit.registered[collection]) - set(expected_ids(audit, who, collection)):
        assert invisible.encode() not in r.content


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_datasets_query_rows_follow_the_policy(audit, who, collection):
    r = audit.get(who, "/api/datasets/query", params={"COLLECTION": collection, "MAXREC": 100000})
    assert r.status_code == 200, r.text
    assert obs_ids(r.content) == expected_ids(audit, who, collection)


@pytest.mark.parametrize("who", IDENTITIES)
def test_everything_at_once(audit, who):
    r = audit.get(who, "/api/datasets/query", params={"MAXREC": 100000})
    assert r.status_code == 200
    expected = sorted(i for c in COLLECTIONS for i in expected_ids(audit, who, c))
    assert obs_ids(r.content) == expected


def test_maxrec_counts_only_visible_rows(audit):
    # DRT.* sorts before EMB.*: were rows filtered after MAXREC, the anonymous
    # caller would get nothing here.
    r = audit.get("anon", "/api/datasets/query", params={"COLLECTION": ["DRT", "EMB"], "MAXREC": 3})
    assert r.status_code == 200
    got = obs_ids(r.content)
    assert len(got) == 3
    assert all(i.startswith("EMB.") and i.split(".")[1] not in VISIT_TYPES for i in got)
    overflow = [i for i in votable(r.content).resources[0].infos if i.name == "QUERY_STATUS"]
    assert overflow and overflow[-1].value == "OVERFLOW"


# --------------------------------------------------------------- DataLink


def datalink(audit, who, ids):
    r = audit.get(who, "/api/datalink/links", params={"ID": ids})
    assert r.status_code == 200, r.text
    return rows(r.content)


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_datalink_links_follow_the_policy(audit, who, collection):
    unknown_id = f"{collection}.calexp.v999999.d099"
    for dataset_type in ("calexp", "deepCoadd", "raw"):
        rec = record_of(audit, collection, dataset_type)
        did = audit.did(rec["dataset_id"])
        table = datalink(audit, who, [did])
        if may_see(who, collection, dataset_type):
            this = [r for r in table if r["semantics"] == "#this"]
            assert len(this) == 1 and str(this[0]["access_url"]).endswith("/api/files/" + rec["dataset_id"])
            # DataLink 1.1: credentials are needed unless anonymous may read it.
            needs = "false" if may_see("anon", collection, dataset_type) else "true"
            assert {str(r["link_auth"]) for r in table if r["semantics"] in ("#this", "#preview", "#cutout")} == {needs}
            assert all(bool(r["link_authorized"]) for r in table)
        else:
            # Exactly what an unknown ID gets, up to the ID itself.
            unknown = datalink(audit, who, [audit.did(unknown_id)])
            assert len(table) == 1 and len(unknown) == 1
            assert str(table[0]["error_message"]).replace(did, "X") == str(unknown[0]["error_message"]).replace(
                audit.did(unknown_id), "X")
            assert str(table[0]["access_url"]) in ("", "--", "None") or np.ma.is_masked(table[0]["access_url"])


@pytest.mark.parametrize("who", IDENTITIES)
def test_provenance_links_name_only_visible_relatives(audit, who):
    for collection in COLLECTIONS:
        coadd = record_of(audit, collection, "deepCoadd")
        if not may_see(who, collection, "deepCoadd"):
            continue
        table = datalink(audit, who, [audit.did(coadd["dataset_id"])])
        progenitors = [str(r["access_url"]) for r in table if r["semantics"] == "#progenitor"]
        expect_inputs = may_see(who, collection, "calexp")
        assert bool(progenitors) == expect_inputs, (collection, progenitors)
        for url in progenitors:
            assert urllib.parse.unquote(url).split("?")[-1].startswith(collection + ".calexp.")
    # And from an embargoed calexp's side: anonymous callers of the public
    # EMB coadd see no EMB calexp anywhere in the document.
    coadd = record_of(audit, "EMB", "deepCoadd")
    r = audit.get("anon", "/api/datalink/links", params={"ID": audit.did(coadd["dataset_id"])})
    assert b"EMB.calexp" not in r.content


# --------------------------------------------------------------- files


FILE_PATHS = ["/api/files/{}", "/api/files/{}/preview.png", "/api/files/{}/header"]


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_files_previews_and_headers_follow_the_policy(audit, who, collection):
    rec = record_of(audit, collection, "calexp")
    for pattern in FILE_PATHS:
        r = audit.get(who, pattern.format(rec["dataset_id"]))
        unknown = audit.get(who, pattern.format(f"{collection}.calexp.v999999.d099"))
        assert unknown.status_code == 404
        if may_see(who, collection, "calexp"):
            assert r.status_code == 200, (pattern, r.text[:300])
            if pattern.endswith("{}"):
                assert r.content[:6] == b"SIMPLE"
        else:
            assert r.status_code == 404
            assert r.content == unknown.content
            assert r.headers.get("Content-Type") == unknown.headers.get("Content-Type")


def test_path_traversal_and_id_forgery_are_refused(audit):
    secret = b"SQLite format 3\x00"  # the first bytes of any SQLite database file
    for path in [
        "/api/files/..%2F..%2Fregistry.sqlite3",
        "/api/files/..%2Fregistry.sqlite3",
        "/api/files/%2e%2e%2fpixserve-repo.json",
        "/api/files/%2e%2e",
        "/api/files/..",
        "/api/files/DR1.calexp.v1.d1%00",
        "/api/files/DR1.calexp%2F..%2F..%2Fregistry.sqlite3/header",
        "/api/files/.staging/preview.png",
        "/api/user/images/..%2F..%2Fregistry",
    ]:
        for who in ("anon", "alice"):
            r = audit.get(who, path)
            assert r.status_code in (400, 401, 403, 404, 405), (path, r.status_code)
            assert secret not in r.content
            assert b"pixserve-repo" not in r.content or r.status_code != 200
    # Somebody else's dataset by its ID, a DID of another authority and a
    # DID of this repository naming a private dataset.
    priv = record_of(audit, "PRIV", "calexp")["dataset_id"]
    for who in ("anon", "mallory", "bob", "ops", "dr"):
        assert audit.get(who, f"/api/files/{priv}").status_code == 404
        table = datalink(audit, who, [audit.did(priv), f"ivo://other.example/audit?{priv}"])
        assert all(not np.ma.is_masked(r["error_message"]) and str(r["error_message"]) for r in table)
    table = datalink(audit, "alice", [f"ivo://other.example/audit?{priv}"])
    assert len(table) == 1 and str(table[0]["error_message"])


# --------------------------------------------------------------- tokens


def challenge_of(r):
    assert "WWW-Authenticate" in r.headers, r.headers
    return r.headers["WWW-Authenticate"]


def assert_dali_error(r):
    assert r.headers["Content-Type"].startswith("application/x-votable+xml")
    infos = [i for i in votable(r.content).resources[0].infos if i.name == "QUERY_STATUS"]
    assert infos and infos[0].value == "ERROR"


ENDPOINTS = [
    "/api/sia/query?COLLECTION=DR1",
    "/api/datasets/query?COLLECTION=DR1",
    "/api/datalink/links?ID=DR1.calexp.v1.d1",
    "/api/files/{dr1}",
    "/api/files/{dr1}/preview.png",
    "/api/files/{dr1}/header",
]


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_bad_tokens_are_refused(audit, endpoint):
    path = endpoint.format(dr1=record_of(audit, "DR1", "calexp")["dataset_id"])
    url = audit.url + path
    cases = {
        "expired": (audit.tokens["expired"], 401, "invalid_token"),
        "revoked": (audit.tokens["revoked"], 401, "invalid_token"),
        "malformed": ("not-a-token", 401, "invalid_token"),
        "unknown": ("pxs_" + "A" * 43, 401, "invalid_token"),
        "bad-jwt": ("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.", 401, "invalid_token"),
        "wrong-scope": (audit.tokens["write_only"], 403, "insufficient_scope"),
    }
    for name, (token, status, error) in cases.items():
        r = requests.get(url, headers={"Authorization": "Bearer " + token}, timeout=60)
        assert r.status_code == status, (name, r.status_code, r.text[:300])
        c = challenge_of(r)
        assert c.startswith(f'Bearer realm="{REALM}"'), c
        assert f'error="{error}"' in c, c
        assert token not in c and token.encode() not in r.content
        assert_dali_error(r)
        if name == "wrong-scope":
            assert 'scope="read:image"' in c
    r = requests.get(url, headers={"Authorization": "Basic YWxpY2U6cw=="}, timeout=60)
    assert r.status_code == 400 and 'error="invalid_request"' in challenge_of(r)
    # The same endpoint works without credentials and with a good token.
    assert requests.get(url, timeout=60).status_code == 200
    assert requests.get(url, headers=audit.headers("alice"), timeout=60).status_code == 200


def test_token_list_never_shows_tokens(audit):
    out = run("token", "list", "--repo", audit.repo, "--format", "json").stdout
    listed = json.loads(out)
    assert {t["id"] for t in listed} >= {i["id"] for i in audit.infos.values()}
    revoked = next(t for t in listed if t["id"] == audit.infos["revoked"]["id"])
    assert revoked["revoked"]
    used = next(t for t in listed if t["id"] == audit.infos["alice"]["id"])
    assert used["last_used"]  # alice's token has been used by now
    for t in audit.tokens.values():
        assert t not in out and t[4:] not in out


# --------------------------------------------------------------- pyvo


def test_pyvo_with_a_token_session(audit):
    session = requests.Session()
    session.headers["Authorization"] = "Bearer " + audit.tokens["alice"]
    service = sia2.SIAService(audit.url + "/api/sia", session=session)
    # pyvo 1.2.1's SIAService.search does not use the service's session by
    # itself: hand it over again.
    results = service.search(collection="PRIV", maxrec=1000, session=session)
    ids = {str(r["obs_id"]) for r in results.to_table()}
    assert ids and all(i.startswith("PRIV.") for i in ids)
    row = next(r for r in results if str(r["obs_id"]).startswith("PRIV.calexp."))
    # Record.getdatalink() of pyvo 1.2.1 drops the session too: follow the
    # access_url with it (without it, the link document is an error row).
    links = DatalinkResults.from_result_url(row.getdataurl(), session=session)
    this = list(links.bysemantics("#this", include_narrower=False))
    assert len(this) == 1
    data = session.get(str(this[0]["access_url"]), timeout=60)
    assert data.status_code == 200 and data.content[:6] == b"SIMPLE"
    anonymous_links = DatalinkResults.from_result_url(row.getdataurl())
    assert [str(r["semantics"]) for r in anonymous_links] == ["#this"]
    assert str(anonymous_links[0]["error_message"]).startswith("NotFoundFault")
    # The same search without the token: nothing.
    anonymous = sia2.SIAService(audit.url + "/api/sia")
    assert len(anonymous.search(collection="PRIV", maxrec=1000)) == 0


# --------------------------------------------------------------- Level 3


USER_RA, USER_DEC = 53.1, -28.1


def user_image(n, seed=1):
    """A small Level-3 image: float32 pixels with a TAN WCS and no DSTYPE."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [USER_RA, USER_DEC]
    w.wcs.crpix = [n / 2, n / 2]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    data = np.random.default_rng(seed).normal(size=(n, n)).astype(np.float32)
    hdu = fits.PrimaryHDU(data, header=w.to_header())
    hdu.header["OBJECT"] = "my field"
    buf = io.BytesIO()
    hdu.writeto(buf)
    return buf.getvalue()


def user_ids(audit, who):
    r = audit.get(who, "/api/datasets/query", params={"COLLECTION": "user", "MAXREC": 1000})
    assert r.status_code == 200
    return obs_ids(r.content)


def put(audit, who, name, body, params=None, token=None):
    headers = audit.headers(who) if token is None else {"Authorization": "Bearer " + token}
    headers["Content-Type"] = "application/fits"
    return requests.put(f"{audit.url}/api/user/images/{name}", data=body, params=params or {}, headers=headers,
                        timeout=60)


def leftovers(audit):
    return sorted(p.name for p in audit.repo.iterdir() if p.name.startswith((".upload-", ".staging-", ".deleted-")))


def test_level3_upload_acl_and_delete(audit):
    image = user_image(64)
    # Anonymous: 401 with a bare challenge; read-only token: 403.
    r = put(audit, "anon", "field1", image)
    assert r.status_code == 401 and challenge_of(r) == f'Bearer realm="{REALM}"'
    r = put(audit, "anon", "field1", image, token=audit.tokens["alice_read"])
    assert r.status_code == 403 and 'error="insufficient_scope"' in challenge_of(r)

    r = put(audit, "alice", "field1", image)
    assert r.status_code == 201, r.text
    info = r.json()
    assert info["dataset_id"] == "user.user.alice.field1"
    assert info["acl"]["policy"] == "owner"
    dataset_id = info["dataset_id"]

    # Private: only alice sees it, anywhere.
    assert user_ids(audit, "alice") == [dataset_id]
    for who in ("anon", "mallory", "bob", "ops", "dr"):
        assert user_ids(audit, who) == []
        assert audit.get(who, f"/api/files/{dataset_id}").status_code == 404
    assert audit.get("alice", f"/api/files/{dataset_id}").content == image

    # Same name again: conflict; the registry keeps the first.
    assert put(audit, "alice", "field1", user_image(64, seed=2)).status_code == 409

    # Another user cannot touch it: their namespace has no such image.
    for method in ("DELETE",):
        assert requests.request(method, f"{audit.url}/api/user/images/field1", headers=audit.headers("mallory"),
                                timeout=60).status_code == 404
    r = requests.post(f"{audit.url}/api/user/images/field1/acl", data={"POLICY": "public"},
                      headers=audit.headers("mallory"), timeout=60)
    assert r.status_code == 404
    assert user_ids(audit, "mallory") == []

    # Shared with bob (a user) and group team2 (mallory's).
    r = requests.post(f"{audit.url}/api/user/images/field1/acl", data={"POLICY": "shared", "USER": "bob"},
                      headers=audit.headers("alice"), timeout=60)
    assert r.status_code == 200, r.text
    assert r.json()["acl"] == {"policy": "shared", "users": ["bob"], "groups": []}
    assert user_ids(audit, "bob") == [dataset_id]
    assert user_ids(audit, "mallory") == []
    assert user_ids(audit, "anon") == []
    r = requests.post(f"{audit.url}/api/user/images/field1/acl", data={"POLICY": "shared", "GROUP": "team2"},
                      headers=audit.headers("alice"), timeout=60)
    assert r.status_code == 200
    assert user_ids(audit, "mallory") == [dataset_id]
    assert user_ids(audit, "bob") == []
    # Public: everybody, through SIA too.
    r = requests.post(f"{audit.url}/api/user/images/field1/acl", data={"POLICY": "public"},
                      headers=audit.headers("alice"), timeout=60)
    assert r.status_code == 200
    assert user_ids(audit, "anon") == [dataset_id]
    sia = audit.get("anon", "/api/sia/query", params={"COLLECTION": "user"})
    assert obs_ids(sia.content) == [dataset_id]
    # Bad ACL requests.
    for data in ({"POLICY": "shared"}, {"POLICY": "everyone"}, {"POLICY": "shared", "USER": "@bob"}, {}):
        r = requests.post(f"{audit.url}/api/user/images/field1/acl", data=data, headers=audit.headers("alice"),
                          timeout=60)
        assert r.status_code == 400, data

    # The listing.
    listing = audit.get("alice", "/api/user/images").json()
    assert [i["name"] for i in listing["images"]] == ["field1"]
    assert listing["used_bytes"] == len(image)

    # Delete: owner only; then it is gone everywhere.
    r = requests.delete(f"{audit.url}/api/user/images/field1", headers=audit.headers("alice"), timeout=60)
    assert r.status_code == 204
    assert user_ids(audit, "anon") == [] and user_ids(audit, "alice") == []
    assert audit.get("alice", f"/api/files/{dataset_id}").status_code == 404
    assert requests.delete(f"{audit.url}/api/user/images/field1", headers=audit.headers("alice"),
                           timeout=60).status_code == 404
    assert leftovers(audit) == []


def test_level3_uploads_are_validated(audit):
    before = user_ids(audit, "alice")
    # Not FITS, a survey file (DSTYPE), a FITS without WCS, a bad name, too large.
    calexp = open(record_of(audit, "DR1", "calexp")["file"], "rb").read()
    no_wcs = io.BytesIO()
    fits.PrimaryHDU(np.zeros((8, 8), dtype=np.float32)).writeto(no_wcs)
    for name, body in [("junk", b"hello world" * 300), ("survey", calexp), ("nowcs", no_wcs.getvalue()),
                       ("empty", b"")]:
        r = put(audit, "alice", name, body)
        assert r.status_code == 400, (name, r.text)
        assert str(audit.repo) not in r.text  # no server paths in messages
    assert put(audit, "alice", "bad.name", user_image(16)).status_code in (400, 404)
    assert put(audit, "alice", "big", user_image(600)).status_code == 413  # > max_file_mb (1)
    assert user_ids(audit, "alice") == before
    assert leftovers(audit) == []

    # Multipart works too; the quota (1 MiB) stops the third 400 kB image.
    images = [user_image(320, seed=s) for s in range(3)]
    statuses = []
    for i, body in enumerate(images):
        r = requests.post(f"{audit.url}/api/user/images/q{i}", files={"file": (f"q{i}.fits", body)},
                          headers=audit.headers("bob"), timeout=60)
        statuses.append(r.status_code)
    assert statuses == [201, 201, 403], statuses
    assert len(user_ids(audit, "bob")) == 2
    for i in range(2):
        assert requests.delete(f"{audit.url}/api/user/images/q{i}", headers=audit.headers("bob"),
                               timeout=60).status_code == 204
    assert leftovers(audit) == []


# --------------------------------------------------------------- status


def test_status_page_and_aggregate(audit):
    r = requests.get(audit.url + "/status", timeout=60)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    page = r.text
    for service in ("sia", "datalink", "datasets"):
        assert f'id="service-{service}"' in page
    assert 'data-available="true"' in page
    assert "<details" in page and "registry database" in page
    assert "http://" not in page.replace(audit.url, "") and "https://" not in page  # no external assets
    j = requests.get(audit.url + "/status.json", timeout=60).json()
    assert j["available"] is True and {s["name"] for s in j["services"]} >= {"sia", "datalink", "datasets"}
    x = requests.get(audit.url + "/status.xml", timeout=60)
    assert x.status_code == 200 and b"availability" in x.content


# --------------------------------------------------------------- SODA, UWS, MOC, HiPS

PIXELS = "[1:10,1:10]"


def unknown_like(audit, who, path, params, dataset_id):
    """The response for an ID that does not exist, with the same shape as dataset_id."""
    fake = dataset_id + "x"
    swapped = [(k, v.replace(dataset_id, fake)) for k, v in params]
    return audit.get(who, path, params=swapped), fake


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_soda_sync_cutouts_follow_the_policy(audit, who, collection):
    for kind in ("calexp", "calexp_comp"):
        rec = record_of(audit, collection, kind)
        params = [("ID", rec["dataset_id"]), ("PIXEL", PIXELS)]
        r = audit.get(who, "/api/soda/sync", params=params)
        if may_see(who, collection, kind):
            assert r.status_code == 200, (who, collection, kind, r.text[:500])
            assert r.headers["Content-Type"] == "application/fits"
            with fits.open(io.BytesIO(r.content)) as cut:
                assert cut[0].header["PSNCUT"] >= 1
        else:
            u, fake = unknown_like(audit, who, "/api/soda/sync", params, rec["dataset_id"])
            assert u.status_code != 200
            assert r.status_code == u.status_code, (who, collection, kind)
            assert r.text.replace(rec["dataset_id"], "@") == u.text.replace(fake, "@"), (r.text, u.text)
            assert r.headers["Content-Type"] == u.headers["Content-Type"]


def soda_job(audit, who, params, extra_headers=None):
    headers = dict(audit.headers(who), **(extra_headers or {}))
    r = requests.post(audit.url + "/api/soda/async", data=params + [("PHASE", "RUN")], headers=headers,
                      allow_redirects=False, timeout=60)
    assert r.status_code == 303, r.text[:500]
    return r.headers["Location"]


def final_phase(audit, who, url, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = audit.get(who, urllib.parse.urlparse(url).path + "/phase")
        assert r.status_code == 200, r.text
        if r.text.strip() in ("COMPLETED", "ERROR", "ABORTED"):
            return r.text.strip()
        time.sleep(0.2)
    raise AssertionError("job did not end")


def test_soda_async_jobs_belong_to_their_owner_and_act_with_their_rights(audit):
    grp = record_of(audit, "GRP", "calexp")["dataset_id"]
    priv = record_of(audit, "PRIV", "calexp")["dataset_id"]
    params = [("ID", grp), ("PIXEL", PIXELS)]
    bob_job = soda_job(audit, "bob", params)
    path = urllib.parse.urlparse(bob_job).path
    assert final_phase(audit, "bob", bob_job) == "COMPLETED"
    assert audit.get("bob", path + "/owner").text.strip() == "bob"
    results = audit.get("bob", path + "/results")
    assert results.status_code == 200 and "cutout-1" in results.text
    assert audit.get("bob", path + "/results/cutout-1").status_code == 200
    # Nobody else sees the job (404, as for a job that does not exist).
    missing = path.rsplit("/", 1)[0] + "/" + "a" * len(path.rsplit("/", 1)[1])
    for other in ("anon", "mallory", "alice", "dr"):
        for suffix in ("", "/phase", "/results", "/results/cutout-1", "/parameters", "/owner"):
            r = audit.get(other, path + suffix)
            assert r.status_code == 404, (other, suffix, r.status_code)
            assert r.text == audit.get(other, missing + suffix).text
        assert bob_job.rsplit("/", 1)[1] not in audit.get(other, "/api/soda/async").text
        d = requests.delete(bob_job, headers=audit.headers(other), allow_redirects=False, timeout=60)
        assert d.status_code == 404
    assert audit.get("bob", path + "/phase").text.strip() == "COMPLETED"
    assert bob_job.rsplit("/", 1)[1] in audit.get("bob", "/api/soda/async").text
    # Jobs of callers who may not see the dataset fail exactly as for an
    # unknown ID; parameters cannot lend the job anyone's groups or rights.
    forged = [("OWNER", "bob"), ("GROUPS", "team1"), ("owner_context", "v1\x1fbob\x1fteam1\x1fread:image\x1f1\x1f1")]
    for name, value in forged:
        r = requests.post(audit.url + "/api/soda/async", data=[("ID", grp), ("PIXEL", PIXELS), (name, value)],
                          headers=audit.headers("mallory"), allow_redirects=False, timeout=60)
        assert r.status_code == 400, (name, r.status_code)
    for who, dataset in (("anon", grp), ("mallory", grp), ("alice", grp), ("bob", priv), ("mallory", priv)):
        job = soda_job(audit, who, [("ID", dataset), ("PIXEL", PIXELS)])
        assert final_phase(audit, who, job) == "ERROR", (who, dataset)
        unknown = soda_job(audit, who, [("ID", dataset + "x"), ("PIXEL", PIXELS)])
        assert final_phase(audit, who, unknown) == "ERROR"
        e1 = audit.get(who, urllib.parse.urlparse(job).path + "/error").text
        e2 = audit.get(who, urllib.parse.urlparse(unknown).path + "/error").text
        assert e1.replace(dataset, "@") == e2.replace(dataset + "x", "@")
    alice_job = soda_job(audit, "alice", [("ID", priv), ("PIXEL", PIXELS)])
    assert final_phase(audit, "alice", alice_job) == "COMPLETED"


@pytest.mark.parametrize("base", ["/api/soda/async", "/api/tap/async"])
def test_uws_routes_refuse_bad_tokens(audit, base):
    for token, status in ((audit.tokens["revoked"], 401), (audit.tokens["expired"], 401), ("not-a-token", 401),
                          (audit.tokens["write_only"], 403)):
        headers = {"Authorization": "Bearer " + token}
        for method in ("get", "post"):
            r = requests.request(method, audit.url + base, headers=headers, allow_redirects=False, timeout=60)
            assert r.status_code == status, (base, method, r.status_code, r.text[:300])
            assert challenge_of(r).startswith(f'Bearer realm="{REALM}"')
            assert token not in r.text
    assert audit.get("alice", base).status_code == 200
    assert audit.get("anon", base).status_code == 200


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_moc_covers_only_visible_datasets(audit, who, collection):
    def moc(c):
        return audit.get(who, "/api/moc/query", params={"COLLECTION": c, "DPSUBTYPE": "calexp", "ORDER": 8,
                                                        "FORMAT": "json"})
    r = moc(collection)
    public = moc("DR1")
    assert public.status_code == 200 and public.json()
    if may_see(who, collection, "calexp"):
        assert r.status_code == 200 and r.json() == public.json()  # the same survey in every collection
    else:
        nothing = moc("NO_SUCH_COLLECTION")
        assert (r.status_code, r.text) == (nothing.status_code, nothing.text)
        assert r.text != public.text


def test_hips_full_maps_need_data_rights(audit):
    path = "/api/hips/full/deepCoadd-r/properties"
    r = audit.get("anon", path)
    assert r.status_code == 401, r.text[:300]
    assert challenge_of(r).startswith(f'Bearer realm="{REALM}"')
    for who in ("mallory", "bob", "alice", "ops"):
        assert audit.get(who, path).status_code == 403, who
    # The data-rights holder is let through (the audit repository has no
    # HiPS map, so the map itself is unknown).
    assert audit.get("dr", path).status_code == 404
    bad = requests.get(audit.url + path, headers={"Authorization": "Bearer " + audit.tokens["revoked"]}, timeout=60)
    assert bad.status_code == 401 and 'error="invalid_token"' in challenge_of(bad)


# --------------------------------------------------------------- TAP


def tap_sync(audit, who, query, **extra):
    r = requests.post(audit.url + "/api/tap/sync", data=dict(LANG="ADQL", QUERY=query, **extra),
                      headers=audit.headers(who), timeout=120)
    assert r.status_code == 200, r.text[:500]
    return votable(r.content).get_first_table().to_table()


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("collection", COLLECTIONS)
def test_tap_rows_follow_the_policy(audit, who, collection):
    """ivoa.obscore and survey.datasets show exactly the visible rows, as
    rows, as counts and through joins (filtered inside the SQL)."""
    expected = expected_ids(audit, who, collection)
    # ObsCore lists the science types; which they are, the public DR1 says.
    public = tap_sync(audit, "anon", "SELECT obs_id FROM ivoa.obscore WHERE obs_collection = 'DR1'")
    by_id = {r["dataset_id"]: r["type"] for r in audit.registered["DR1"]}
    obscore_types = {by_id[str(x)] for x in public["obs_id"]}
    assert {"calexp", "deepCoadd"} <= obscore_types
    table = tap_sync(audit, who, f"SELECT obs_id FROM ivoa.obscore WHERE obs_collection = '{collection}'")
    assert sorted(str(x) for x in table["obs_id"]) == expected_ids(audit, who, collection, obscore_types)
    datasets = tap_sync(audit, who, f"SELECT dataset_id FROM survey.datasets WHERE collection = '{collection}'")
    assert sorted(str(x) for x in datasets["dataset_id"]) == expected
    count = tap_sync(audit, who, f"SELECT COUNT(*) AS n FROM survey.datasets WHERE collection = '{collection}'")
    assert int(count["n"][0]) == len(expected)
    joined = tap_sync(audit, who, "SELECT p.dataset_id, p.input_id FROM survey.provenance AS p "
                                  f"JOIN survey.datasets AS d ON d.dataset_id = p.dataset_id "
                                  f"WHERE d.collection = '{collection}'")
    visible = set(expected)
    for out_id, in_id in zip(joined["dataset_id"], joined["input_id"]):
        assert str(out_id) in visible
        # an input of the same collection is listed only when visible too
        if str(in_id).startswith(collection + "."):
            assert str(in_id) in visible


def test_tap_maxrec_and_top_count_only_visible_rows(audit):
    """Rows are filtered before TOP/MAXREC: bob's first rows are his."""
    bob_all = expected_ids(audit, "bob", "GRP")
    table = tap_sync(audit, "bob", "SELECT TOP 3 dataset_id FROM survey.datasets WHERE collection = 'GRP' "
                                   "ORDER BY dataset_id")
    assert [str(x) for x in table["dataset_id"]] == bob_all[:3]
    table = tap_sync(audit, "bob", "SELECT dataset_id FROM survey.datasets WHERE collection = 'GRP' "
                                   "ORDER BY dataset_id", MAXREC="2")
    assert [str(x) for x in table["dataset_id"]] == bob_all[:2]


def test_tap_async_acts_with_the_owners_rights(audit):
    query = "SELECT dataset_id FROM survey.datasets WHERE collection = 'PRIV' ORDER BY dataset_id"
    results = {}
    for who in ("alice", "mallory"):
        r = requests.post(audit.url + "/api/tap/async", data={"LANG": "ADQL", "QUERY": query, "PHASE": "RUN"},
                          headers=audit.headers(who), allow_redirects=False, timeout=60)
        assert r.status_code == 303, r.text[:300]
        url = r.headers["Location"]
        assert final_phase(audit, who, url) == "COMPLETED"
        r = audit.get(who, urllib.parse.urlparse(url).path + "/results/result")
        assert r.status_code == 200
        results[who] = sorted(str(x) for x in votable(r.content).get_first_table().to_table()["dataset_id"])
        # The other user cannot see the job.
        other = "mallory" if who == "alice" else "alice"
        assert audit.get(other, urllib.parse.urlparse(url).path).status_code == 404
    assert results["alice"] == expected_ids(audit, "alice", "PRIV") and results["alice"]
    assert results["mallory"] == []


# --------------------------------------------------------------- reserved owner


def test_the_survey_owner_is_no_principal(audit, tmp_path):
    """Survey data are owned by the reserved name "survey": no token, JWT
    subject or upload can act as it (issue: a token named survey saw every
    embargoed and restricted dataset)."""
    for name in ("survey", "Survey", "anonymous"):
        r = run("token", "create", "--repo", audit.repo, "--user", name, check=False)
        assert r.returncode != 0
        assert "reserved" in (r.stdout + r.stderr), r.stdout + r.stderr
    # A user image cannot be ingested for the reserved owner either.
    image = tmp_path / "mine.fits"
    image.write_bytes(user_image(32))
    r = run("ingest", "--repo", audit.repo, "--collection", "user", "--owner", "survey", image, check=False)
    assert r.returncode != 0 and "reserved" in (r.stdout + r.stderr), r.stdout + r.stderr
    # A token stored for "survey" before names were reserved is refused on
    # every path: searches, files, uploads.
    info = make_token(audit.repo, "impostor", "--scope", "read:image,write:image")
    registry_execute(audit.repo, "UPDATE auth_token SET user_name = 'survey' WHERE token_id = ?", (info["id"],))
    headers = {"Authorization": "Bearer " + info["token"]}
    emb = record_of(audit, "EMB", "calexp")
    for method, path, kwargs in (
        ("GET", "/api/sia/query", {"params": {"COLLECTION": "EMB", "MAXREC": 10}}),
        ("GET", f"/api/files/{emb['dataset_id']}", {}),
        ("PUT", "/api/user/images/takeover", {"data": user_image(32)}),
    ):
        r = requests.request(method, audit.url + path, headers=headers, timeout=60, **kwargs)
        assert r.status_code == 401, (path, r.status_code, r.text[:300])
        assert 'error="invalid_token"' in challenge_of(r)
