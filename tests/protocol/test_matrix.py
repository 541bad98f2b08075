"""The endpoint x dataset kind x identity matrix through a real `pixserve serve`.

Every endpoint that takes a dataset ID or a position is crossed with every
kind of dataset the repository can hold and with every kind of caller:

    endpoints   SODA sync (PIXEL, CIRCLE, POS=CIRCLE, POS=RANGE, POS=POLYGON,
                POLYGON, no shape), SODA async (PIXEL, CIRCLE), DataLink
                links, /api/files/<id>, .../header, .../preview.png, SIA by
                ID, TAP (ivoa.obscore by obs_publisher_did), MOC around the
                dataset, HiPS progenitors of the cell under a coadd
    datasets    raw, bias, flat, calexp, calexp_comp, diffim (virtual: made
                on request), deepCoadd of a small
                simulated survey, each in a public collection (DR1) and in
                restricted ones (EMB embargoed, GRP group team1, DRT data
                rights, PRIV owner only); Level-3 user images uploaded over
                HTTP: single-HDU TAN (CDELT scales, or a CD matrix), multi-HDU
                IMAGE/MASK/VARIANCE, TAN-SIP distortion (CD, or PC + CDELT),
                shared publicly, with users and groups, with data-rights
                holders or kept private (an image without WCS is refused at
                upload: checked on its own)
    identities  anonymous, a plain user, a team1 member, a data-rights
                holder, staff (embargo exempt), the owner of the user images
                and of PRIV, a forged token, an expired token

Each cell checks the status and document type, that an invisible dataset
looks exactly like an unknown one, that bad tokens get 401 with a challenge,
that no response is a 5xx and that the server is still alive after every
request. A crashed server is restarted (the crash is reported with the
cell and the end of the server log) so one run reports the whole matrix;
each test collects all its failures into one assertion.

Under the sanitizer build (`make protocol-asan-test`, part of `make test`;
ASan/UBSan reports in the server log fail the test as well, UBSan's too
although it does not stop the server), by hand:

    make build-asan
    PIXSERVE_BIN=build-asan/pixserve UBSAN_OPTIONS=print_stacktrace=1 \
        /usr/bin/python3 -m pytest tests/protocol/test_matrix.py
"""
import hashlib
import io
import json
import math
import pathlib
import re
import secrets
import signal
import time
import urllib.parse
from dataclasses import dataclass

import numpy as np
import pytest
import requests
from astropy.io import fits
from astropy.wcs import WCS
from astropy_healpix.core import lonlat_to_healpix
import astropy.units as u

from conftest import run, start_server, stop_server
from spherical import angular_distance_deg, parse_stcs_polygon, unit_vectors
from test_auth import USER_RA, USER_DEC, assert_dali_error, challenge_of, make_token, put, user_image
from test_services import votable

REALM = "pixserve-matrix"
REPO_NAME = "matrix"
# Three visits, the best-seeing one the template: the two others get virtual
# difference images.
SURVEY = ["--visits", "3", "--bands", "r", "--detectors", "2", "--detector-size", "128", "--seed", "23",
          "--template-visits", "1"]

SURVEY_KINDS = ["raw", "bias", "flat", "calexp", "calexp_comp", "diffim", "deepCoadd"]
VISIT_TYPES = {"raw", "calexp", "calexp_comp", "diffim"}

# The caller of each identity (user, groups); forged and expired are tokens that must not work.
GOOD = ["anon", "user", "member", "rights", "staff", "owner"]
BAD = ["forged", "expired"]
IDENTITIES = GOOD + BAD
USERS = {
    "user": ("mallory", "team2"),
    "member": ("carol", "team1"),
    "rights": ("dana", "data-rights"),
    "staff": ("ops", "staff"),
    "owner": ("bob", None),
}
OWNER = USERS["owner"][0]

# Collections of the survey: ingest options and who may see what (written
# independently of the server's policy).
COLLECTIONS = {
    "DR1": [],
    "EMB": ["--embargo-hours", "10000000"],
    "GRP": ["--policy", "groups", "--groups", "team1"],
    "DRT": ["--policy", "data-rights"],
    "PRIV": ["--owner", OWNER, "--policy", "owner"],
}


def survey_audience(collection, dataset_type):
    if collection == "DR1":
        return set(GOOD)
    if collection == "EMB":
        return {"staff"} if dataset_type in VISIT_TYPES else set(GOOD)
    return {"GRP": {"member"}, "DRT": {"rights"}, "PRIV": {"owner"}}[collection]


# Level-3 images: name, kind, ACL (POST .../acl), audience. Kinds (64 x 64 pixels):
#   user-single     one HDU, TAN, CDELT scales (as astropy writes a WCS)
#   user-single-cd  one HDU, TAN, CD matrix
#   user-mef        empty primary + IMAGE/MASK/VARIANCE extensions, each with the TAN WCS (CDELT)
#   user-sip        one HDU, TAN-SIP distortion (A_/B_ order 2), CD matrix
#   user-sip-pc     one HDU, TAN-SIP distortion, PC matrix and CDELT
USER_IMAGES = [
    ("b_public", "user-single", {"POLICY": "public"}, set(GOOD)),
    ("b_private", "user-single", None, {"owner"}),
    ("b_cd_team", "user-single-cd", {"POLICY": "shared", "GROUP": "team1"}, {"owner", "member"}),
    ("b_mef_public", "user-mef", {"POLICY": "public"}, set(GOOD)),
    ("b_mef_shared", "user-mef", {"POLICY": "shared", "USER": "mallory", "GROUP": "team1"},
     {"owner", "user", "member"}),
    ("b_sip_public", "user-sip", {"POLICY": "public"}, set(GOOD)),
    ("b_sip_pc_rights", "user-sip-pc", {"POLICY": "data-rights"}, {"owner", "rights"}),
]
USER_KINDS = {kind for _, kind, _, _ in USER_IMAGES}

