// Browser test of the portal (/portal), driven as a person would: a cone
// and band search (row count checked against the same SIAv2 query fetched
// here), the footprints on Aladin Lite's WebGL canvas (pixels with and
// without the overlay), a row's DataLink links, a cutout drawn on the sky
// and downloaded (a FITS file with a WCS), an asynchronous cutout, the stamp
// gallery and light curve at a star, a service error shown as its message,
// signing in to see embargoed data the anonymous page does not, the MOC
// overlay, a polygon typed (checked) and drawn on the sky (row count checked
// against SIAv2), observing conditions (EFD) and coadd provenance (each
// checked against the ADQL it shows, run here through TAP), and the table
// module on 10,000 made-up rows.
//
// The survey: a few visits with coadds and a HiPS colour map, ingested
// twice, the second time as the collection EMB under a very long embargo;
// the token is staff's, which the embargo does not hold back.
//
// Screenshots of each step go to $PORTAL_ARTEFACTS, or portal-artefacts/
// beside the pixserve binary (the build tree); the folder is printed and
// kept. The time from opening the page with a search in its address to the
// first results is printed.
import { after, afterEach, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

import { launchBrowser, pixserveBinary, run, startServer } from "./server.mjs";

const ARTEFACTS = process.env.PORTAL_ARTEFACTS ?? path.join(path.dirname(pixserveBinary()), "portal-artefacts");
// The middle of band g (metres), as the page asks for it.
const BAND_G = 4.76e-7;

let server, browser, page, token;
const problems = [];

before(async () => {
  mkdirSync(ARTEFACTS, { recursive: true });
  console.log(`portal test artefacts: ${ARTEFACTS}`);
  server = await startServer({
    async prepare(bin, dir) {
      const survey = path.join(dir, "survey");
      const repo = path.join(dir, "repo");
      // Coadd patches of 600 pixels and no template coadds: the default
      // 2000-pixel patches made a 1 GB survey (and a 2 GB repository) and
      // three quarters of the preparation time, for the same checks.
      run(bin, ["simulate", "--out", survey, "--visits", "6", "--detectors", "2", "--detector-size", "256",
                "--bands", "gri", "--no-comp", "--seed", "7", "--patch-size", "600", "--patch-border", "50",
                "--template-visits", "0"]);
      run(bin, ["ingest", "--repo", repo, survey]);
      run(bin, ["ingest", "--repo", repo, "--collection", "EMB", "--embargo-hours", "10000000", survey]);
      run(bin, ["hips", "--repo", repo, "--color", "g,r,i", "--order", "11", "--audience", "public"]);
      token = run(bin, ["token", "create", "--repo", repo, "--user", "ops", "--groups", "staff"]).trim();
      const config = path.join(dir, "pixserve.yaml");
      writeFileSync(config, "auth:\n  embargo_exempt_groups: [staff]\nhips:\n  public_max_order: 11\n");
      return ["--config", config];
    },
  });
}, { timeout: 240_000 });

afterEach(async (t) => {
  // node:test has no failed flag on the context here: the messages area
  // is empty on success, so this prints only when something went wrong.
  await diagnose(t);
});

after(async () => {
  await browser?.close();
  if (server) assert.equal(await server.stop(), 0, "pixserve serve exits 0 after SIGTERM");
});

// --- helpers ----------------------------------------------------------------

// The rows of a VOTable (TABLEDATA) as objects by FIELD name.
function votableRows(text) {
  const rows = text.split("<TR>").slice(1).map((tr) => [...tr.split("</TR>")[0].matchAll(/<TD>(.*?)<\/TD>|<TD\/>/gs)].map((m) => m[1] ?? ""));
  const names = [...text.matchAll(/<FIELD [^>]*name="([^"]+)"/g)].map((m) => m[1]);
  return rows.map((r) => Object.fromEntries(names.map((n, i) => [n, r[i] ?? ""])));
}

async function sia(params, headers = {}) {
  const url = new URL(`${server.url}/api/sia/query`);
  for (const [k, v] of params) url.searchParams.append(k, v);
  return votableRows(await (await fetch(url, { headers })).text());
}

// ADQL run directly by TAP (sync), anonymously as the page is by then.
async function tap(adql) {
  const url = new URL(`${server.url}/api/tap/sync`);
  for (const [k, v] of [["REQUEST", "doQuery"], ["LANG", "ADQL"], ["QUERY", adql]]) url.searchParams.append(k, v);
  const response = await fetch(url);
  const text = await response.text();
  assert.ok(response.ok, `TAP ${response.status} for ${adql}: ${text.slice(0, 600)}`);
  return votableRows(text);
}

// The viewport with `selector` scrolled into view. Never fullPage: that
// resizes the viewport for the capture, and Aladin Lite's WebGL canvas,
// following the resize, stops drawing under software rendering.
async function shot(name, selector) {
  if (selector) await page.locator(selector).scrollIntoViewIfNeeded();
  // Software WebGL on two busy cores can take tens of seconds to finish a frame.
  await page.screenshot({ path: path.join(ARTEFACTS, `${name}.png`), timeout: 90_000 });
}

// FITS header cards of every HDU (enough to check a cutout's WCS here).
function fitsHeaders(buffer) {
  const hdus = [];
  let at = 0;
  while (at + 2880 <= buffer.length) {
    const cards = new Map();
    let end = false;
    for (; !end; at += 80) {
      const card = buffer.subarray(at, at + 80).toString("latin1");
      if (card.startsWith("END ")) end = true;
      else if (card.slice(8, 10) === "= ") cards.set(card.slice(0, 8).trim(), card.slice(10).split(" /")[0].trim().replace(/^'(.*?) *'$/, "$1"));
    }
    at = Math.ceil(at / 2880) * 2880;
    let size = Number(cards.get("NAXIS")) ? Math.abs(Number(cards.get("BITPIX"))) / 8 : 0;
    for (let i = 1; i <= Number(cards.get("NAXIS")); i++) size *= Number(cards.get(`NAXIS${i}`));
    at += Math.ceil(size / 2880) * 2880;
    hdus.push(cards);
  }
  return hdus;
}

// How many pixels of a PNG screenshot have the footprint colour (#ffb000:
// strong red, middling green, little blue), counted in the page (a canvas
// decodes the PNG).
async function footprintPixels(png) {
  return page.evaluate(async (b64) => {
    const img = new Image();
    await new Promise((resolve) => { img.onload = resolve; img.src = `data:image/png;base64,${b64}`; });
    const c = Object.assign(document.createElement("canvas"), { width: img.width, height: img.height });
    const ctx = c.getContext("2d");
    ctx.drawImage(img, 0, 0);
    const p = ctx.getImageData(0, 0, img.width, img.height).data;
    let n = 0;
    for (let i = 0; i < p.length; i += 4) if (p[i] > 200 && p[i + 1] > 120 && p[i + 1] < 210 && p[i + 2] < 90) n++;
    return n;
  }, png.toString("base64"));
}

// Screenshots of the sky until `done(count of footprint pixels)` holds:
// software WebGL on a busy machine draws a few frames a second at best.
async function skyUntil(file, done) {
  let count = -1;
  for (const started = Date.now(); Date.now() - started < 30_000;) {
    count = await footprintPixels(await page.locator("#aladin").screenshot({ path: path.join(ARTEFACTS, file) }));
    if (done(count)) break;
    await page.waitForTimeout(500);
  }
  return count;
}

// What the page says when a step fails: its messages and a screenshot.
async function diagnose(t) {
  if (!page) return;
  const messages = await page.locator("#messages").textContent().catch(() => "");
  if (!messages) return;
  console.log(`portal messages after "${t.name}": ${messages}`);
  await page.screenshot({ path: path.join(ARTEFACTS, `failed-${t.name.slice(0, 40).replace(/\W+/g, "-")}.png`) }).catch(() => {});
}

async function resultCount() {
  const text = await page.locator("#results-status").textContent();
  const m = /^(\d+) rows?/.exec(text);
  assert.ok(m, `results status: ${text}`);
  return Number(m[1]);
}

async function search() {
  const before = await page.evaluate(() => window.pixservePortal.searches);
  await page.locator("#search-button").click();
  await page.waitForFunction((n) => window.pixservePortal.searches > n, before, { timeout: 30_000 });
}

// The form back to the whole survey: a cone without a centre, no type, no
// observing conditions (the next step starts from there whatever failed).
async function wholeSurvey() {
  await page.locator("#shape-circle").check();
  for (const field of ["#ra", "#dec", "#where", "#seeing_max", "#wind_max", "#dome_tmin", "#dome_tmax", "#airmass_max"]) {
    await page.locator(field).fill("");
  }
  for (const box of await page.locator('input[name="type"]').all()) await box.uncheck();
}

// A position on the sky as a point on the page (Aladin's canvas).
async function pagePoint(ra, dec) {
  await page.locator("#aladin").evaluate((e) => e.scrollIntoView({ block: "center" }));
  const [x, y] = await page.evaluate(([r, d]) => window.pixservePortal.sky().world2pix(r, d), [ra, dec]);
  const box = await page.locator("#aladin").boundingBox();
  return [box.x + x, box.y + y];
}

// --- the steps, in order, on one page ---------------------------------------

let centre;          // [ra, dec] of the cone
let coneRows;        // what SIAv2 answers for the cone and band

test("a cone and band search shows the rows SIAv2 answers", { timeout: 180_000 }, async () => {
  // The survey's first public g calexp gives the cone's centre.
  const calexps = await sia([["DPSUBTYPE", "calexp"], ["BAND", `${BAND_G} ${BAND_G}`], ["MAXREC", "1"]]);
  centre = [Number(calexps[0].s_ra), Number(calexps[0].s_dec)];
  coneRows = await sia([["POS", `CIRCLE ${centre[0]} ${centre[1]} 0.05`], ["BAND", `${BAND_G} ${BAND_G}`], ["MAXREC", "10000"]]);
  assert.ok(coneRows.length > 1, `${coneRows.length} rows in the cone`);

  // Software WebGL, so that Aladin Lite draws.
  browser = await launchBrowser({ webgl: true });
  page = await browser.context.newPage();
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  await page.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(server.url) || u.startsWith("data:") || u.startsWith("blob:")) return route.continue();
    problems.push(`external request: ${u}`);
    return route.abort();
  });
  await page.setViewportSize({ width: 1400, height: 1000 });

  // The search in the page's address, as a bookmark or a shared link
  // gives it: the page runs it at once and the sky follows.
  const started = Date.now();
  await page.goto(`${server.url}/portal?ra=${centre[0]}&dec=${centre[1]}&radius=0.05&band=g`);
  await page.waitForFunction(() => window.pixservePortal?.searches > 0, null, { timeout: 30_000 });
  const loadMs = Date.now() - started;
  const [inPage, searchMs] = await page.evaluate(() => [window.pixservePortal.firstResultsAt, window.pixservePortal.lastSearchMs]);
  console.log(`portal: page load to first results: ${Math.round(inPage)} ms from navigation start (the search ` +
              `itself ${Math.round(searchMs)} ms; ${loadMs} ms for the test)`);
  assert.equal(await page.locator("#band").inputValue(), "g", "the form shows the search of the address");

  assert.equal(await resultCount(), coneRows.length);
  // The query shown is the SIAv2 URL that ran, and answers the same rows.
  const shown = await page.locator("#query-text").textContent();
  assert.match(shown, /\/api\/sia\/query\?POS=CIRCLE/);
  assert.equal((await (await fetch(shown)).text()).split("<TR>").length - 1, coneRows.length);
  // Sorting by a column reorders the page in view.
  await page.getByRole("button", { name: /^visit/ }).click();
  assert.equal(await page.locator("th[aria-sort=ascending]").count(), 1);
  await shot("1-search", "#results");
});

