// The light curve: one point per stamp, flux against MJD, as SVG (so that
// each point is an element with its own tooltip and can be counted).

const SVG = "http://www.w3.org/2000/svg";
const BAND_COLORS = { u: "#6a3d9a", g: "#1f78b4", r: "#33a02c", i: "#e08000", z: "#e31a1c", y: "#7f3b08" };

function node(tag, attrs = {}, text) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

// Round tick values covering [lo, hi], about `count` of them.
function ticks(lo, hi, count) {
  const span = hi - lo || Math.abs(hi) || 1;
  const raw = span / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

// points: [{mjd, flux, band, label}]. Points whose flux could not be
// measured (NaN) are drawn on the axis as hollow marks, so that the count
// of points is always the count of epochs.
export function drawLightCurve(svg, points) {
  const W = 640;
  const H = 300;
  const M = { left: 70, right: 16, top: 16, bottom: 44 };
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("data-points", String(points.length));
  if (!points.length) return;
  const measured = points.filter((p) => Number.isFinite(p.flux));
  let [x0, x1] = [Math.min(...points.map((p) => p.mjd)), Math.max(...points.map((p) => p.mjd))];
  let [y0, y1] = measured.length ? [Math.min(...measured.map((p) => p.flux)), Math.max(...measured.map((p) => p.flux))] : [0, 1];
  const padX = (x1 - x0 || 1) * 0.05;
  const padY = (y1 - y0 || Math.abs(y1) || 1) * 0.1;
  [x0, x1, y0, y1] = [x0 - padX, x1 + padX, y0 - padY, y1 + padY];
  const sx = (x) => M.left + ((x - x0) / (x1 - x0)) * (W - M.left - M.right);
  const sy = (y) => H - M.bottom - ((y - y0) / (y1 - y0)) * (H - M.top - M.bottom);

  svg.append(node("title", {}, `Light curve: ${points.length} epochs`));
  const axes = node("g", { class: "axes" });
  axes.append(node("line", { x1: M.left, y1: H - M.bottom, x2: W - M.right, y2: H - M.bottom }));
  axes.append(node("line", { x1: M.left, y1: M.top, x2: M.left, y2: H - M.bottom }));
  for (const t of ticks(x0, x1, 5)) {
    axes.append(node("line", { x1: sx(t), x2: sx(t), y1: H - M.bottom, y2: H - M.bottom + 5 }));
    axes.append(node("text", { x: sx(t), y: H - M.bottom + 18, "text-anchor": "middle" }, String(t)));
  }
  for (const t of ticks(y0, y1, 5)) {
    axes.append(node("line", { x1: M.left - 5, x2: M.left, y1: sy(t), y2: sy(t) }));
    axes.append(node("text", { x: M.left - 8, y: sy(t) + 4, "text-anchor": "end" }, String(t)));
  }
  axes.append(node("text", { x: (M.left + W - M.right) / 2, y: H - 6, "text-anchor": "middle" }, "MJD"));
  axes.append(node("text", { x: 14, y: (M.top + H - M.bottom) / 2, "text-anchor": "middle",
    transform: `rotate(-90 14 ${(M.top + H - M.bottom) / 2})` }, "aperture flux (pixel units)"));
  svg.append(axes);

  const g = node("g", { class: "points" });
  for (const p of points) {
    const ok = Number.isFinite(p.flux);
    const c = node("circle", {
      class: `point${ok ? "" : " unmeasured"}`, cx: sx(p.mjd), cy: ok ? sy(p.flux) : H - M.bottom, r: 5,
      fill: ok ? BAND_COLORS[p.band] || "#444" : "none", stroke: BAND_COLORS[p.band] || "#444",
    });
    c.append(node("title", {}, `${p.label}: MJD ${p.mjd.toFixed(5)}, flux ${ok ? p.flux.toFixed(1) : "not measured"}`));
    g.append(c);
  }
  svg.append(g);
}