# What SODA may cut: sky shapes need a celestial WCS (raw amplifier data and
# the calibrations have none); PIXEL ranges and whole images need pixels on
# one grid (raw amplifier segments are not). Anything else is a 400
# UsageError ("cannot be cut out"), never a 5xx.
SKY_CUTTABLE = {"calexp", "calexp_comp", "diffim", "deepCoadd"} | USER_KINDS
PIXEL_CUTTABLE = SKY_CUTTABLE | {"bias", "flat"}

SODA_SHAPES = ["PIXEL", "CIRCLE", "POS=CIRCLE", "POS=RANGE", "POS=POLYGON", "POLYGON", "none"]
ASYNC_SHAPES = ["PIXEL", "CIRCLE"]
PIXELS = "[1:10,1:10]"

VOTABLE = "application/x-votable+xml"
SANITIZER_RE = re.compile(r"runtime error:|ERROR: AddressSanitizer|ERROR: LeakSanitizer|SUMMARY: UndefinedBehavior")


# ---------------------------------------------------------------- datasets


@dataclass
class Dataset:
    id: str
    kind: str          # raw ... deepCoadd, user-single, user-mef, user-sip
    collection: str
    dataset_type: str  # the registry's type (DPSUBTYPE)
    audience: set
    ra: float          # a point inside the footprint (calibrations: their detector's)
    dec: float
    radius: float      # degrees: small enough that shapes around (ra, dec) stay inside
    has_footprint: bool
    stored: pathlib.Path      # the file as stored in the repository (user images: as uploaded; virtual: None)
    digest: str = ""          # its SHA-256 (virtual: of its first download, the re-created file)
    download: pathlib.Path = None  # the same file downloaded through /api/files/<id>: the pixels' oracle

    @property
    def label(self):
        return f"{self.kind}@{self.collection} {self.id}"


def centre_of(s_region):
    """A point well inside a convex footprint and the distance to its nearest vertex (deg)."""
    vertices = parse_stcs_polygon(s_region)
    v = unit_vectors(vertices[:, 0], vertices[:, 1])
    c = v.mean(axis=0)
    c /= np.linalg.norm(c)
    ra = math.degrees(math.atan2(c[1], c[0])) % 360.0
    dec = math.degrees(math.asin(c[2]))
    return ra, dec, float(np.min(angular_distance_deg(v, c)))


def linear_header(ra, dec, n, sip=False, cd=True):
    """A TAN or TAN-SIP header with a CD matrix, or PC matrix and CDELT."""
    header = fits.Header()
    suffix = "-SIP" if sip else ""
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN" + suffix, "DEC--TAN" + suffix
    header["CRVAL1"], header["CRVAL2"] = ra, dec
    header["CRPIX1"], header["CRPIX2"] = n / 2, n / 2
    scale = 0.2 / 3600
    if cd:
        header["CD1_1"], header["CD1_2"], header["CD2_1"], header["CD2_2"] = -scale, 0.0, 0.0, scale
    else:
        header["CDELT1"], header["CDELT2"] = -scale, scale
        header["PC1_1"], header["PC1_2"], header["PC2_1"], header["PC2_2"] = 1.0, 0.0, 0.0, 1.0
    if sip:
        header["A_ORDER"], header["B_ORDER"] = 2, 2
        header["A_0_2"], header["A_1_1"], header["A_2_0"] = 2.0e-5, -1.0e-5, 3.0e-5
        header["B_0_2"], header["B_1_1"], header["B_2_0"] = -2.0e-5, 1.5e-5, 1.0e-5
    return header


def tan_header(ra, dec, n):
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [ra, dec]
    w.wcs.crpix = [n / 2, n / 2]
    w.wcs.cdelt = [-0.2 / 3600, 0.2 / 3600]
    return w.to_header()


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fits_bytes(hdul):
    buf = io.BytesIO()
    hdul.writeto(buf)
    return buf.getvalue()


def make_user_image(kind, ra, dec, n=64, seed=0):
    """A Level-3 image of the kind at (ra, dec): bytes, and its WCS for the footprint."""
    rng = np.random.default_rng(seed)
    single = {"user-single": lambda: tan_header(ra, dec, n),
              "user-single-cd": lambda: linear_header(ra, dec, n),
              "user-sip": lambda: linear_header(ra, dec, n, sip=True),
              "user-sip-pc": lambda: linear_header(ra, dec, n, sip=True, cd=False)}
    if kind in single:
        header = single[kind]()
        hdus = [fits.PrimaryHDU(rng.normal(size=(n, n)).astype(np.float32), header=header)]
    elif kind == "user-mef":
        header = tan_header(ra, dec, n)
        hdus = [fits.PrimaryHDU(),
                fits.ImageHDU(rng.normal(size=(n, n)).astype(np.float32), header=header, name="IMAGE"),
                fits.ImageHDU(rng.integers(0, 16, size=(n, n)).astype(np.int32), header=header, name="MASK"),
                fits.ImageHDU(rng.uniform(1, 2, size=(n, n)).astype(np.float32), header=header, name="VARIANCE")]
    else:
        raise AssertionError(kind)
    hdus[0].header["OBJECT"] = "matrix field"
    return fits_bytes(fits.HDUList(hdus)), header


# ---------------------------------------------------------------- the server and its failures


