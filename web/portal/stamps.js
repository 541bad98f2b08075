// The stamp gallery: every calibrated exposure (calexp) that covers one
// position, cut out small around it with SODA, drawn side by side, and
// measured with aperture photometry for the light curve.
import { getVOTable, request, serviceUrl } from "./api.js";
import { readImage, skyToPixel } from "./fits.js";
import { drawLightCurve } from "./lightcurve.js";
import { tableObjects } from "./votable.js";

const PARALLEL = 4;  // cutouts in flight at once: enough to hide latency, kind to the server

// Sum in a circle of radius `r` around (x, y) minus the median of the
// annulus [r_in, r_out] times the aperture's pixel count: the flux above the
// local sky, in the image's pixel units.
export function apertureFlux(image, x, y, r, rIn, rOut) {
  let sum = 0;
  let n = 0;
  const sky = [];
  const reach = Math.ceil(rOut);
  for (let j = Math.floor(y) - reach; j <= Math.ceil(y) + reach; j++) {
    if (j < 0 || j >= image.height) continue;
    for (let i = Math.floor(x) - reach; i <= Math.ceil(x) + reach; i++) {
      if (i < 0 || i >= image.width) continue;
      const v = image.pixels[j * image.width + i];
      if (!Number.isFinite(v)) continue;
      const d = Math.hypot(i - x, j - y);
      if (d <= r) { sum += v; n++; } else if (d >= rIn && d <= rOut) sky.push(v);
    }
  }
  if (!n || sky.length < 5) return NaN;
  sky.sort((a, b) => a - b);
  return sum - n * sky[Math.floor(sky.length / 2)];
}

// The image on a canvas with an asinh stretch between its 1st and 99.5th
// percentiles, north up as FITS stores it (row 0 at the bottom).
function drawStamp(canvas, image, mark) {
  canvas.width = image.width;
  canvas.height = image.height;
  const finite = Array.from(image.pixels).filter(Number.isFinite).sort((a, b) => a - b);
  const lo = finite[Math.floor(finite.length * 0.01)] ?? 0;
  const hi = finite[Math.floor(finite.length * 0.995)] ?? 1;
  const scale = Math.asinh(10);
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(image.width, image.height);
  for (let j = 0; j < image.height; j++) {
    for (let i = 0; i < image.width; i++) {
      const v = image.pixels[j * image.width + i];
      const t = Number.isFinite(v) ? Math.asinh(Math.max(0, (v - lo) / (hi - lo || 1)) * 10) / scale : 0;
      const o = ((image.height - 1 - j) * image.width + i) * 4;
      img.data[o] = img.data[o + 1] = img.data[o + 2] = Math.min(255, Math.round(t * 255));
      img.data[o + 3] = 255;
    }
  }
  ctx.putImageData(img, 0, 0);
  if (mark) {
    ctx.strokeStyle = "#ff4dff";
    ctx.beginPath();
    ctx.arc(mark.x + 0.5, image.height - 1 - mark.y + 0.5, mark.r, 0, 2 * Math.PI);
    ctx.stroke();
  }
}

async function inBatches(items, work) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i], i).catch((e) => ({ error: e }));
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, items.length) }, worker));
  return results;
}

export function createStampGallery(root, { onError, onStatus }) {
  const gallery = root.querySelector("#stamp-list");
  const plot = root.querySelector("#lightcurve");
  const form = root.querySelector("#stamp-form");
  let generation = 0;

  // ra, dec in degrees; options from the form (arcsec and pixels).
  async function run(ra, dec, { size, aperture, band }) {
    const mine = ++generation;
    gallery.replaceChildren();
    drawLightCurve(plot, []);
    // A tiny circle: SIAv2 POS matches footprints that overlap it, so these
    // are the calexps that contain the position.
    const params = [["POS", `CIRCLE ${ra} ${dec} 0.00001`], ["DPSUBTYPE", "calexp"], ["MAXREC", "1000"]];
    const bands = band ? [["BAND", `${band} ${band}`]] : [];
    const url = serviceUrl("api/sia/query", [...params, ...bands]);
    onStatus(`Finding the calexps that cover ${ra.toFixed(5)} ${dec.toFixed(5)}…`);
    const epochs = tableObjects(await getVOTable(url))
      .map((row) => ({ row, mjd: (row.t_min + row.t_max) / 2 }))
      .sort((a, b) => a.mjd - b.mjd);
    if (mine !== generation) return null;
    onStatus(`${epochs.length} epochs cover this position; cutting stamps…`);
    let done = 0;
    const radius = size / 3600 / 2;
    const points = await inBatches(epochs, async ({ row, mjd }) => {
      const cut = serviceUrl("api/soda/sync", [["ID", row.obs_publisher_did], ["CIRCLE", `${ra} ${dec} ${radius}`]]);
      const image = readImage(await (await request(cut)).arrayBuffer());
      const at = skyToPixel(image.header, ra, dec) ?? { x: (image.width - 1) / 2, y: (image.height - 1) / 2 };
      const flux = apertureFlux(image, at.x, at.y, aperture, aperture * 2, aperture * 3);
      if (mine === generation) onStatus(`Stamps: ${++done} of ${epochs.length}`);
      return { image, at, flux, mjd, band: row.band, label: `visit ${row.visit} detector ${row.detector} (${row.band})` };
    });
    if (mine !== generation) return null;
    points.forEach((p, i) => {
      const { row, mjd } = epochs[i];
      const figure = document.createElement("figure");
      figure.className = "stamp";
      const caption = document.createElement("figcaption");
      if (p.error) {
        caption.textContent = `MJD ${mjd.toFixed(4)} ${row.band}: ${p.error.message}`;
        figure.append(caption);
        onError(`Stamp of visit ${row.visit}: ${p.error.message}`);
      } else {
        const canvas = document.createElement("canvas");
        canvas.setAttribute("role", "img");
        canvas.setAttribute("aria-label", `Stamp of ${p.label} at MJD ${mjd.toFixed(4)}`);
        drawStamp(canvas, p.image, { ...p.at, r: aperture });
        caption.textContent = `MJD ${mjd.toFixed(4)} · ${row.band} · visit ${row.visit} · flux ${Number.isFinite(p.flux) ? p.flux.toFixed(0) : "—"}`;
        figure.append(canvas, caption);
      }
      gallery.append(figure);
    });
    const curve = points.map((p, i) => ({ mjd: epochs[i].mjd, band: epochs[i].row.band,
      flux: p.error ? NaN : p.flux, label: p.label ?? `visit ${epochs[i].row.visit}` }));
    drawLightCurve(plot, curve);
    onStatus(`${epochs.length} epochs, ${curve.filter((p) => Number.isFinite(p.flux)).length} measured.`);
    return curve;
  }

  return {
    form,
    run: (ra, dec, options) => run(ra, dec, options).catch((e) => { onError(`Stamps: ${e.message}`); return null; }),
  };
}
