#!/usr/bin/python3
"""Forced photometry benchmark: /api/photometry on 1,000 positions over all
epochs, /sync (in requests of 100 positions, its limit) and /async (one job),
against Debian's photutils on the same images and positions.

  /usr/bin/python3 bench/photometry.py BUILD/pixserve [WORKDIR]

- A survey of 8 visits x 4 detectors of 512 x 512 pixels is simulated,
  ingested and served.
- 1,000 positions are random pixels of random calexps, each measured on
  every epoch whose image contains it.
- pixserve: aperture photometry (2" radius, exact overlap) timed end to end
  over HTTP, the images read from their files on each request.
- photutils: aperture_photometry (method='exact', VARIANCE as error, the
  rejected mask bits as mask) of the same rows, per image with all its
  positions at once, the images already in memory (file reading not timed),
  and per position.
Printed: measurements, seconds, measurements per second and the ratios.
"""
import argparse
import io
import json
import math
import os
import random
import sys
import tempfile
import time

import numpy as np
import requests
from astropy.io import fits
from astropy.io.votable import parse_single_table
from astropy.wcs import WCS
from photutils.aperture import CircularAperture, aperture_photometry

from pixserve_process import run, start_server

SIM = ["--visits", "8", "--detectors", "4", "--detector-size", "512", "--seed", "3", "--no-coadds"]
POSITIONS = 1000
SYNC_BATCH = 100
RADIUS_ARCSEC = 2.0
REJECTED = ("BAD", "SAT", "CR", "NO_DATA")


def table_of(content):
    return parse_single_table(io.BytesIO(content)).to_table()


def sync(url, positions):
    rows = []
    for i in range(0, len(positions), SYNC_BATCH):
        params = [("POS", f"{ra} {dec}") for ra, dec in positions[i:i + SYNC_BATCH]]
        r = requests.post(url + "/api/photometry/sync", data=params + [("RADIUS", str(RADIUS_ARCSEC))], timeout=600)
        r.raise_for_status()
        rows.append(table_of(r.content))
    return rows


def asynchronous(url, positions):
    params = [("POS", f"{ra} {dec}") for ra, dec in positions] + [("RADIUS", str(RADIUS_ARCSEC)), ("PHASE", "RUN")]
    r = requests.post(url + "/api/photometry/async", data=params, allow_redirects=False, timeout=60)
    assert r.status_code == 303, r.text[:300]
    job = r.headers["Location"] if r.headers["Location"].startswith("http") else url + r.headers["Location"]
    while True:
        phase = requests.get(job + "/phase", timeout=60).text.strip()
        if phase in ("COMPLETED", "ERROR", "ABORTED"):
            break
        time.sleep(0.05)
    assert phase == "COMPLETED", requests.get(job, timeout=60).text[:1000]
    return table_of(requests.get(job + "/results/result", timeout=60).content)


class Image:
    def __init__(self, path):
        with fits.open(path) as hdul:
            self.image = hdul["IMAGE"].data.astype(float)
            variance = hdul["VARIANCE"].data.astype(float)
            mask = hdul["MASK"].data
            bits = {k[3:]: v for k, v in hdul["MASK"].header.items() if k.startswith("MP_")}
            cd = np.array([[hdul["IMAGE"].header.get(f"CD{i}_{j}", 0.0) for j in (1, 2)] for i in (1, 2)])
        reject = sum(1 << bits[n] for n in REJECTED)
        self.bad = ((mask & reject) != 0) | ~np.isfinite(self.image) | ~np.isfinite(variance)
        self.error = np.sqrt(np.where(self.bad, 0.0, variance))
        self.radius = RADIUS_ARCSEC / (math.sqrt(abs(np.linalg.det(cd))) * 3600)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary")
    parser.add_argument("workdir", nargs="?")
    args = parser.parse_args()
    work = os.path.abspath(args.workdir or tempfile.mkdtemp(prefix="pixserve-bench-photometry."))
    survey, repo = os.path.join(work, "survey"), os.path.join(work, "repo")
    if not os.path.exists(repo):
        run(args.binary, "simulate", "--out", survey, *SIM)
        run(args.binary, "ingest", "--repo", repo, survey)
    files = {d["dataset_id"]: d["file"] for d in
             json.loads(run(args.binary, "query", "--repo", repo, "--type", "calexp", "--format", "json").stdout)}
    # Positions on the images: random pixels of random calexps, to the sky.
    random.seed(1)
    wcs = {k: WCS(fits.getheader(v, "IMAGE")) for k, v in files.items()}
    positions = []
    for _ in range(POSITIONS):
        w = wcs[random.choice(sorted(wcs))]
        ra, dec = w.all_pix2world([[random.uniform(5, w.pixel_shape[0] - 6), random.uniform(5, w.pixel_shape[1] - 6)]],
                                  0)[0]
        positions.append((float(ra), float(dec)))
    server, url = start_server(args.binary, repo)
    try:
        t0 = time.perf_counter()
        sync_rows = sync(url, positions)
        t_sync = time.perf_counter() - t0
        t0 = time.perf_counter()
        job_rows = asynchronous(url, positions)
        t_async = time.perf_counter() - t0
    finally:
        server.terminate()
        server.wait()
    n = sum(len(t) for t in sync_rows)
    assert n == len(job_rows), (n, len(job_rows))
    images = {k: Image(v) for k, v in files.items() if k in set(str(i) for i in job_rows["obs_id"])}
    by_image = {}
    for row in job_rows:
        by_image.setdefault(str(row["obs_id"]), []).append((float(row["x"]), float(row["y"])))
    t0 = time.perf_counter()
    for k, xy in by_image.items():
        i = images[k]
        aperture_photometry(i.image, CircularAperture(xy, r=i.radius), error=i.error, mask=i.bad, method="exact")
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k, xy in by_image.items():
        i = images[k]
        for p in xy:
            aperture_photometry(i.image, CircularAperture(p, r=i.radius), error=i.error, mask=i.bad, method="exact")
    t_single = time.perf_counter() - t0
    print(f"{len(positions)} positions, {n} measurements on {len(by_image)} calexps")
    print(f"{'engine':<48} {'seconds':>8} {'meas/s':>10} {'vs sync':>8}")
    for name, t in [("pixserve /sync (HTTP, 100 positions a request)", t_sync),
                    ("pixserve /async (one UWS job)", t_async),
                    ("photutils, per image (images in memory)", t_batched),
                    ("photutils, per position (images in memory)", t_single)]:
        print(f"{name:<48} {t:8.3f} {n / t:10.0f} {t_sync / t:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
