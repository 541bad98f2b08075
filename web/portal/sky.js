// The sky view: Aladin Lite (npm aladin-lite, served by pixserve, so no
// request leaves the server) on the survey's own HiPS maps, with the
// footprints of the results, the selected and hovered one, the cutout
// region and the MOC coverage drawn over it.
import A from "../aladin-lite/aladin.js";
import { getText, serviceUrl } from "./api.js";

const COLORS = { footprint: "#ffb000", hover: "#ffffff", selected: "#00e5ff", cutout: "#ff4dff", moc: "#7CFC00", polygon: "#ff5a5a" };

// The HiPS list (IVOA HiPS 1.0 §4.4: records of "key = value" lines
// separated by blank lines) as an array of property objects.
export function parseHipsList(text) {
  return text.split(/\n\s*\n/).map((block) => Object.fromEntries(block.split("\n")
    .filter((l) => l.includes("=") && !l.trimStart().startsWith("#"))
    .map((l) => [l.slice(0, l.indexOf("=")).trim(), l.slice(l.indexOf("=") + 1).trim()])))
    .filter((r) => r.hips_service_url);
}

// An s_region (DALI polygon "ra dec ra dec ...", or STC-S "POLYGON ICRS
// ..." / "CIRCLE ICRS ra dec r" as TAP gives it) as
// {polygon: [[ra, dec], ...]} or {circle: [ra, dec, r]}; null otherwise.
export function parseRegion(text) {
  if (typeof text !== "string" || !text.trim()) return null;
  const words = text.trim().split(/\s+/);
  const kind = /^[A-Za-z]/.test(words[0]) ? words.shift().toUpperCase() : "POLYGON";
  const numbers = words.filter((w) => !/^[A-Za-z]/.test(w)).map(Number);
  if (numbers.some((n) => !Number.isFinite(n))) return null;
  if (kind === "CIRCLE" && numbers.length === 3) return { circle: numbers };
  if (kind !== "POLYGON" || numbers.length < 6 || numbers.length % 2) return null;
  const points = [];
  for (let i = 0; i < numbers.length; i += 2) points.push([numbers[i], numbers[i + 1]]);
  return { polygon: points };
}

