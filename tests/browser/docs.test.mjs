// Browser tests: the OpenAPI document validates with the npm validator, and
// Swagger UI (served locally from swagger-ui-dist) renders every operation
// in headless Chromium and runs a query; the landing page shows the
// availability. Run with `node --test tests/browser/` (make browser-test).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { tmpdir } from "node:os";
import path from "node:path";

import { launchBrowser, startServer } from "./server.mjs";
import { validateOpenApi } from "../tools/validate-openapi.mjs";


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
async function openPage() {
  const page = await context.newPage();
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

test("the OpenAPI document validates", async () => {
  const response = await fetch(`${server.url}/openapi.json`);
  assert.equal(response.status, 200);
  const doc = await response.json();
  const { version, operations } = await validateOpenApi(doc);
  assert.equal(version, "3.0.3");
  assert.ok(operations >= 6, `${operations} operations`);
  assert.ok(doc.paths["/api/datasets/query"].get && doc.paths["/api/datasets/query"].post);
});

test("Swagger UI renders every operation and runs a query", async () => {
  const { page, problems } = await openPage();
  await page.goto(`${server.url}/docs/`);
  await page.waitForSelector(".opblock", { timeout: 30_000 });
  const doc = await (await fetch(`${server.url}/openapi.json`)).json();
  const expected = [];
  for (const [p, item] of Object.entries(doc.paths)) for (const m of Object.keys(item)) expected.push(`${m.toUpperCase()} ${p}`);
  const rendered = await page.$$eval(".opblock", (blocks) => blocks.map((b) =>
    `${b.querySelector(".opblock-summary-method")?.textContent.trim()} ${b.querySelector(".opblock-summary-path")?.getAttribute("data-path")}`));
  assert.deepEqual([...rendered].sort(), [...expected].sort());
  assert.match(await page.textContent(".info .title"), /pixserve/);

  // Open GET /api/datasets/query, try it out with MAXREC=2, execute.
  const op = page.locator(".opblock-get", { has: page.locator('[data-path="/api/datasets/query"]') });
  await op.locator(".opblock-summary").click();
  await op.locator("button.try-out__btn").click();
  const maxrec = op.locator('tr[data-param-name="MAXREC"] input');
  await maxrec.fill("2");
  await op.locator("button.execute").click();
  const status = op.locator(".live-responses-table tbody .response-col_status").first();
  await status.waitFor({ timeout: 30_000 });
  assert.equal((await status.textContent()).trim(), "200");
  const body = await op.locator(".live-responses-table tbody .response-col_description").first().textContent();
  assert.match(body, /QUERY_STATUS/);
  await page.screenshot({ path: path.join(tmpdir(), "pixserve-docs.png"), fullPage: false });
  assert.deepEqual(problems, []);
  await page.close();
});

test("the landing page links the services and shows the availability", async () => {
  const { page, problems } = await openPage();
  await page.goto(`${server.url}/`);
  await page.waitForFunction(() => !document.getElementById("status").textContent.includes("checking"));
  assert.equal(await page.textContent("#status"), "all services available");
  for (const href of ["docs/", "openapi.json", "api/availability"]) {
    assert.equal(await page.locator(`a[href="${href}"]`).count(), 1, href);
  }
  await page.click('a[href="docs/"]');
  await page.waitForSelector(".opblock", { timeout: 30_000 });
  assert.deepEqual(problems, []);
  await page.close();
});