test("the footprints are drawn on Aladin Lite's canvas", { timeout: 180_000 }, async () => {
  // The page afresh: the sky at the cone before the search, then after
  // it, when the footprints are drawn over it. (The Footprints box hides
  // them too, but under software WebGL Aladin Lite does not always clear
  // its overlay canvas, so the test does not rely on that.)
  await page.goto(`${server.url}/portal`);
  await page.waitForFunction(() => window.pixservePortal.skyReady === true, null, { timeout: 40_000 });
  await page.locator("#aladin").evaluate((e) => e.scrollIntoView({ block: "center" }));
  await page.evaluate(([ra, dec]) => window.pixservePortal.sky().goto(ra, dec, 0.3), centre);
  await page.waitForTimeout(1000);  // tiles
  const before = await footprintPixels(await page.locator("#aladin").screenshot({ path: path.join(ARTEFACTS, "2-sky-before-search.png") }));
  await page.locator("#ra").fill(String(centre[0]));
  await page.locator("#dec").fill(String(centre[1]));
  await page.locator("#radius").fill("0.05");
  await page.locator("#band").selectOption("g");
  await search();
  // The search typed is now the page's address (to bookmark or share).
  const address = new URL(page.url());
  assert.equal(address.pathname, "/portal");
  assert.deepEqual([address.searchParams.get("ra"), address.searchParams.get("band")], [String(centre[0]), "g"]);
  await page.locator("#aladin").evaluate((e) => e.scrollIntoView({ block: "center" }));
  const after = await skyUntil("2-sky-footprints.png", (n) => n > before + 300);
  assert.ok(after > before + 300, `${after} footprint-coloured pixels after the search, ${before} before`);
  // The coverage (MOC) of the same search, drawn over the sky.
  await page.locator("#show-moc").check();
  await page.waitForFunction(() => window.pixservePortal.mocCells !== null, null, { timeout: 20_000 });
  assert.ok(await page.evaluate(() => window.pixservePortal.mocCells) > 0, "MOC cells");
  await page.locator("#aladin").screenshot({ path: path.join(ARTEFACTS, "2-sky-moc.png") });
  await page.locator("#show-moc").uncheck();
});