class Matrix:
    """The repository, its server (restarted after a crash), the tokens, the datasets."""

    def __init__(self, repo, config, tokens, authority):
        self.repo = repo
        self.config = config
        self.tokens = tokens
        self.authority = authority
        self.session = requests.Session()
        self.datasets = []
        self.hips = None           # (map name, order) or None
        self.hips_skip = ""        # why HiPS progenitors are not covered
        self.crashes = []          # every crash seen, for the report
        self.server = None
        self.log_seen = 0
        self.start()

    # --- server

    def start(self):
        self.server = start_server(self.repo, "--config", self.config)
        self.log_seen = 0

    @property
    def url(self):
        return self.server.url

    def new_log(self):
        """Server log lines since the last call (sanitizer reports)."""
        lines = self.server.log_lines[self.log_seen:]
        self.log_seen += len(lines)
        return "".join(lines)

    def check_log(self, fail, context):
        text = self.new_log()
        if SANITIZER_RE.search(text):
            m = SANITIZER_RE.search(text)
            fail(f"{context}: sanitizer report in the server log:\n{text[max(0, m.start() - 200):m.start() + 2500]}")

    def report_crash(self, fail, cell, method, path, status):
        # Let the log reader drain what the dying process wrote (a sanitizer's report).
        count, deadline = -1, time.monotonic() + 3
        while count != len(self.server.log_lines) and time.monotonic() < deadline:
            count = len(self.server.log_lines)
            time.sleep(0.2)
        lines = self.server.log_lines[self.log_seen:]
        self.log_seen += len(lines)
        log = "".join(lines)
        m = SANITIZER_RE.search(log)
        if m:
            tail = log[max(0, m.start() - 200):m.start() + 3000]
        else:  # the last lines that are not routine (the request that died is never logged)
            tail = "".join(line for line in lines[-20:] if not re.search(r"\[pixserve\] \[(info|warning)\]", line))
        how = f"signal {signal.Signals(-status).name}" if status < 0 else f"exit status {status}"
        what = f"{cell}: SERVER CRASHED ({how}) on {method} {path}"
        self.crashes.append(what)
        fail(what + (f"\n  --- server log ---\n{tail.rstrip()}\n  ---" if tail.strip() else ""))

    def headers(self, who):
        if who == "anon":
            return {}
        return {"Authorization": "Bearer " + self.tokens[who]}

    def did(self, dataset_id):
        return f"ivo://{self.authority}/{REPO_NAME}?{dataset_id}"

    # --- requests

    def request(self, fail, cell, method, path, who, **kwargs):
        """One request; None when the server died or did not answer (reported
        through fail, the server restarted). Every 5xx is reported too."""
        try:
            r = self.session.request(method, self.url + path, headers=self.headers(who), timeout=120,
                                     allow_redirects=False, **kwargs)
        except requests.RequestException as e:
            r = None
            error = e
        if r is None:
            deadline = time.monotonic() + 5
            while self.server.process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.05)
        status = self.server.process.poll()
        if status is not None:
            self.report_crash(fail, cell, method, path, status)
            self.session.close()
            self.session = requests.Session()
            self.start()
            return None
        if r is None:
            fail(f"{cell}: no answer to {method} {path} ({error}); the server is still running")
            return None
        if r.status_code >= 500:
            fail(f"{cell}: {r.status_code} (5xx) on {method} {path}: {describe(r)}")
        return r


def describe(r):
    if r is None:
        return "no response"
    body = r.content[:200]
    try:
        body = body.decode()
    except UnicodeDecodeError:
        body = repr(body)
    return f"{r.status_code} {r.headers.get('Content-Type', '-')} {body!r}"


class Failures:
    """Collects the failures of one test; asserts them all at the end."""

    def __init__(self):
        self.items = []

    def __call__(self, message):
        self.items.append(message)

    def check(self, condition, message):
        if not condition:
            self.items.append(message)
        return condition

    def assert_none(self, title):
        assert not self.items, f"{title}: {len(self.items)} failing cell(s)\n\n" + "\n\n".join(self.items)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    survey = tmp_path_factory.mktemp("matrix-survey")
    run("simulate", "--out", survey, *SURVEY)
    repo = tmp_path_factory.mktemp("matrix-repo") / REPO_NAME
    # Hard links: the coadd patches are 48 MB each, and every collection holds the same files.
    run("ingest", "--repo", repo, "--name", REPO_NAME, "--transfer", "hardlink", survey)
    for collection, options in COLLECTIONS.items():
        if collection != "DR1":
            run("ingest", "--repo", repo, "--collection", collection, "--transfer", "hardlink", *options, survey)
    authority = json.loads((repo / "pixserve-repo.json").read_text())["authority"]

    tokens = {}
    for who, (user, groups) in USERS.items():
        args = ["--scope", "read:image", "--scope", "write:image"]
        if groups:
            args += ["--groups", groups]
        tokens[who] = make_token(repo, user, *args)["token"]
    tokens["expired"] = make_token(repo, OWNER, "--expires", "1s")["token"]
    tokens["forged"] = "pxs_" + secrets.token_urlsafe(32)[:43]
    assert len(tokens["forged"]) == 47

    config = tmp_path_factory.mktemp("matrix-config") / "pixserve.yaml"
    config.write_text(
        "auth:\n"
        f"  realm: {REALM}\n"
        "  data_rights_groups: [data-rights]\n"
        "  embargo_exempt_groups: [staff]\n"
    )

    # HiPS of the coadds of one band (all collections: the map is made from
    # every coadd; what /progenitors lists is filtered per caller).
    registered = json.loads(run("query", "--repo", repo, "--format", "json").stdout)
    by_id = {r["dataset_id"]: r for r in registered}
    kinds_found = {r["type"] for r in registered}
    assert set(SURVEY_KINDS) <= kinds_found, f"the simulated survey lacks {set(SURVEY_KINDS) - kinds_found}"
    coadd = sorted(r["dataset_id"] for r in registered
                   if r["type"] == "deepCoadd" and r["collection"] == "DR1" and r["tract"] is not None)[0]
    band = by_id[coadd]["band"]
    hips = None
    hips_skip = ""
    built = run("hips", "--repo", repo, "--band", band, "--order", 8, "--formats", "fits", check=False)
    properties = repo / "hips" / f"deepCoadd-{band}" / "properties"
    if built.returncode == 0 and properties.exists():
        order = int(re.search(r"^hips_order\s*=\s*(\d+)", properties.read_text(), re.M).group(1))
        hips = (f"deepCoadd-{band}", order)
    else:
        hips_skip = (f"`pixserve hips --band {band}` failed ({built.returncode}): "
                     f"{(built.stdout + built.stderr).strip()[-500:]}")

    m = Matrix(repo, config, tokens, authority)
    m.hips, m.hips_skip = hips, hips_skip
    try:
        add_datasets(m, registered, tmp_path_factory)
    except BaseException:
        stop_server(m.server)
        raise
    time.sleep(1.2)  # the 1 s token has expired
    yield m
    status = stop_server(m.server)
    log = m.server.log()
    assert status == 0, f"pixserve serve exited with {status} after SIGTERM:\n{log[-3000:]}"
    assert not SANITIZER_RE.search(log), log[-5000:]


