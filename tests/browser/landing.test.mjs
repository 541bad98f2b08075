// Browser test of the landing page (/): it is drawn from /api/services.json,
// the directory of the service catalogue, so every routed service must
// appear with its path, its standards and an example link that answers 200;
// the directory must name the same services as /api/availability.json; and
// the page must not log errors. A screenshot is kept in the temp folder
// (pixserve-landing.png). Run with `node --test tests/browser/` (make
// browser-test).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import path from "node:path";

import { launchBrowser, startServer } from "./server.mjs";

let server;
let browser;
let context;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  context = browser.context;
});

after(async () => {
  await browser?.close();
  if (server) assert.equal(await server.stop(), 0, "pixserve serve exits 0 after SIGTERM");
});

// A page that records console errors and fails any request leaving the server.
async function openPage(options = {}) {
  const page = await context.newPage(options);
  const problems = [];
  page.on("console", (msg) => { if (msg.type() === "error") problems.push(`console: ${msg.text()}`); });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(server.url) || url.startsWith("data:")) return route.continue();
    problems.push(`external request: ${url}`);
    return route.abort();
  });
  return { page, problems };
}

async function directory() {
  const response = await fetch(`${server.url}/api/services.json`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type"), /^application\/json/);
  return response.json();
}

test("the directory names the services of the availability report, each with an example", async () => {
  const doc = await directory();
  const availability = await (await fetch(`${server.url}/api/availability.json`)).json();
  assert.deepEqual(doc.services.map((s) => s.name), availability.services.map((s) => s.name));
  // The services the server is known to route; a new one shows up here first.
  for (const name of ["datasets", "sia", "datalink", "tap", "soda", "hips", "moc"]) {
    assert.ok(doc.services.some((s) => s.name === name), name);
  }
  for (const s of doc.services) {
    assert.equal(s.path, `/api/${s.name}`);
    assert.ok(s.standard_ids.includes("ivo://ivoa.net/std/VOSI#capabilities"), s.name);
    assert.equal(typeof s.available, "boolean", s.name);
    assert.ok(s.example?.startsWith(`${s.path}/`), `${s.name} has an example query`);
    // The standards listed are those of the VOSI capabilities document.
    const caps = await (await fetch(`${server.url}${s.capabilities_url}`)).text();
    const ids = [...caps.matchAll(/standardID="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(s.standard_ids, ids, s.name);
  }
});

test("the landing page lists every service with its path and a working example", async () => {
  const doc = await directory();
  const { page, problems } = await openPage({ viewport: { width: 1000, height: 800 } });
  await page.goto(`${server.url}/`);
  await page.waitForSelector('#services[data-ready="true"]', { timeout: 30_000 });
  assert.equal(await page.textContent("#status"), "all services available");

  const shown = await page.$$eval("#services .service", (sections) => sections.map((s) => s.dataset.name));
  assert.deepEqual(shown, doc.services.map((s) => s.name));
  for (const s of doc.services) {
    const section = page.locator(`#service-${s.name}`);
    assert.equal((await section.locator("code.path").textContent()).trim(), s.path);
    assert.match(await section.locator("h3").textContent(), /available/);
    const standards = await section.locator(".standards code").allTextContents();
    assert.deepEqual(standards, s.standard_ids, s.name);
    const endpoints = await section.locator(".endpoints code").allTextContents();
    assert.deepEqual(endpoints, s.endpoints.map((e) => e.path), s.name);

    // The example link, resolved by the browser against the page: it must answer.
    const href = await section.locator("a.example").evaluate((a) => a.href);
    assert.equal(new URL(href).pathname + new URL(href).search, s.example, s.name);
    const response = await page.request.get(href);
    assert.equal(response.status(), 200, `${s.name}: ${href}`);
  }
  // Every endpoint example and VOSI link on the page answers too.
  const links = await page.$$eval("#services a", (as) => as.map((a) => a.href));
  for (const href of new Set(links)) {
    const response = await page.request.get(href);
    assert.equal(response.status(), 200, href);
  }
  // The stale text is gone; the page's own links stay.
  assert.doesNotMatch(await page.textContent("body"), /will appear/);
  for (const href of ["docs/", "openapi.json", "status", "api/availability"]) {
    assert.ok(await page.locator(`a[href="${href}"]`).count() >= 1, href);
  }
  await page.screenshot({ path: path.join(tmpdir(), "pixserve-landing.png"), fullPage: true });
  assert.deepEqual(problems, []);
  await page.close();
});

test("without the directory the page still points to the OpenAPI document and the status page", async () => {
  // Without JavaScript: the <noscript> line.
  const html = await (await fetch(`${server.url}/`)).text();
  const noscript = /<noscript>([\s\S]*?)<\/noscript>/.exec(html)?.[1] ?? "";
  assert.match(noscript, /href="openapi.json"/);
  assert.match(noscript, /href="status"/);
  // With JavaScript but no answer from the directory: the same links in its place.
  const { page } = await openPage();
  await page.route("**/api/services.json", (route) => route.abort());
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => document.getElementById("status").textContent.startsWith("unknown"));
  assert.equal(await page.locator('#services-note a[href="openapi.json"]').count(), 1);
  assert.equal(await page.locator('#services-note a[href="status"]').count(), 1);
  await page.close();
});
