// The search form: reads what the person asked for and turns it into the
// query a service understands. Standard constraints and the survey's own
// ones (dataset type, visit, raft, detector) all go to SIAv2; a typed ADQL
// condition can only be honoured by TAP, so such a search becomes an ADQL
// query on ivoa.obscore instead. Either way the exact query is shown.
import { serviceUrl } from "./api.js";

// Band limits of the survey (ObsCore em_min/em_max, metres). SIAv2 BAND
// matches images whose band overlaps the interval; adjacent bands share an
// edge, so the search asks for the band's middle wavelength only.
export const BANDS = {
  u: [320e-9, 400e-9], g: [400e-9, 552e-9], r: [552e-9, 691e-9],
  i: [691e-9, 818e-9], z: [818e-9, 922e-9], y: [948e-9, 1060e-9],
};

export function bandMiddle(band) {
  const [lo, hi] = BANDS[band];
  return Number(((lo + hi) / 2).toPrecision(6));
}

// A calendar date (yyyy-mm-dd, UTC midnight) as a Modified Julian Date.
export function mjdOfDate(date) {
  return Date.parse(`${date}T00:00:00Z`) / 86_400_000 + 40587;
}

const list = (text) => text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);

class FormError extends Error {}

function number(form, name, label, { min = -Infinity, max = Infinity, optional = false, integer = false } = {}) {
  const raw = form.elements[name].value.trim();
  if (raw === "" && optional) return null;
  const v = Number(raw);
  if (raw === "" || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new FormError(`${label} must be ${integer ? "a whole number" : "a number"} between ${min} and ${max}.`);
  }
  return v;
}

// The dataset types that are coadds: the provenance filters apply to them.
export const COADD_TYPES = ["deepCoadd", "goodSeeingCoadd"];

// The corners of the polygon field as [[ra, dec], ...], validated: at least
// three corners, RA in [0, 360], Dec in [-90, 90]; a last corner repeating
// the first (a closed ring) is dropped.
export function parsePolygon(text) {
  const words = list(text);
  if (words.length === 0) throw new FormError("Give the polygon's corners as RA Dec pairs (degrees), or draw it on the sky.");
  const bad = words.find((w) => !Number.isFinite(Number(w)));
  if (bad !== undefined) throw new FormError(`Polygon: "${bad}" is not a number; the corners are RA Dec pairs in degrees.`);
  if (words.length % 2) throw new FormError("Polygon: an odd count of numbers; each corner is an RA and a Dec.");
  const points = [];
  for (let i = 0; i < words.length; i += 2) {
    const [ra, dec] = [Number(words[i]), Number(words[i + 1])];
    const n = points.length + 1;
    if (ra < 0 || ra > 360) throw new FormError(`Polygon corner ${n}: RA ${ra} is outside 0 to 360 degrees.`);
    if (dec < -90 || dec > 90) throw new FormError(`Polygon corner ${n}: Dec ${dec} is outside -90 to 90 degrees.`);
    points.push([ra, dec]);
  }
  const same = (a, b) => a[0] === b[0] && a[1] === b[1];
  if (points.length > 3 && same(points[0], points[points.length - 1])) points.pop();
  if (points.some((p, i) => i > 0 && same(p, points[i - 1]))) throw new FormError("Polygon: two successive corners are the same point.");
  if (points.length < 3) throw new FormError(`A polygon needs at least three corners (RA Dec pairs); it has ${points.length}.`);
  const crossing = crossingEdges(points);
  if (crossing) throw new FormError(`Polygon: the edges ${crossing[0]} and ${crossing[1]} cross; give the corners in order around it.`);
  return points;
}

// Two edges of the polygon that cross (numbered from 1: edge n runs from
// corner n to the next), on a plane tangent at the first corner (fine for
// the polygons of a search, a few degrees at most); null when none.
function crossingEdges(points) {
  const [ra0, dec0] = points[0];
  const xy = points.map(([ra, dec]) => [(((ra - ra0 + 540) % 360) - 180) * Math.cos((dec0 * Math.PI) / 180), dec - dec0]);
  const side = (a, b, c) => Math.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]));
  const n = xy.length;
  for (let i = 0; i < n; i++) {
    for (let j = i + 2; j < n; j++) {
      if (i === 0 && j === n - 1) continue;  // neighbours through the first corner
      const [a, b, c, d] = [xy[i], xy[(i + 1) % n], xy[j], xy[(j + 1) % n]];
      if (side(a, b, c) * side(a, b, d) < 0 && side(c, d, a) * side(c, d, b) < 0) return [i + 1, j + 1];
    }
  }
  return null;
}