def add_datasets(m, registered, tmp_path_factory):
    """The datasets of the matrix: survey ones picked from the registry, Level-3 ones uploaded."""
    by_id = {r["dataset_id"]: r for r in registered}

    # One dataset of each kind in each collection: the same data ID in every collection.
    reference = {}
    for kind in SURVEY_KINDS:
        # Coadds: a patch (the logical coadd has tests of its own, test_mosaics.py).
        reference[kind] = sorted(r["dataset_id"] for r in registered
                                 if r["type"] == kind and r["collection"] == "DR1" and
                                 (kind != "deepCoadd" or r["tract"] is not None))[0]
    a_calexp = by_id[reference["calexp"]]
    for collection in COLLECTIONS:
        for kind in SURVEY_KINDS:
            dataset_id = collection + reference[kind][len("DR1"):]
            rec = by_id[dataset_id]
            assert rec["type"] == kind and rec["collection"] == collection, rec
            region = rec["s_region"] or a_calexp["s_region"]
            ra, dec, reach = centre_of(region)
            m.datasets.append(Dataset(dataset_id, kind, collection, kind, survey_audience(collection, kind),
                                      ra, dec, reach * 0.2, rec["s_region"] is not None,
                                      pathlib.Path(rec["file"]) if rec["file"] else None))

    # Level-3 images, uploaded by their owner over HTTP, each at its own place.
    fail = Failures()
    uploads = tmp_path_factory.mktemp("matrix-uploads")
    for i, (name, kind, acl, audience) in enumerate(USER_IMAGES):
        ra, dec = USER_RA + 0.05 * i, USER_DEC
        if name == "b_public":
            assert (ra, dec) == (USER_RA, USER_DEC)
            body = user_image(64)  # the image of the crash report: 64x64 TAN, one HDU, at (USER_RA, USER_DEC)
            header = fits.getheader(io.BytesIO(body))
        else:
            body, header = make_user_image(kind, ra, dec, seed=i)
        r = put(m, "owner", name, body)
        fail.check(r.status_code == 201, f"upload {name}: {describe(r)}")
        if acl is not None:
            r = requests.post(f"{m.url}/api/user/images/{name}/acl", data=acl, headers=m.headers("owner"), timeout=60)
            fail.check(r.status_code == 200, f"acl {name}: {describe(r)}")
        stored = uploads / f"{name}.fits"
        stored.write_bytes(body)
        c = WCS(header).pixel_to_world_values(31.5, 31.5)  # the middle of the 64 x 64 image
        m.datasets.append(Dataset(f"user.user.{OWNER}.{name}", kind, "user", "user", audience,
                                  float(c[0]), float(c[1]), 10 * 0.2 / 3600, True, stored))
    fail.assert_none("setting up the Level-3 images")

    # Every source file, downloaded once through /api/files by someone who may read it.
    downloads = tmp_path_factory.mktemp("matrix-downloads")
    for ds in m.datasets:
        ds.digest = sha256_of(ds.stored) if ds.stored else ""
        who = "owner" if "owner" in ds.audience else sorted(ds.audience)[0]
        ds.download = downloads / (ds.id + ".fits")
        with m.session.get(f"{m.url}/api/files/{ds.id}", headers=m.headers(who), stream=True, timeout=120) as r:
            fail.check(r.status_code == 200, f"download of {ds.id} as {who}: {describe(r)}")
            with open(ds.download, "wb") as f:
                for block in r.iter_content(1 << 20):
                    f.write(block)
        if not ds.stored:  # virtual: re-created on this first request; later ones must give the same bytes
            ds.digest = sha256_of(ds.download)
        fail.check(sha256_of(ds.download) == ds.digest, f"/api/files/{ds.id} is not the stored file")
    fail.assert_none("downloading the source files")
    assert m.server.process.poll() is None, m.server.log()[-3000:]


# ---------------------------------------------------------------- common checks


def cell_of(endpoint, ds, who):
    return f"[{endpoint} | {ds.label} | {who}]"


def error_text(r):
    infos = [i for i in votable(r.content).resources[0].infos if i.name == "QUERY_STATUS"]
    return infos[0].content or "" if infos else ""