let selectedId;

test("a row's DataLink links, preview and header; a click on a footprint selects its row", { timeout: 180_000 }, async () => {
  await page.locator("button.row-select").first().click();
  await page.waitForSelector('#links-table tr[data-semantics="#this"]', { timeout: 20_000 });
  const semantics = await page.$$eval("#links-table tr", (trs) => trs.map((tr) => tr.dataset.semantics).filter(Boolean));
  for (const s of ["#this", "#preview", "#cutout", "#detached-header"]) assert.ok(semantics.includes(s), semantics.join(" "));
  await page.waitForFunction(() => document.querySelector("#preview").complete && !document.querySelector("#preview").hidden);
  assert.match(await page.locator("#header-text").textContent(), /SIMPLE\s*=\s*T/);
  selectedId = (await page.locator("tr.selected button.row-select").textContent()).trim();
  await shot("3-dataset", "#dataset");

  // A click on the sky inside some other footprint selects that row.
  const other = coneRows.find((r) => r.obs_id !== selectedId);
  await page.locator("#click-select").check();
  const [x, y] = await pagePoint(Number(other.s_ra), Number(other.s_dec));
  await page.mouse.click(x, y);
  await page.waitForFunction((id) => {
    const b = document.querySelector("tr.selected button.row-select");
    return b && b.textContent.trim() !== id;
  }, selectedId, { timeout: 20_000 });
  selectedId = (await page.locator("tr.selected button.row-select").textContent()).trim();
});