// Whole numbers, and for detectors ranges such as 0-8 (a raft's CCDs).
function ids(text, label, { ranges = false } = {}) {
  const out = [];
  for (const word of list(text)) {
    const m = ranges ? /^(\d+)-(\d+)$/.exec(word) : null;
    if (m) {
      const [a, b] = [Number(m[1]), Number(m[2])];
      if (a > b || b - a > 1000) throw new FormError(`${label}: ${word} is not a range from a smaller number to a larger one (at most 1000 apart).`);
      for (let v = a; v <= b; v++) out.push(String(v));
    } else if (/^\d+$/.test(word)) {
      out.push(String(Number(word)));
    } else {
      throw new FormError(`${label} are whole numbers${ranges ? " or ranges like 0-8" : ""}, separated by commas; "${word}" is not.`);
    }
  }
  return [...new Set(out)];
}

// (A field in a disabled fieldset keeps its own `disabled` false.)
const enabled = (form, name) => Boolean(form.elements[name]?.matches(":enabled"));

// The constraints of the form as plain values (one place that validates).
export function readForm(form) {
  const shape = form.elements.shape.value;
  const c = { shape };
  if (shape === "circle") {
    const ra = number(form, "ra", "RA", { min: 0, max: 360, optional: true });
    const dec = number(form, "dec", "Dec", { min: -90, max: 90, optional: true });
    if ((ra === null) !== (dec === null)) throw new FormError("Give both RA and Dec, or neither.");
    if (ra !== null) c.circle = [ra, dec, number(form, "radius", "Radius", { min: 0, max: 180 })];
  } else {
    c.polygon = parsePolygon(form.elements.polygon.value).flat();
  }
  c.band = form.elements.band.value;
  const from = form.elements.from.value;
  const to = form.elements.to.value;
  if (from || to) {
    c.time = [from ? mjdOfDate(from) : -Infinity, to ? mjdOfDate(to) + 1 : Infinity];
    if (c.time[0] > c.time[1]) throw new FormError("The time range ends before it starts.");
  }
  c.types = Array.from(form.querySelectorAll('input[name="type"]:checked')).map((i) => i.value);
  c.visits = ids(form.elements.visits.value, "Visits");
  c.rafts = list(form.elements.raft.value);
  if (c.rafts.some((r) => !/^[A-Za-z0-9_.:-]+$/.test(r))) throw new FormError("Rafts are names such as R22, separated by commas.");
  c.detectors = ids(form.elements.detector.value, "CCDs (detectors)", { ranges: true });
  c.collection = form.elements.collection.value.trim();
  c.maxrec = number(form, "maxrec", "Rows at most", { min: 1, max: 1_000_000, integer: true });
  c.where = form.elements.where.value.trim();

  // Observing conditions (EFD): each bound is optional.
  c.efd = {
    seeingMax: number(form, "seeing_max", "Maximum DIMM seeing (arcsec)", { min: 0, max: 100, optional: true }),
    windMax: number(form, "wind_max", "Maximum wind speed (m/s)", { min: 0, max: 200, optional: true }),
    domeMin: number(form, "dome_tmin", "Lowest dome temperature (°C)", { min: -100, max: 100, optional: true }),
    domeMax: number(form, "dome_tmax", "Highest dome temperature (°C)", { min: -100, max: 100, optional: true }),
    airmassMax: number(form, "airmass_max", "Maximum airmass", { min: 1, max: 100, optional: true }),
  };
  if (c.efd.domeMin !== null && c.efd.domeMax !== null && c.efd.domeMin > c.efd.domeMax) {
    throw new FormError("The dome temperature range ends below where it starts.");
  }
  c.hasEfd = Object.values(c.efd).some((v) => v !== null);

  // Coadd provenance: only when a coadd type is chosen (the fields are
  // disabled otherwise, so they neither count nor go to the address).
  c.coadd = { inputsMin: null, coverageMin: null, depthMin: null, inputsTime: null };
  if (enabled(form, "inputs_min")) {
    c.coadd.inputsMin = number(form, "inputs_min", "Minimum number of input images", { min: 1, max: 1_000_000, optional: true, integer: true });
    c.coadd.coverageMin = number(form, "coverage_min", "Minimum coverage fraction", { min: 0, max: 1, optional: true });
    c.coadd.depthMin = number(form, "depth_min", "Minimum 5-sigma depth (AB mag)", { min: 0, max: 40, optional: true });
    const ifrom = form.elements.inputs_from.value;
    const ito = form.elements.inputs_to.value;
    if (ifrom || ito) {
      c.coadd.inputsTime = [ifrom ? mjdOfDate(ifrom) : -Infinity, ito ? mjdOfDate(ito) + 1 : Infinity];
      if (c.coadd.inputsTime[0] > c.coadd.inputsTime[1]) throw new FormError("The inputs' time range ends before it starts.");
    }
  }
  c.hasCoadd = Object.values(c.coadd).some((v) => v !== null);
  if (c.hasEfd && c.hasCoadd) {
    throw new FormError("Observing conditions (EFD) select single visits and coadd provenance selects coadds: " +
                        "no image has both, so give one or the other.");
  }
  return c;
}

