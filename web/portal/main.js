// The portal page: wires the modules together. Each module owns one part of
// the page; what they share (the result rows, the selected row, the click
// mode of the sky) lives here.
import { auth, getJson, getVOTable, saveUrl, serviceUrl } from "./api.js";
import { createCutoutTool } from "./cutout.js";
import { createDatasetPanel } from "./dataset.js";
import { createResultsTable } from "./table.js";
import { bandMiddle, setupSearchForm } from "./search.js";
import { createStampGallery } from "./stamps.js";
import { tableObjects } from "./votable.js";

const $ = (selector) => document.querySelector(selector);

// Errors are shown as sentences in one place that screen readers announce,
// each with a button to dismiss it.
function showError(message) {
  const p = document.createElement("p");
  p.textContent = message;
  const close = document.createElement("button");
  close.type = "button";
  close.textContent = "Dismiss";
  close.addEventListener("click", () => p.remove());
  p.append(close);
  $("#messages").append(p);
}
const clearErrors = () => $("#messages").replaceChildren();

const state = { result: null, objects: [], selected: null, lastQuery: null, sky: null, drawing: false, polygon: null };

// --- sign-in ---------------------------------------------------------------
function showIdentity() {
  const signedIn = Boolean(auth.token());
  $("#identity").textContent = signedIn ? "Signed in: you see what your token may see." : "Not signed in: you see public data only.";
  $("#identity").classList.toggle("signed-in", signedIn);
  $("#token").hidden = signedIn;
  $('label[for="token"]').hidden = signedIn;
  $("#signin-button").hidden = signedIn;
  $("#signout-button").hidden = !signedIn;
}

$("#signin").addEventListener("submit", async (event) => {
  event.preventDefault();
  const token = $("#token").value.trim();
  if (!token) { showError("Paste your token first."); return; }
  auth.signIn(token);
  // A query the service must authenticate: a bad token is refused (401)
  // even where anonymous access would be allowed, so this checks it.
  try {
    await getVOTable(serviceUrl("api/sia/query", [["MAXREC", "0"]]));
  } catch (e) {
    auth.signOut();
    showError(`Sign-in failed: ${e.message}`);
    return;
  }
  $("#token").value = "";
  showIdentity();
  rerun();
});
$("#signout-button").addEventListener("click", () => {
  auth.signOut();
  showIdentity();
  $("#token").focus();
  rerun();
});

// --- results, sky and dataset ----------------------------------------------
const panel = createDatasetPanel($("#dataset"), { onError: showError });

function select(index, { fromSky = false } = {}) {
  state.selected = index;
  table.select(index);
  state.sky?.select(index, { center: !fromSky });
  if (index !== null) panel.show(state.objects[index]).then(() => { window.pixservePortal.datasetShown = index; });
}

const table = createResultsTable($("#results"), {
  onSelect: (i) => select(i),
  onHover: (i) => { state.sky?.hover(i); table.highlight(i); },
  onDownload: (url, name) => saveUrl(url, name).catch((e) => showError(`Download: ${e.message}`)),
});

async function showMoc() {
  state.sky?.showMoc(null);
  if (!$("#show-moc").checked || !state.lastQuery || !state.sky) return;
  try {
    const moc = await getJson(state.lastQuery.moc(10));
    state.sky.showMoc(moc);
    window.pixservePortal.mocCells = Object.values(moc).reduce((n, cells) => n + cells.length, 0);
  } catch (e) {
    showError(`Coverage: ${e.message}`);
  }
}

async function runSearch(query) {
  clearErrors();
  state.lastQuery = query;
  const started = performance.now();
  $("#results-status").textContent = `Searching (${query.service})…`;
  $("#search-button").disabled = true;
  try {
    const result = await getVOTable(query.url);
    state.result = result;
    state.objects = tableObjects(result);
    state.selected = null;
    table.setResult(result, query);
    panel.reset("Select a row of the results (or a footprint on the sky).");
    state.sky?.showFootprints(state.objects.map((o) => o.s_region));
    state.sky?.select(null);
    showMoc();
    // Page load to first results (ms since navigation start), for the record.
    if (window.pixservePortal.searches === 0) window.pixservePortal.firstResultsAt = performance.now();
    // The address now holds this search (bookmark it, share it).
    history.replaceState(null, "", `?${search.params()}`);
    window.pixservePortal.searches += 1;
    window.pixservePortal.lastSearchMs = performance.now() - started;
  } catch (e) {
    table.clear("The search failed.");
    showError(`Search (${query.service}): ${e.message}`);
  } finally {
    $("#search-button").disabled = false;
    // After the first results are painted (the next frame), the sky.
    requestAnimationFrame(() => setTimeout(startSky));
  }
}
function rerun() { if (state.lastQuery) search.submit(); }

const search = setupSearchForm($("#search-form"), {
  onSearch: (query) => runSearch(query),
  onError: showError,
  showQuery(query) {
    $("#query-service").textContent = !query.service ? "(not yet: the form is incomplete)"
      : `(${query.service}${query.service === "TAP" ? ", ADQL" : " URL"})`;
    $("#query-text").textContent = query.text;
    $("#copy-query").disabled = !query.service;
  },
  onPolygon(points) {
    state.polygon = points;
    drawPolygon();
  },
});