test("a cutout drawn on the sky downloads as a FITS file with a WCS", { timeout: 180_000 }, async () => {
  const row = coneRows.find((r) => r.obs_id === selectedId);
  const [ra, dec] = [Number(row.s_ra), Number(row.s_dec)];
  await page.locator("#cut-draw").click();
  assert.ok(await page.locator("#click-cutout").isChecked(), "drawing sets the click mode");
  const [x, y] = await pagePoint(ra, dec);
  await page.mouse.click(x, y);
  await page.mouse.click(x + 25, y);
  const radius = Number(await page.locator("#cut_radius").inputValue());
  assert.ok(radius > 0, `radius ${radius}`);
  await shot("4-cutout-drawn");
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: 30_000 }), page.locator("#cut-run").click()]);
  const file = path.join(ARTEFACTS, "cutout.fits");
  await download.saveAs(file);
  const bytes = readFileSync(file);
  const hdus = fitsHeaders(bytes);
  assert.equal(hdus[0].get("SIMPLE"), "T");
  const image = hdus.find((h) => h.get("NAXIS") === "2");
  assert.ok(image, "an image HDU");
  assert.match(image.get("CTYPE1"), /^RA---TAN/);
  const crval = [Number(image.get("CRVAL1")), Number(image.get("CRVAL2"))];
  assert.ok(crval.every(Number.isFinite), `CRVAL ${crval}`);
  // astropy, where Debian's is installed, opens it with a celestial WCS
  // whose footprint holds the cutout's centre.
  if (existsSync("/usr/bin/python3")) {
    const check = spawnSync("/usr/bin/python3", ["-c", `
import sys, warnings
warnings.simplefilter("ignore")
try:
    from astropy.io import fits
    from astropy.wcs import WCS
except ImportError:
    sys.exit(3)
with fits.open(sys.argv[1]) as f:
    h = [x for x in f if x.header.get("NAXIS") == 2][0]
    w = WCS(h.header)
    assert w.has_celestial
    x, y = w.world_to_pixel_values(${ra}, ${dec})
    ny, nx = h.data.shape
    assert -1 <= x <= nx and -1 <= y <= ny, (x, y, nx, ny)
`, file], { encoding: "utf8" });
    assert.ok(check.status === 0 || check.status === 3, check.stderr);
  }
  await shot("4-cutout-done", "#cutout");
  assert.deepEqual(hdus.slice(1).map((h) => h.get("EXTNAME")), ["IMAGE", "MASK", "VARIANCE"]);
  // The planes chosen: without the mask, the file holds the image and its variance only.
  await page.locator("#cut-plane-mask").uncheck();
  const [planes] = await Promise.all([page.waitForEvent("download", { timeout: 30_000 }), page.locator("#cut-run").click()]);
  const planesFile = path.join(ARTEFACTS, "cutout-planes.fits");
  await planes.saveAs(planesFile);
  assert.deepEqual(fitsHeaders(readFileSync(planesFile)).slice(1).map((h) => h.get("EXTNAME")), ["IMAGE", "VARIANCE"]);
  await shot("4-cutout-planes", "#cutout");
  await page.locator("#cut-plane-mask").check();
});