const fmt = (x) => String(Number(x.toPrecision(10)));

function siaParams(c) {
  const p = [];
  if (c.circle) p.push(["POS", `CIRCLE ${c.circle.map(fmt).join(" ")}`]);
  if (c.polygon) p.push(["POS", `POLYGON ${c.polygon.map(fmt).join(" ")}`]);
  if (c.band) p.push(["BAND", `${bandMiddle(c.band)} ${bandMiddle(c.band)}`]);
  if (c.time) p.push(["TIME", c.time.map((t) => (Number.isFinite(t) ? fmt(t) : t > 0 ? "+Inf" : "-Inf")).join(" ")]);
  for (const t of c.types) p.push(["DPSUBTYPE", t]);
  for (const v of c.visits) p.push(["VISIT", v]);
  for (const r of c.rafts) p.push(["RAFT", r]);
  for (const d of c.detectors) p.push(["DETECTOR", d]);
  if (c.collection) p.push(["COLLECTION", c.collection]);
  p.push(["MAXREC", String(c.maxrec)]);
  return p;
}

const quote = (s) => `'${s.replaceAll("'", "''")}'`;

// The columns a join adds to the result (shown in the table when used):
// the EFD's visit summary, or the coadd's provenance. Names that ObsCore
// also has (airmass, t_min, t_max) are renamed.
export const EFD_COLUMNS = [["e.dimm_seeing", "dimm_seeing"], ["e.wind_speed", "wind_speed"],
  ["e.dome_temperature", "dome_temperature"], ["e.airmass", "efd_airmass"]];
export const COADD_COLUMNS = [["c.n_inputs", "n_inputs"], ["c.coverage_fraction", "coverage_fraction"],
  ["c.depth_5sigma", "depth_5sigma"], ["c.t_min", "inputs_t_min"], ["c.t_max", "inputs_t_max"]];

// Whether the constraints need TAP: a typed ADQL condition, observing
// conditions (a join with efd.visit_summary) or coadd provenance (a join
// with survey.coadds); SIAv2 can express none of them.
export const needsTap = (c) => Boolean(c.where || c.hasEfd || c.hasCoadd);