def check_dali_error(fail, cell, r, status=None, prefix=None):
    """A DALI error document (VOTable, QUERY_STATUS=ERROR) with the status."""
    if status is not None and r.status_code != status:
        fail(f"{cell}: expected {status} with a DALI error, got {describe(r)}")
        return False
    try:
        assert_dali_error(r)
    except Exception as e:  # AssertionError, or the pedantic parser
        fail(f"{cell}: not a DALI error document ({e!r}): {describe(r)}")
        return False
    if prefix and not error_text(r).startswith(prefix):
        fail(f"{cell}: error message does not start with {prefix!r}: {error_text(r)[:200]!r}")
        return False
    return True


def check_refused(fail, cell, r):
    """forged/expired tokens: 401, a Bearer challenge naming invalid_token, a DALI error."""
    if r is None:
        return
    if r.status_code != 401:
        fail(f"{cell}: a bad token must get 401, got {describe(r)}")
        return
    try:
        c = challenge_of(r)
    except AssertionError:
        fail(f"{cell}: 401 without WWW-Authenticate: {dict(r.headers)}")
        return
    if not c.startswith(f'Bearer realm="{REALM}"') or 'error="invalid_token"' not in c:
        fail(f"{cell}: bad challenge {c!r}")
    check_dali_error(fail, cell, r)


def same_as_unknown(fail, cell, r, unknown, dataset_id):
    """An invisible dataset answers exactly as an unknown ID (modulo the ID)."""
    if r is None or unknown is None:
        return
    fake = dataset_id + "x"
    a = r.content.replace(dataset_id.encode(), b"@")
    b = unknown.content.replace(fake.encode(), b"@")
    if (r.status_code, r.headers.get("Content-Type")) != (unknown.status_code, unknown.headers.get("Content-Type")) \
            or a != b:
        fail(f"{cell}: invisible differs from unknown\n  invisible: {describe(r)}\n  unknown:   {describe(unknown)}")


def is_votable(r):
    return r.headers.get("Content-Type", "").startswith(VOTABLE)


def table_of(fail, cell, r):
    try:
        return votable(r.content).get_first_table().to_table()
    except Exception as e:
        fail(f"{cell}: unreadable VOTable ({e!r}): {describe(r)}")
        return None


def planes(hdul):
    """The 2-D image planes of a file, in order."""
    return [h for h in hdul if h.is_image and h.data is not None and h.data.ndim == 2]


# ---------------------------------------------------------------- SODA sync


def shape_params(ds, shape):
    ra, dec, r = ds.ra, ds.dec, ds.radius
    dra = r / max(math.cos(math.radians(dec)), 1e-6)
    square = [(ra - dra, dec - r), (ra + dra, dec - r), (ra + dra, dec + r), (ra - dra, dec + r)]
    vertices = " ".join(f"{a!r} {d!r}" for a, d in square)
    return {
        "PIXEL": [("PIXEL", PIXELS)],
        "CIRCLE": [("CIRCLE", f"{ra!r} {dec!r} {r!r}")],
        "POS=CIRCLE": [("POS", f"CIRCLE {ra!r} {dec!r} {r!r}")],
        "POS=RANGE": [("POS", f"RANGE {ra - dra!r} {ra + dra!r} {dec - r!r} {dec + r!r}")],
        "POS=POLYGON": [("POS", f"POLYGON {vertices}")],
        "POLYGON": [("POLYGON", vertices)],
        "none": [],
    }[shape]


def soda_expectation(ds, shape):
    """200 (a FITS cutout) or 400 (UsageError: cannot be cut out) for a visible dataset."""
    if shape in ("PIXEL", "none"):
        return 200 if ds.kind in PIXEL_CUTTABLE else 400
    return 200 if ds.kind in SKY_CUTTABLE else 400


def check_cutout(fail, cell, ds, shape, content, sync=True):
    """A readable FITS (sync: with PSNCUT), cut planes of this dataset; their
    pixels equal the source's."""
    try:
        hdul = fits.open(io.BytesIO(content))
        hdul.verify("exception")
    except Exception as e:
        fail(f"{cell}: the cutout is not a valid FITS file ({e!r}): {content[:200]!r}")
        return
    with hdul:
        if sync and hdul[0].header.get("PSNCUT", 0) < 1:
            fail(f"{cell}: no PSNCUT >= 1 in the primary header")
        cut = [h for h in hdul[1:] if h.is_image and h.data is not None]
        if not cut:
            fail(f"{cell}: no cut planes")
            return
        for h in cut:
            if h.header.get("PSDSID") != ds.id:
                fail(f"{cell}: cut plane with PSDSID {h.header.get('PSDSID')!r}")
        if shape not in ("PIXEL", "none") and ds.kind == "deepCoadd":
            return  # assembled from the tract's patches: its pixels are test_soda's business
        with fits.open(ds.download) as source:
            compare_planes(fail, cell, shape, planes(source), cut)


def compare_planes(fail, cell, shape, src, cut):
    """PIXEL: the [1:10,1:10] corner; none: the whole plane; a shape: the
    source pixels under PSBOX, smaller than the image."""
    if len(cut) != len(src):
        fail(f"{cell}: {len(cut)} cut planes for {len(src)} source planes")
        return
    for s, h in zip(src, cut):
        name, data = s.name, s.data
        if shape == "PIXEL":
            expected = data[0:10, 0:10]
        elif shape == "none":
            expected = data
        else:
            m = re.fullmatch(r"\[(\d+):(\d+),(\d+):(\d+)\]", h.header.get("PSBOX", ""))
            if not m:
                fail(f"{cell}: plane {name} has no PSBOX")
                continue
            x1, x2, y1, y2 = map(int, m.groups())
            expected = data[y1 - 1:y2, x1 - 1:x2]
            if not (h.data.shape[0] < data.shape[0] and h.data.shape[1] < data.shape[1]):
                fail(f"{cell}: plane {name} of a small shape is {h.data.shape}, the image {data.shape}")
        if expected.shape != h.data.shape or not np.array_equal(expected, h.data, equal_nan=True):
            fail(f"{cell}: plane {name} {h.data.shape} differs from the source's pixels {expected.shape}")