test("a cutout as a UWS job shows its progress and lands in the job list", { timeout: 180_000 }, async () => {
  await page.locator("#cut_async").check();
  const [download] = await Promise.all([page.waitForEvent("download", { timeout: 40_000 }), page.locator("#cut-run").click()]);
  await download.saveAs(path.join(ARTEFACTS, "cutout-async.fits"));
  assert.equal(readFileSync(path.join(ARTEFACTS, "cutout-async.fits")).subarray(0, 9).toString(), "SIMPLE  =");
  assert.match(await page.locator("#cutout-progress-label").textContent(), /COMPLETED/);
  await page.waitForSelector("#jobs-table td:text('COMPLETED')", { timeout: 10_000 });
  await page.locator("#cut_async").uncheck();
  await shot("5-cutout-job", "#jobs-table");
});

test("the stamp gallery and light curve of a star have one point per epoch", { timeout: 180_000 }, async () => {
  // The brightest star (truth table of the simulation) that calexps cover.
  const truth = readFileSync(path.join(server.dir, "survey", "truth.csv"), "utf8").trim().split("\n");
  const head = truth[0].split(",");
  const stars = truth.slice(1).map((l) => Object.fromEntries(l.split(",").map((v, i) => [head[i], v])))
    .filter((s) => s.type === "star").sort((a, b) => Number(a.g) - Number(b.g));
  // Candidates: stars inside at least three public calexp footprints
  // (point in polygon on the small footprints); SIAv2 has the last word.
  const footprints = (await sia([["DPSUBTYPE", "calexp"], ["MAXREC", "10000"]])).map((r) => {
    const v = r.s_region.trim().split(/\s+/).map(Number);
    return Array.from({ length: v.length / 2 }, (_, i) => [v[2 * i], v[2 * i + 1]]);
  });
  const inside = (poly, x, y) => {
    let odd = false;
    for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) {
      const [xi, yi] = poly[i];
      const [xj, yj] = poly[j];
      if ((yi > y) !== (yj > y) && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) odd = !odd;
    }
    return odd;
  };
  const covered = stars.filter((s) => footprints.filter((p) => inside(p, Number(s.ra), Number(s.dec))).length >= 3);
  let star, epochs;
  for (const s of covered.slice(0, 10)) {
    const rows = await sia([["POS", `CIRCLE ${s.ra} ${s.dec} 0.00001`], ["DPSUBTYPE", "calexp"], ["MAXREC", "1000"]]);
    if (rows.length >= 3) { star = s; epochs = rows.length; break; }
  }
  assert.ok(star, `a bright star covered by three calexps or more (${covered.length} candidates)`);
  console.log(`portal: star ${star.id} (g ${star.g}) at ${star.ra} ${star.dec}, ${epochs} epochs`);
  await page.locator("#stamp_ra").fill(star.ra);
  await page.locator("#stamp_dec").fill(star.dec);
  await page.evaluate(() => { window.pixservePortal.lightCurvePoints = null; });
  await page.locator("#stamp-run").click();
  await page.waitForFunction(() => window.pixservePortal.lightCurvePoints !== null, null, { timeout: 40_000 });
  assert.equal(await page.locator("#lightcurve circle.point").count(), epochs);
  assert.equal(await page.locator("#stamp-list canvas").count(), epochs);
  // A bright star: its flux is measured, and positive, on every stamp.
  assert.equal(await page.locator("#lightcurve circle.unmeasured").count(), 0);
  await shot("6-stamps", "#lightcurve");
});