// The same constraints in ADQL on ivoa.obscore, with the person's own
// condition ANDed in (in parentheses, so that an OR in it stays inside).
// With observing conditions or coadd provenance, ivoa.obscore (as o) joins
// efd.visit_summary (as e) on the visit, or survey.coadds (as c) on the
// dataset ID, and the columns are qualified.
export function adqlOf(c) {
  const joined = c.hasEfd || c.hasCoadd;
  const o = joined ? "o." : "";
  const where = [];
  if (c.circle) where.push(`INTERSECTS(${o}s_region, CIRCLE('ICRS', ${c.circle.map(fmt).join(", ")})) = 1`);
  if (c.polygon) where.push(`INTERSECTS(${o}s_region, POLYGON('ICRS', ${c.polygon.map(fmt).join(", ")})) = 1`);
  if (c.band) where.push(`${o}band = ${quote(c.band)}`);
  if (c.time) {
    if (Number.isFinite(c.time[1])) where.push(`${o}t_min <= ${fmt(c.time[1])}`);
    if (Number.isFinite(c.time[0])) where.push(`${o}t_max >= ${fmt(c.time[0])}`);
  }
  if (c.types.length) where.push(`${o}dataproduct_subtype IN (${c.types.map(quote).join(", ")})`);
  if (c.visits.length) where.push(`${o}visit IN (${c.visits.join(", ")})`);
  if (c.rafts.length) where.push(`${o}raft IN (${c.rafts.map(quote).join(", ")})`);
  if (c.detectors.length) where.push(`${o}detector IN (${c.detectors.join(", ")})`);
  if (c.collection) where.push(`${o}obs_collection = ${quote(c.collection)}`);
  const { efd, coadd } = c;
  if (c.hasEfd) {
    if (efd.seeingMax !== null) where.push(`e.dimm_seeing <= ${fmt(efd.seeingMax)}`);
    if (efd.windMax !== null) where.push(`e.wind_speed <= ${fmt(efd.windMax)}`);
    // The form's degrees Celsius; the table's kelvin (VOUnit has no °C).
    if (efd.domeMin !== null) where.push(`e.dome_temperature >= ${fmt(efd.domeMin + 273.15)}`);
    if (efd.domeMax !== null) where.push(`e.dome_temperature <= ${fmt(efd.domeMax + 273.15)}`);
    if (efd.airmassMax !== null) where.push(`e.airmass <= ${fmt(efd.airmassMax)}`);
  }
  if (c.hasCoadd) {
    if (coadd.inputsMin !== null) where.push(`c.n_inputs >= ${coadd.inputsMin}`);
    if (coadd.coverageMin !== null) where.push(`c.coverage_fraction >= ${fmt(coadd.coverageMin)}`);
    if (coadd.depthMin !== null) where.push(`c.depth_5sigma >= ${fmt(coadd.depthMin)}`);
    // Every input taken within the range.
    if (coadd.inputsTime && Number.isFinite(coadd.inputsTime[0])) where.push(`c.t_min >= ${fmt(coadd.inputsTime[0])}`);
    if (coadd.inputsTime && Number.isFinite(coadd.inputsTime[1])) where.push(`c.t_max <= ${fmt(coadd.inputsTime[1])}`);
  }
  if (c.where) where.push(`(${c.where})`);
  let select = `SELECT TOP ${c.maxrec} *\nFROM ivoa.obscore`;
  if (joined) {
    const [table, alias, on, columns] = c.hasEfd
      ? ["efd.visit_summary", "e", "e.visit = o.visit", EFD_COLUMNS]
      : ["survey.coadds", "c", "c.dataset_id = o.obs_id", COADD_COLUMNS];
    select = `SELECT TOP ${c.maxrec} o.*, ${columns.map(([col, name]) => (col.endsWith(`.${name}`) ? col : `${col} AS ${name}`)).join(", ")}` +
      `\nFROM ivoa.obscore AS o\nJOIN ${table} AS ${alias} ON ${on}`;
  }
  return select + (where.length ? `\nWHERE ${where.join("\n  AND ")}` : "");
}

// The query of the constraints: {service, url, text, download(format),
// moc(order), columns}.
// `text` is what the page shows and copies: the SIAv2 URL, or the ADQL;
// `columns` the names of columns a join added (the table shows them).
export function queryOf(c) {
  // The coverage of the same selection: the MOC service takes the
  // position and the survey's constraints, the band by its letter; time,
  // observing conditions, coadd provenance and a typed ADQL condition can
  // not narrow a spatial MOC.
  const moc = (order) => serviceUrl("api/moc/query", [
    ...siaParams(c).filter(([k]) => !["MAXREC", "BAND", "TIME"].includes(k)),
    ...(c.band ? [["BAND", c.band]] : []), ["ORDER", String(order)], ["FORMAT", "json"]]);
  if (needsTap(c)) {
    const adql = adqlOf(c);
    const params = [["REQUEST", "doQuery"], ["LANG", "ADQL"], ["QUERY", adql]];
    return {
      service: "TAP",
      url: serviceUrl("api/tap/sync", params),
      text: adql,
      download: (format) => serviceUrl("api/tap/sync", [...params, ["RESPONSEFORMAT", format]]),
      moc,
      columns: (c.hasEfd ? EFD_COLUMNS : c.hasCoadd ? COADD_COLUMNS : []).map(([, name]) => name),
    };
  }
  const params = siaParams(c);
  const url = serviceUrl("api/sia/query", params);
  return {
    service: "SIAv2",
    url,
    text: url,
    download: (format) => serviceUrl("api/sia/query", [...params, ["RESPONSEFORMAT", format]]),
    moc,
    columns: [],
  };
}