def soda_sync_cells(m, fail, who, shape):
    for ds in m.datasets:
        cell = cell_of(f"SODA sync {shape}", ds, who)
        params = [("ID", m.did(ds.id))] + shape_params(ds, shape)
        r = m.request(fail, cell, "GET", "/api/soda/sync", who, params=params)
        if r is None:
            continue
        if who in BAD:
            check_refused(fail, cell, r)
        elif who in ds.audience:
            expected = soda_expectation(ds, shape)
            if expected == 200:
                if r.status_code != 200 or r.headers.get("Content-Type") != "application/fits":
                    fail(f"{cell}: expected 200 application/fits, got {describe(r)}")
                else:
                    check_cutout(fail, cell, ds, shape, r.content)
            else:
                if check_dali_error(fail, cell, r, 400, "UsageError:") and "cannot be cut out" not in error_text(r):
                    fail(f"{cell}: the 400 does not say the dataset cannot be cut out: {error_text(r)[:200]!r}")
        else:
            fake = [("ID", m.did(ds.id + "x"))] + shape_params(ds, shape)
            unknown = m.request(fail, cell + " (unknown ID)", "GET", "/api/soda/sync", who, params=fake)
            if unknown is not None:
                check_dali_error(fail, cell + " (unknown ID)", unknown, 404, "UsageError:")
            same_as_unknown(fail, cell, r, unknown, ds.id)


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("shape", SODA_SHAPES)
def test_soda_sync(matrix, shape, who):
    fail = Failures()
    soda_sync_cells(matrix, fail, who, shape)
    matrix.check_log(fail, f"SODA sync {shape} as {who}")
    fail.assert_none(f"SODA sync {shape} as {who}")


def test_public_user_image_cutout_anonymously(matrix):
    """The crash report: a PIXEL cutout of a public single-HDU user image, anonymously."""
    fail = Failures()
    did = matrix.did(f"user.user.{OWNER}.b_public")
    r = matrix.request(fail, "[SODA sync PIXEL | b_public | anon]", "GET", "/api/soda/sync", "anon",
                       params={"ID": did, "PIXEL": PIXELS})
    if r is not None:
        fail.check(r.status_code == 200 and r.headers.get("Content-Type") == "application/fits",
                   f"expected a FITS cutout, got {describe(r)}")
    fail.assert_none("public user image cutout")


# ---------------------------------------------------------------- SODA async


def job_path(location):
    return urllib.parse.urlparse(location).path