test("a service error is shown as its message, not as XML", { timeout: 180_000 }, async () => {
  await page.locator("#where").fill("no_such_column > 1");
  await page.locator("#search-button").click();
  await page.waitForSelector("#messages p", { timeout: 20_000 });
  const message = await page.locator("#messages p").first().textContent();
  assert.match(message, /^Search \(TAP\): /);
  assert.doesNotMatch(message, /<\?xml|<VOTABLE|INFO name/);
  assert.match(await page.locator("#query-text").textContent(), /\(no_such_column > 1\)/);
  await shot("7-error", "#messages");
  await page.locator("#where").fill("");
  await page.locator("#messages button").first().click();
});

test("signing in shows embargoed data the anonymous page does not", { timeout: 180_000 }, async () => {
  const params = [["POS", `CIRCLE ${centre[0]} ${centre[1]} 0.05`], ["DPSUBTYPE", "calexp"], ["MAXREC", "10000"]];
  const anonymous = await sia(params);
  const staff = await sia(params, { Authorization: `Bearer ${token}` });
  assert.ok(staff.length > anonymous.length, `${staff.length} vs ${anonymous.length}`);
  await page.locator("#band").selectOption("");
  await page.locator("#type-calexp").check();
  await search();
  assert.equal(await resultCount(), anonymous.length);

  // Keyboard only: the token field, Enter to sign in.
  await page.locator("#token").focus();
  await page.keyboard.type(token);
  const before = await page.evaluate(() => window.pixservePortal.searches);
  await page.keyboard.press("Enter");
  await page.waitForFunction((n) => window.pixservePortal.searches > n, before, { timeout: 30_000 });
  assert.match(await page.locator("#identity").textContent(), /^Signed in/);
  assert.equal(await resultCount(), staff.length);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("pixserve.portal.token")), token);
  await shot("8-signed-in", "#results");

  await page.locator("#signout-button").click();
  await page.waitForFunction(() => !sessionStorage.getItem("pixserve.portal.token"));
  await page.waitForFunction((n) => /^\d+ rows?/.test(document.querySelector("#results-status").textContent) &&
    Number(/^\d+/.exec(document.querySelector("#results-status").textContent)[0]) === n, anonymous.length, { timeout: 30_000 });
  assert.deepEqual(problems, [], "no page errors and no request leaving the server");
});