export { FormError };

// Wires the form: submit runs `onSearch(query, constraints)`; every change
// refreshes the query shown, so the person sees what will run, and the
// polygon typed or drawn (`onPolygon([[ra, dec], ...] or null)`).
export function setupSearchForm(form, { onSearch, onError, showQuery, onPolygon = () => {} }) {
  const coaddFields = form.querySelector("#coadd-fields");
  const fieldsShown = () => {
    const circle = form.elements.shape.value === "circle";
    form.querySelector("#circle-fields").hidden = !circle;
    form.querySelector("#polygon-fields").hidden = circle;
    // The provenance of coadds only when a coadd type is chosen; disabled
    // fields are left out of the query and of the address.
    const coadds = COADD_TYPES.some((t) => form.querySelector(`input[name="type"][value="${t}"]`)?.checked);
    coaddFields.hidden = !coadds;
    coaddFields.disabled = !coadds;
  };
  // The corners typed so far, as far as they read (drawn while typing).
  const polygonPoints = () => {
    if (form.elements.shape.value !== "polygon") return null;
    const v = list(form.elements.polygon.value).map(Number);
    if (v.some((x) => !Number.isFinite(x))) return null;
    const points = [];
    for (let i = 0; i + 1 < v.length; i += 2) points.push([v[i], v[i + 1]]);
    return points;
  };
  const refresh = () => {
    onPolygon(polygonPoints());
    try {
      showQuery(queryOf(readForm(form)));
    } catch (e) {
      if (!(e instanceof FormError)) throw e;
      // Not a query yet: what is missing or wrong, in place of the query.
      showQuery({ service: null, text: e.message });
    }
  };
  const setPolygon = (points) => {
    form.elements.shape.value = "polygon";
    form.elements.polygon.value = points.map(([ra, dec]) => `${ra.toFixed(6)} ${dec.toFixed(6)}`).join("\n");
    fieldsShown();
    refresh();
  };
  form.addEventListener("change", () => { fieldsShown(); refresh(); });
  form.addEventListener("input", refresh);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    let constraints;
    try {
      constraints = readForm(form);
    } catch (e) {
      if (e instanceof FormError) { onError(e.message); return; }
      throw e;
    }
    const query = queryOf(constraints);
    showQuery(query);
    onSearch(query, constraints);
  });
  fieldsShown();
  refresh();
  return {
    // The form as URL parameters, by the form's own field names (empty
    // fields left out): what the page's address holds, so that a search
    // can be bookmarked and shared.
    params() {
      const params = new URLSearchParams();
      for (const [name, value] of new FormData(form)) if (String(value).trim() !== "") params.append(name, value);
      return params;
    },
    // Fills the form from such parameters (unknown names are ignored);
    // true when any of them is a field of the form.
    load(params) {
      let any = false;
      for (const name of new Set(params.keys())) {
        const field = form.elements.namedItem(name);
        if (!field) continue;
        any = true;
        const values = params.getAll(name);
        const choices = form.querySelectorAll(`input[name="${CSS.escape(name)}"]`);
        if (field instanceof RadioNodeList || field.type === "checkbox" || field.type === "radio") {
          for (const input of choices) input.checked = values.includes(input.value);
        } else {
          field.value = values[0];
        }
      }
      fieldsShown();
      refresh();
      return any;
    },
    setPosition(ra, dec) {
      form.elements.shape.value = "circle";
      form.elements.ra.value = ra.toFixed(6);
      form.elements.dec.value = dec.toFixed(6);
      fieldsShown();
      refresh();
    },
    // The polygon drawn on the sky, one corner a click.
    addCorner(ra, dec) { setPolygon([...(polygonPoints() ?? []), [ra, dec]]); },
    removeCorner() { setPolygon((polygonPoints() ?? []).slice(0, -1)); },
    clearPolygon() { setPolygon([]); },
    polygonPoints,
    submit() { form.requestSubmit(); },
  };
}