// --- the search polygon, typed or drawn on the sky --------------------------
const clickMode = () => document.querySelector('input[name="clickmode"]:checked').value;
function drawPolygon() {
  state.sky?.showPolygon(state.polygon, { open: clickMode() === "polygon" });
}
// While the clicks on the sky add corners, "Close the polygon" is offered
// instead of "Draw on the sky".
function polygonMode() {
  const drawing = clickMode() === "polygon";
  $("#poly-draw").hidden = drawing;
  $("#poly-close").hidden = !drawing;
  drawPolygon();
}
for (const radio of document.querySelectorAll('input[name="clickmode"]')) radio.addEventListener("change", polygonMode);
$("#poly-draw").addEventListener("click", () => {
  $("#shape-polygon").checked = true;
  $("#click-polygon").checked = true;
  $("#search-form").dispatchEvent(new Event("change"));
  polygonMode();
  startSky();
  $("#aladin").scrollIntoView({ block: "nearest" });
  $("#poly-close").focus();
});
$("#poly-close").addEventListener("click", () => {
  const corners = search.polygonPoints()?.length ?? 0;
  if (corners < 3) {
    showError(`A polygon needs at least three corners; ${corners} so far. Click on the sky to add more.`);
    return;
  }
  $("#click-select").checked = true;
  polygonMode();
  $("#search-button").focus();
});
$("#poly-undo").addEventListener("click", () => search.removeCorner());
$("#poly-clear").addEventListener("click", () => search.clearPolygon());

$("#copy-query").addEventListener("click", async () => {
  const text = $("#query-text").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard permission (e.g. a plain-http page): select the text so
    // that Ctrl+C copies it.
    const range = document.createRange();
    range.selectNodeContents($("#query-text"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("#copy-status").textContent = "Selected: press Ctrl+C to copy.";
    return;
  }
  $("#copy-status").textContent = "Copied.";
  setTimeout(() => { $("#copy-status").textContent = ""; }, 3000);
});

// --- cutouts ---------------------------------------------------------------
const cutout = createCutoutTool($("#cutout"), {
  onError: showError,
  onStatus: (text) => { $("#cutout-progress-label").textContent = text; },
  selection: () => (state.selected === null ? null : state.objects[state.selected]),
  results: () => state.objects,
  onRegion: (region) => state.sky?.showCutout(region),
  onDrawRequest: () => { $("#click-cutout").checked = true; $("#aladin").scrollIntoView({ block: "nearest" }); },
});
$("#jobs-refresh").addEventListener("click", () => cutout.refreshJobs());

// --- stamps ----------------------------------------------------------------
const stamps = createStampGallery($("#stamps"), {
  onError: showError,
  onStatus: (text) => { $("#stamp-status").textContent = text; },
});
$("#stamp-from-search").addEventListener("click", () => {
  $("#stamp_ra").value = $("#ra").value;
  $("#stamp_dec").value = $("#dec").value;
});
stamps.form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const f = stamps.form.elements;
  const [ra, dec, size, aperture] = ["stamp_ra", "stamp_dec", "stamp_size", "stamp_aperture"].map((n) => Number(f[n].value));
  if ([ra, dec, size, aperture].some((v) => !Number.isFinite(v)) || f.stamp_ra.value === "" || size <= 0 || aperture <= 0) {
    showError("The stamps need RA, Dec, a stamp size and an aperture radius.");
    return;
  }
  const curve = await stamps.run(ra, dec, { size, aperture, band: f.stamp_band.value ? bandMiddle(f.stamp_band.value) : null });
  if (curve) window.pixservePortal.lightCurvePoints = curve.length;
});

// --- the sky ----------------------------------------------------------------
function onSkyClick(ra, dec) {
  const mode = clickMode();
  if (mode === "position") {
    search.setPosition(ra, dec);
  } else if (mode === "polygon") {
    search.addCorner(ra, dec);
  } else if (mode === "cutout") {
    if (cutout.draw.click(ra, dec)) $("#cut-run").focus();
  } else {
    const rows = state.sky.rowsAt(ra, dec);
    if (rows.length) {
      // Clicking again on the same spot goes through the overlapping ones.
      const at = rows.indexOf(state.selected);
      select(rows[(at + 1) % rows.length], { fromSky: true });
    }
  }
}

// Aladin Lite is large and, without a GPU, slow to start: it is loaded
// (dynamic import) only after the first results, or when the browser is
// idle if there is no search yet, so that neither the page's load event
// nor the first search waits for it. The footprints of results that came
// first are drawn once it is ready.
let skyStarted = false;
async function startSky() {
  if (skyStarted) return;
  skyStarted = true;
  try {
    const { createSkyView } = await import("./sky.js");
    const sky = await createSkyView($("#aladin"), { onClick: onSkyClick });
    if (!sky) return;
    state.sky = sky;
    $("#map").replaceChildren(...sky.maps.map((m, i) => Object.assign(document.createElement("option"),
      { value: String(i), textContent: m.obs_title || m.creator_did || m.hips_service_url })));
    $("#map").addEventListener("change", () => sky.showMap(Number($("#map").value)));
    $("#show-footprints").addEventListener("change", () => sky.setFootprintsShown($("#show-footprints").checked));
    $("#show-moc").addEventListener("change", showMoc);
    if (state.objects.length) sky.showFootprints(state.objects.map((o) => o.s_region));
    drawPolygon();
    window.pixservePortal.skyReady = true;
  } catch (e) {
    showError(`Sky view: ${e.message}`);
  }
}

// State the browser test (and a curious person in the console) can read.
window.pixservePortal = { searches: 0, skyReady: false, lastSearchMs: null, firstResultsAt: null, mocCells: null, sky: () => state.sky, datasetShown: null, lightCurvePoints: null };
showIdentity();
// A search given in the page's address (the form's field names, as the
// page writes them there) runs at once; the sky follows its results.
if (search.load(new URLSearchParams(location.search))) search.submit();
// No search running (none in the address, or one the form refuses): the
// sky starts when the browser is idle.
if (!state.lastQuery) {
  if (window.requestIdleCallback) requestIdleCallback(startSky, { timeout: 2000 });
  else setTimeout(startSky, 200);
}
cutout.refreshJobs();