test("a polygon is checked as typed, drawn on the sky, and searches what SIAv2 answers for it", { timeout: 180_000 }, async () => {
  // Back to the whole survey, any type (the sign-in step left calexp).
  await page.locator("#type-calexp").uncheck();
  await page.locator("#shape-polygon").check();
  // Typed corners are checked, with messages that say what is wrong.
  for (const [typed, expected] of [["53 -28 54 -28", /at least three corners/], ["53 -28 54 -95 54 -27", /corner 2: Dec -95/],
                                   ["53 -28 54 x 54 -27", /"x" is not a number/]]) {
    await page.locator("#polygon").fill(typed);
    await page.locator("#search-button").click();
    await page.waitForSelector("#messages p", { timeout: 10_000 });
    assert.match(await page.locator("#messages p").last().textContent(), expected);
    await page.locator("#messages button").first().click();
  }
  await page.locator("#poly-clear").click();
  assert.equal(await page.locator("#polygon").inputValue(), "");

  // Drawn: "Draw on the sky", four clicks, "Close the polygon".
  const [ra0, dec0] = centre;
  await page.locator("#poly-draw").click();
  assert.ok(await page.locator("#click-polygon").isChecked(), "drawing sets the click mode");
  assert.ok(await page.locator("#poly-close").isVisible(), "a button closes the polygon");
  await page.evaluate(([ra, dec]) => window.pixservePortal.sky().goto(ra, dec, 0.3), centre);
  const d = 0.04;
  const dra = d / Math.cos((dec0 * Math.PI) / 180);
  const corners = [[ra0 - dra, dec0 - d], [ra0 + dra, dec0 - d], [ra0 + dra, dec0 + d], [ra0 - dra, dec0 + d]];
  for (const [ra, dec] of corners) {
    const [x, y] = await pagePoint(ra, dec);
    await page.mouse.click(x, y);
    await page.waitForTimeout(400);  // not a double click
  }
  const typed = (await page.locator("#polygon").inputValue()).trim().split(/\s+/).map(Number);
  assert.equal(typed.length, 8, `four corners: ${typed.join(" ")}`);
  corners.forEach(([ra, dec], i) => {
    assert.ok(Math.abs(typed[2 * i] - ra) < 0.005 && Math.abs(typed[2 * i + 1] - dec) < 0.005,
              `corner ${i + 1}: ${typed[2 * i]} ${typed[2 * i + 1]} for ${ra} ${dec}`);
  });
  await page.locator("#aladin").screenshot({ path: path.join(ARTEFACTS, "9-polygon-drawing.png"), timeout: 90_000 });
  await page.locator("#poly-close").click();
  assert.ok(await page.locator("#click-select").isChecked(), "closing ends the drawing");
  assert.equal(await page.evaluate(() => document.activeElement.id), "search-button");
  await search();
  const shown = new URL(await page.locator("#query-text").textContent());
  const pos = `POLYGON ${typed.join(" ")}`;
  assert.deepEqual([...shown.searchParams], [["POS", pos], ["MAXREC", "10000"]]);
  const direct = await sia([["POS", pos], ["MAXREC", "10000"]]);
  assert.ok(direct.length > 0, "the polygon holds some images");
  assert.equal(await resultCount(), direct.length);
  assert.equal(new URL(page.url()).searchParams.get("shape"), "polygon");
  await page.locator("#aladin").evaluate((e) => e.scrollIntoView({ block: "center" }));
  await shot("9-polygon");
});

test("observing conditions (EFD) join efd.visit_summary and answer what the same ADQL does", { timeout: 180_000 }, async () => {
  const visitCalexps = await sia([["DPSUBTYPE", "calexp"], ["MAXREC", "10000"]]);
  // A seeing bound that keeps some visits and not others.
  const seeing = (await tap("SELECT dimm_seeing FROM efd.visit_summary WHERE dimm_seeing IS NOT NULL ORDER BY dimm_seeing")).map((r) => Number(r.dimm_seeing));
  assert.ok(seeing.length >= 2, `${seeing.length} visit summaries`);
  const bound = seeing[Math.floor(seeing.length / 2)];
  await wholeSurvey();
  await page.locator("#type-calexp").check();
  await page.locator("#seeing_max").fill(String(bound));
  await search();
  const adql = await page.locator("#query-text").textContent();
  assert.match(adql, /FROM ivoa\.obscore AS o\nJOIN efd\.visit_summary AS e ON e\.visit = o\.visit/);
  // (The page writes numbers with ten significant digits.)
  assert.ok(adql.includes(`e.dimm_seeing <= ${Number(bound.toPrecision(10))}`), adql);
  const direct = await tap(adql);
  assert.ok(direct.length > 0, "some calexps have that seeing");
  assert.equal(await resultCount(), direct.length);
  if (seeing.at(-1) > bound) assert.ok(direct.length < visitCalexps.length, `${direct.length} of ${visitCalexps.length} calexps`);
  // The visit summary's columns are shown, and the bound is in the address.
  assert.ok(await page.locator("#col-dimm_seeing").isChecked(), "dimm_seeing is shown");
  assert.equal(new URL(page.url()).searchParams.get("seeing_max"), String(bound));
  await shot("10-efd", "#results");
  await page.locator("#seeing_max").fill("");
  await page.locator("#type-calexp").uncheck();
});