def wait_job(m, fail, cell, who, path, timeout=120):
    """The final phase of a job, or None (server died, or no end)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = m.request(fail, cell, "GET", path + "/phase", who)
        if r is None:
            return None
        if r.status_code != 200:
            fail(f"{cell}: job phase: {describe(r)}")
            return None
        phase = r.text.strip()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            return phase
        time.sleep(0.02)
    fail(f"{cell}: the job did not end within {timeout} s")
    return None


def async_job(m, fail, cell, who, params):
    """Creates and runs a SODA job, waits for its end: (phase, error text, job path), or None."""
    r = m.request(fail, cell, "POST", "/api/soda/async", who, data=params + [("PHASE", "RUN")])
    if r is None:
        return None
    if who in BAD:
        check_refused(fail, cell, r)
        return None
    if r.status_code != 303 or "Location" not in r.headers:
        fail(f"{cell}: job creation: expected 303 with a Location, got {describe(r)}")
        return None
    path = job_path(r.headers["Location"])
    phase = wait_job(m, fail, cell, who, path)
    if phase is None:
        return None
    error = None
    if phase == "ERROR":
        e = m.request(fail, cell, "GET", path + "/error", who)
        if e is None:
            return None
        if e.status_code != 200:
            fail(f"{cell}: the job's error resource: {describe(e)}")
            return None
        # A DALI error document (its QUERY_STATUS message), or plain text.
        error = error_text(e) if is_votable(e) else e.text.strip()
    return phase, error, path


def soda_async_cells(m, fail, who):
    # One job at a time, so that a crash is charged to the job that caused it.
    for ds in m.datasets:
        for shape in ASYNC_SHAPES:
            cell = cell_of(f"SODA async {shape}", ds, who)
            end = async_job(m, fail, cell, who, [("ID", m.did(ds.id))] + shape_params(ds, shape))
            if end is None:
                continue
            phase, error, path = end
            if who in ds.audience:
                if soda_expectation(ds, shape) == 200:
                    if phase != "COMPLETED":
                        fail(f"{cell}: expected COMPLETED, got {phase}: {(error or '')[:200]!r}")
                        continue
                    r = m.request(fail, cell, "GET", path + "/results/cutout-1", who)
                    if r is None:
                        continue
                    if r.status_code != 200 or r.headers.get("Content-Type") != "application/fits":
                        fail(f"{cell}: result cutout-1: expected 200 application/fits, got {describe(r)}")
                    else:
                        check_cutout(fail, cell, ds, shape, r.content, sync=False)
                elif phase != "ERROR" or not (error or "").startswith("UsageError") \
                        or "cannot be cut out" not in (error or ""):
                    fail(f"{cell}: expected ERROR (UsageError: cannot be cut out), got {phase}: {(error or '')[:200]!r}")
            else:
                unknown = async_job(m, fail, cell + " (unknown ID)", who,
                                    [("ID", m.did(ds.id + "x"))] + shape_params(ds, shape))
                if unknown is None:
                    continue
                if phase != "ERROR" or unknown[0] != "ERROR":
                    fail(f"{cell}: invisible and unknown jobs must both fail: {phase} vs {unknown[0]}")
                elif (error or "").replace(ds.id, "@") != (unknown[1] or "").replace(ds.id + "x", "@"):
                    fail(f"{cell}: invisible differs from unknown\n  invisible: {(error or '')[:200]!r}\n"
                         f"  unknown:   {(unknown[1] or '')[:200]!r}")


@pytest.mark.parametrize("who", IDENTITIES)
def test_soda_async(matrix, who):
    fail = Failures()
    soda_async_cells(matrix, fail, who)
    matrix.check_log(fail, f"SODA async as {who}")
    fail.assert_none(f"SODA async as {who}")


# ---------------------------------------------------------------- DataLink, files, SIA, TAP


def by_id_cells(m, fail, who, endpoint, request, visible, invisible=None):
    """The common frame: bad tokens refused; visible checked by `visible`;
    invisible equal to an unknown ID (and checked by `invisible`)."""
    for ds in m.datasets:
        cell = cell_of(endpoint, ds, who)
        r = request(ds.id, cell)
        if r is None:
            continue
        if who in BAD:
            check_refused(fail, cell, r)
        elif who in ds.audience:
            visible(cell, ds, r)
        else:
            unknown = request(ds.id + "x", cell + " (unknown ID)")
            same_as_unknown(fail, cell, r, unknown, ds.id)
            if invisible is not None:
                invisible(cell, ds, r)


def datalink_cells(m, fail, who):
    def request(dataset_id, cell):
        return m.request(fail, cell, "GET", "/api/datalink/links", who, params={"ID": m.did(dataset_id)})

    def visible(cell, ds, r):
        if r.status_code != 200 or not is_votable(r):
            fail(f"{cell}: expected a 200 DataLink VOTable, got {describe(r)}")
            return
        table = table_of(fail, cell, r)
        if table is None:
            return
        this = [row for row in table if str(row["semantics"]) == "#this"]
        if len(this) != 1 or not str(this[0]["access_url"]).endswith("/api/files/" + ds.id):
            fail(f"{cell}: expected one #this link to /api/files/{ds.id}: {describe(r)}")
        errors = [str(row["error_message"]) for row in table
                  if not np.ma.is_masked(row["error_message"]) and str(row["error_message"])]
        if errors:
            fail(f"{cell}: error rows for a visible dataset: {errors[:3]}")

    by_id_cells(m, fail, who, "DataLink", request, visible)


FILE_ENDPOINTS = {
    "file": ("/api/files/{}", "application/fits"),
    "header": ("/api/files/{}/header", "text/plain"),
    "preview": ("/api/files/{}/preview.png", "image/png"),
}


def file_cells(m, fail, who, endpoint):
    pattern, content_type = FILE_ENDPOINTS[endpoint]

    def request(dataset_id, cell):
        return m.request(fail, cell, "GET", pattern.format(urllib.parse.quote(dataset_id)), who)

    def visible(cell, ds, r):
        if r.status_code != 200 or not r.headers.get("Content-Type", "").startswith(content_type):
            fail(f"{cell}: expected 200 {content_type}, got {describe(r)}")
        elif endpoint == "file" and hashlib.sha256(r.content).hexdigest() != ds.digest:
            fail(f"{cell}: the file differs from the one stored ({len(r.content)} bytes)")
        elif endpoint == "header" and not r.text.startswith("SIMPLE  ="):
            fail(f"{cell}: the header text does not start with SIMPLE: {r.text[:200]!r}")
        elif endpoint == "preview" and r.content[:8] != b"\x89PNG\r\n\x1a\n":
            fail(f"{cell}: not a PNG: {r.content[:20]!r}")

    by_id_cells(m, fail, who, endpoint, request, visible)


def one_row(fail):
    """Checks of a VOTable by ID: the dataset's one row when visible, no row when not."""
    def visible(cell, ds, r):
        if r.status_code != 200 or not is_votable(r):
            fail(f"{cell}: expected a 200 VOTable, got {describe(r)}")
            return
        table = table_of(fail, cell, r)
        if table is not None and [str(x) for x in table["obs_id"]] != [ds.id]:
            fail(f"{cell}: expected the one row {ds.id}, got {[str(x) for x in table['obs_id']]}")

    def invisible(cell, ds, r):
        if r.status_code != 200 or not is_votable(r):
            fail(f"{cell}: expected a 200 VOTable without rows, got {describe(r)}")
            return
        table = table_of(fail, cell, r)
        if table is not None and len(table) != 0:
            fail(f"{cell}: an invisible dataset has {len(table)} row(s)")

    return visible, invisible


def sia_cells(m, fail, who):
    def request(dataset_id, cell):
        return m.request(fail, cell, "GET", "/api/sia/query", who, params={"ID": m.did(dataset_id)})

    by_id_cells(m, fail, who, "SIA ID", request, *one_row(fail))


def tap_cells(m, fail, who):
    def request(dataset_id, cell):
        query = f"SELECT * FROM ivoa.obscore WHERE obs_publisher_did = '{m.did(dataset_id)}'"
        return m.request(fail, cell, "POST", "/api/tap/sync", who, data={"LANG": "ADQL", "QUERY": query})

    by_id_cells(m, fail, who, "TAP", request, *one_row(fail))