// Whether (ra, dec) lies in a region, on the plane tangent at the point
// (gnomonic projection: straight edges stay close to great circles for
// footprints of a few degrees), by counting the edges a ray crosses.
export function regionContains(region, ra, dec) {
  const rad = Math.PI / 180;
  if (region.circle) {
    const [cra, cdec, r] = region.circle;
    const cos = Math.sin(dec * rad) * Math.sin(cdec * rad) +
      Math.cos(dec * rad) * Math.cos(cdec * rad) * Math.cos((ra - cra) * rad);
    return Math.acos(Math.min(1, cos)) / rad <= r;
  }
  const project = ([pra, pdec]) => {
    const d = (pra - ra) * rad;
    const cosc = Math.sin(dec * rad) * Math.sin(pdec * rad) + Math.cos(dec * rad) * Math.cos(pdec * rad) * Math.cos(d);
    return [Math.cos(pdec * rad) * Math.sin(d) / cosc,
      (Math.cos(dec * rad) * Math.sin(pdec * rad) - Math.sin(dec * rad) * Math.cos(pdec * rad) * Math.cos(d)) / cosc];
  };
  const pts = region.polygon.map(project);
  let inside = false;
  for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
    const [xi, yi] = pts[i];
    const [xj, yj] = pts[j];
    if ((yi > 0) !== (yj > 0) && 0 < ((xj - xi) * (0 - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}

function shapeOf(region, options) {
  return region.circle ? A.circle(region.circle[0], region.circle[1], region.circle[2], options)
    : A.polygon(region.polygon.map((p) => p.slice()), options);
}

export async function createSkyView(container, { onClick }) {
  const maps = parseHipsList(await getText(serviceUrl("api/hips/list")));
  await A.init;
  if (!maps.length) {
    container.textContent = "This server has no HiPS map yet, so there is no sky to show.";
    return null;
  }
  // The colour map first: the one made of several bands (pixserve_bands
  // names them), then the single bands as listed.
  const bands = (m) => (m.pixserve_bands || "").length;
  maps.sort((a, b) => (bands(b) > 1) - (bands(a) > 1));
  const first = maps[0];
  const aladin = A.aladin(container, {
    target: `${first.hips_initial_ra ?? 0} ${first.hips_initial_dec ?? 0}`,
    fov: parseFloat(first.hips_initial_fov || "1"),
    survey: first.hips_service_url,  // no default survey: that would be a remote one
    showReticle: false,
    showCooGridControl: false,
    showSimbadPointerControl: false,
    showShareControl: false,
    log: false,                      // no usage ping to CDS
  });
  const layerOf = (m) => aladin.createImageSurvey(m.creator_did || m.hips_service_url, m.obs_title || m.hips_service_url,
    m.hips_service_url, "equatorial", parseInt(m.hips_order, 10), { imgFormat: m.hips_tile_format?.includes("png") ? "png" : "jpeg" });
  aladin.setBaseImageLayer(layerOf(first));

  const overlay = (name, color, lineWidth) => {
    const o = A.graphicOverlay({ name, color, lineWidth });
    aladin.addOverlay(o);
    return o;
  };
  const footprints = overlay("results", COLORS.footprint, 2);
  const hovered = overlay("hovered", COLORS.hover, 3);
  const selected = overlay("selected", COLORS.selected, 4);
  const cutout = overlay("cutout", COLORS.cutout, 2);
  const searchPolygon = overlay("search polygon", COLORS.polygon, 3);
  // removeAll alone does not ask for a redraw; reportChange does.
  const clear = (o) => { o.removeAll(); o.reportChange(); };
  let moc = null;
  let regions = [];  // parsed s_region per result row (null when none)
  let footprintsShown = true;
  // Hidden footprints are taken off the overlay rather than hidden with
  // it: shapes added to a hidden overlay would show up again otherwise.
  const drawFootprints = () => {
    clear(footprints);
    if (!footprintsShown) return;
    const shapes = regions.filter(Boolean).map((r) => shapeOf(r, { color: COLORS.footprint }));
    if (shapes.length) footprints.addFootprints(shapes);
  };

  aladin.on("click", (e) => {
    if (!e.isDragging) onClick(e.ra, e.dec);
  });

  return {
    maps,
    showMap(index) { aladin.setBaseImageLayer(layerOf(maps[index])); },
    // The footprints of a result: the s_region of each row, by row index.
    showFootprints(sRegions) {
      clear(hovered);
      clear(selected);
      regions = sRegions.map(parseRegion);
      drawFootprints();
    },
    setFootprintsShown(shown) {
      footprintsShown = shown;
      drawFootprints();
    },
    // The result rows whose footprint holds (ra, dec), smallest first, so
    // that a click on nested footprints picks the most precise one.
    rowsAt(ra, dec) {
      const size = (r) => (r.circle ? r.circle[2] : Math.max(...r.polygon.map((p) => p[1])) - Math.min(...r.polygon.map((p) => p[1])));
      return regions.map((r, i) => [r, i]).filter(([r]) => r && regionContains(r, ra, dec))
        .sort((a, b) => size(a[0]) - size(b[0])).map(([, i]) => i);
    },
    hover(index) {
      clear(hovered);
      if (index !== null && regions[index]) hovered.add(shapeOf(regions[index], { color: COLORS.hover, lineWidth: 3 }));
    },
    select(index, { center = false } = {}) {
      clear(selected);
      const r = index === null ? null : regions[index];
      if (!r) return;
      selected.add(shapeOf(r, { color: COLORS.selected, lineWidth: 4 }));
      if (center) {
        const c = r.circle ? r.circle : [r.polygon.reduce((s, p) => s + p[0], 0) / r.polygon.length,
          r.polygon.reduce((s, p) => s + p[1], 0) / r.polygon.length];
        aladin.gotoRaDec(c[0], c[1]);
      }
    },
    showCutout(region) {
      clear(cutout);
      if (region) cutout.add(shapeOf(region, { color: COLORS.cutout, lineWidth: 2 }));
    },
    // The search polygon: while it is drawn (`open`), its corners joined
    // in order with a mark on each; then the closed polygon.
    showPolygon(points, { open = false } = {}) {
      clear(searchPolygon);
      if (!points?.length) return;
      const options = { color: COLORS.polygon, lineWidth: 3 };
      if (!open && points.length >= 3) {
        searchPolygon.add(A.polygon(points.map((p) => p.slice()), options));
        return;
      }
      const mark = aladin.getFov()[0] / 150;
      for (const [ra, dec] of points) searchPolygon.add(A.circle(ra, dec, mark, options));
      if (points.length >= 2) searchPolygon.add(A.polyline(points.map((p) => p.slice()), options));
    },
    // MOC JSON ({"order": [cells]}) as a filled overlay; null removes it.
    showMoc(json) {
      if (moc) aladin.removeOverlay(moc);
      moc = null;
      if (!json) return;
      moc = A.MOCFromJSON(json, { name: "coverage", color: COLORS.moc, opacity: 0.25, lineWidth: 1, fill: true });
      aladin.addMOC(moc);
    },
    goto(ra, dec, fov) {
      aladin.gotoRaDec(ra, dec);
      if (fov) aladin.setFoV(fov);
    },
    get fov() { return aladin.getFov()[0]; },
    world2pix: (ra, dec) => aladin.world2pix(ra, dec),
  };
}