test("coadd provenance joins survey.coadds and answers what the same ADQL does", { timeout: 180_000 }, async () => {
  await wholeSurvey();
  // The fields show only for coadds, after the coadd types in focus order.
  assert.ok(await page.locator("#inputs_min").isHidden());
  await page.locator("#type-coadd").check();
  await page.locator("#type-goodseeing").focus();
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.id), "inputs_min");
  const inputs = (await tap("SELECT n_inputs FROM survey.coadds WHERE dataset_type = 'deepCoadd' AND n_inputs IS NOT NULL ORDER BY n_inputs"))
    .map((r) => Number(r.n_inputs));
  assert.ok(inputs.length > 0, "coadds with provenance");
  const bound = inputs[Math.floor(inputs.length / 2)];
  await page.keyboard.type(String(bound));
  await page.locator("#coverage_min").fill("0");
  await shot("11-coadd-provenance-form", "#coadd-fields");
  await search();
  const adql = await page.locator("#query-text").textContent();
  assert.match(adql, /FROM ivoa\.obscore AS o\nJOIN survey\.coadds AS c ON c\.dataset_id = o\.obs_id/);
  assert.ok(adql.includes(`c.n_inputs >= ${bound}\n`), adql);
  const direct = await tap(adql);
  assert.ok(direct.length > 0, "some coadds have that many inputs");
  assert.equal(await resultCount(), direct.length);
  for (const column of ["n_inputs", "coverage_fraction", "depth_5sigma", "inputs_t_min", "inputs_t_max"]) {
    assert.ok(await page.locator(`#col-${column}`).isChecked(), `${column} is shown`);
  }
  assert.ok(await page.getByRole("button", { name: /^n_inputs/ }).isVisible());
  await shot("11-coadd-provenance", "#results");
  // Without a coadd type the provenance fields, still filled in, no longer count.
  await page.locator("#type-coadd").uncheck();
  assert.ok(await page.locator("#inputs_min").isHidden());
  assert.match(await page.locator("#query-text").textContent(), /\/api\/sia\/query\?MAXREC=10000$/);
  assert.deepEqual(problems, [], "no page errors and no request leaving the server");
});

test("the results table keeps 10,000 rows to one page of the DOM and sorts them fast", { timeout: 180_000 }, async () => {
  // The table module of the page on a made-up result of 10,000 rows (the
  // test survey has far fewer): only one page is rendered, and a sort and a
  // page change take milliseconds.
  const timing = await page.evaluate(async () => {
    const { createResultsTable } = await import(new URL("web/portal/table.js", document.baseURI).href);
    const table = createResultsTable(document.querySelector("#results"), { onSelect() {}, onHover() {}, onDownload() {} });
    const fields = [{ name: "obs_id", datatype: "char", numeric: false }, { name: "visit", datatype: "long", numeric: true },
                    { name: "t_min", datatype: "double", numeric: true }];
    const rows = Array.from({ length: 10_000 }, (_, i) => [`row${i}`, (i * 7919) % 10_000, 61000 + i / 1000]);
    const query = { service: "SIAv2", download: (f) => `about:blank#${f}` };
    let t = performance.now();
    table.setResult({ fields, rows, overflow: false }, query);
    const render = performance.now() - t;
    t = performance.now();
    document.querySelector("#results-table thead button").click();  // sort by obs_id
    document.querySelector("#results-table thead button").click();  // and back
    const sort = performance.now() - t;
    document.querySelector("#page-next").click();
    return { render, sort, trs: document.querySelectorAll("#results-table tbody tr").length,
             status: document.querySelector("#results-status").textContent, pager: document.querySelector("#pager-label").textContent };
  });
  console.log(`portal: 10,000 rows: first page in ${timing.render.toFixed(0)} ms, two sorts in ${timing.sort.toFixed(0)} ms`);
  assert.equal(timing.trs, 50);
  assert.match(timing.status, /^10000 rows/);
  assert.match(timing.pager, /^Page 2 of 200/);
  assert.ok(timing.sort < 2000, `two sorts of 10,000 rows took ${timing.sort} ms`);
});