# ---------------------------------------------------------------- MOC and HiPS


def moc_cells(m, fail, who):
    def moc(ds, collection, as_who, cell):
        params = {"POS": f"CIRCLE {ds.ra!r} {ds.dec!r} {ds.radius!r}", "COLLECTION": collection,
                  "DPSUBTYPE": ds.dataset_type, "ORDER": 10, "FORMAT": "json"}
        return m.request(fail, cell, "GET", "/api/moc/query", as_who, params=params)

    for ds in m.datasets:
        cell = cell_of("MOC", ds, who)
        r = moc(ds, ds.collection, who, cell)
        if r is None:
            continue
        if who in BAD:
            check_refused(fail, cell, r)
            continue
        if r.status_code != 200 or not r.headers.get("Content-Type", "").startswith("application/json"):
            fail(f"{cell}: expected 200 application/json, got {describe(r)}")
            continue
        if who in ds.audience and ds.has_footprint:
            # The same footprint as the public twin (survey) or as the owner sees it (user images).
            ref_who, ref_collection = ("anon", "DR1") if ds.collection != "user" else ("owner", "user")
            ref = moc(ds, ref_collection, ref_who, cell + " (reference)")
            try:
                empty = not r.json() or all(not v for v in r.json().values())
            except ValueError:
                fail(f"{cell}: not JSON: {describe(r)}")
                continue
            if empty:
                fail(f"{cell}: an empty MOC around a visible dataset: {describe(r)}")
            elif ref is not None and r.content != ref.content:
                fail(f"{cell}: differs from the MOC {ref_who} gets for {ref_collection}: {describe(r)} vs "
                     f"{describe(ref)}")
        else:
            # Invisible, or no footprint (calibrations): what an empty selection gives.
            nothing = moc(ds, "NO_SUCH_COLLECTION", who, cell + " (empty selection)")
            if nothing is not None and (r.status_code, r.content) != (nothing.status_code, nothing.content):
                fail(f"{cell}: expected the empty MOC {describe(nothing)}, got {describe(r)}")


def hips_cells(m, fail, who):
    name, order = m.hips
    coadds = [ds for ds in m.datasets if ds.kind == "deepCoadd"]
    visible_ids = {ds.id for ds in m.datasets if who in ds.audience}
    known = {ds.id for ds in m.datasets}
    for ds in coadds:
        cell = cell_of("HiPS progenitors", ds, who)
        npix = int(lonlat_to_healpix(ds.ra * u.deg, ds.dec * u.deg, 2 ** order, order="nested"))
        r = m.request(fail, cell, "GET", "/api/hips/progenitors", who,
                      params={"MAP": name, "ORDER": order, "NPIX": npix})
        if r is None:
            continue
        if who in BAD:
            check_refused(fail, cell, r)
            continue
        if r.status_code != 200 or not is_votable(r):
            fail(f"{cell}: expected a 200 VOTable, got {describe(r)}")
            continue
        table = table_of(fail, cell, r)
        if table is None:
            continue
        got = {str(x) for x in table["obs_id"]}
        if (ds.id in got) != (who in ds.audience):
            fail(f"{cell}: listed={ds.id in got}, visible={who in ds.audience}: {sorted(got)}")
        leaked = sorted(i for i in got if (i in known and i not in visible_ids) or (
            i.split(".")[0] in COLLECTIONS and who not in survey_audience(i.split(".")[0], "deepCoadd")))
        if leaked:
            fail(f"{cell}: invisible coadds listed: {leaked}")


# ---------------------------------------------------------------- the table of endpoints


ENDPOINTS = {
    "datalink": datalink_cells,
    "file": lambda m, fail, who: file_cells(m, fail, who, "file"),
    "header": lambda m, fail, who: file_cells(m, fail, who, "header"),
    "preview": lambda m, fail, who: file_cells(m, fail, who, "preview"),
    "sia": sia_cells,
    "tap": tap_cells,
    "moc": moc_cells,
    "hips-progenitors": hips_cells,
}


@pytest.mark.parametrize("who", IDENTITIES)
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_endpoint(matrix, endpoint, who):
    if endpoint == "hips-progenitors" and matrix.hips is None:
        pytest.skip("no HiPS map: " + matrix.hips_skip)
    fail = Failures()
    ENDPOINTS[endpoint](matrix, fail, who)
    matrix.check_log(fail, f"{endpoint} as {who}")
    fail.assert_none(f"{endpoint} as {who}")


# ---------------------------------------------------------------- uploads without WCS


def test_user_image_without_wcs_is_refused(matrix):
    """Level-3 uploads need a celestial WCS (docs/auth.md): a 400 DALI error, nothing registered."""
    fail = Failures()
    body = fits_bytes(fits.HDUList([fits.PrimaryHDU(np.zeros((16, 16), dtype=np.float32))]))
    r = put(matrix, "owner", "b_nowcs", body)
    check_dali_error(fail, "[upload without WCS | owner]", r, 400)
    fail.check(matrix.server.process.poll() is None, "the server died on an upload without WCS")
    r = matrix.request(fail, "[file | b_nowcs | owner]", "GET", f"/api/files/user.user.{OWNER}.b_nowcs", "owner")
    if r is not None:
        fail.check(r.status_code == 404, f"an image refused at upload is served: {describe(r)}")
    fail.assert_none("upload without WCS")


def test_report_crashes(matrix):
    """Last: every crash of the run in one place (each is also a failure of its own test)."""
    assert not matrix.crashes, f"{len(matrix.crashes)} crash(es):\n" + "\n".join(matrix.crashes)
