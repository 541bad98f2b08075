// Browser test of the HiPS maps: Aladin Lite (npm aladin-lite, served by
// pixserve at /web/aladin-lite/) shows the colour map of a small simulated
// survey in headless Chromium; the page loads tiles from /api/hips/ only,
// and the screenshot (kept in the temp folder) is not blank.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

import { pixserveBinary } from "./server.mjs";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
let dir, child, url, context;

function run(args) {
  const r = spawnSync(pixserveBinary(), args, { encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`pixserve ${args.join(" ")} failed:\n${r.stdout}\n${r.stderr}`);
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "pixserve-hips-browser-"));
  run(["simulate", "--out", path.join(dir, "survey"), "--visits", "3", "--detectors", "2", "--detector-size", "256",
       "--no-comp", "--seed", "5"]);
  run(["ingest", "--repo", path.join(dir, "repo"), path.join(dir, "survey")]);
  run(["hips", "--repo", path.join(dir, "repo"), "--color", "g,r,i", "--order", "11", "--audience", "public"]);
  const config = path.join(dir, "pixserve.yaml");
  writeFileSync(config, "hips:\n  public_max_order: 11\n");
  child = spawn(pixserveBinary(), ["serve", "--repo", path.join(dir, "repo"), "--host", "127.0.0.1", "--port", "0",
                                   "--config", config], { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no server:\n${log}`)), 30_000);
    const onData = (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
  });
  context = await chromium.launchPersistentContext(path.join(dir, "profile"), {
    executablePath: CHROMIUM, headless: true,
    args: ["--headless", "--no-sandbox", "--use-angle=swiftshader", "--use-gl=angle", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  await context?.close();
  if (child) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGTERM");
    await exited;
  }
  if (dir && !process.env.KEEP_HIPS_SCREENSHOT) rmSync(dir, { recursive: true, force: true });
});

test("Aladin Lite shows the colour HiPS", async () => {
  const page = await context.newPage();
  const external = [];
  const tiles = [];
  const problems = [];
  page.on("console", (msg) => { if (msg.type() === "error") problems.push(`console: ${msg.text()}`); });
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  await page.route("**/*", (route) => {
    const u = route.request().url();
    if (u.startsWith(url) || u.startsWith("data:") || u.startsWith("blob:")) {
      if (u.includes("/api/hips/deepCoadd-gri/Norder")) tiles.push(u);
      return route.continue();
    }
    external.push(u);
    return route.abort();
  });
  await page.setViewportSize({ width: 800, height: 600 });
  await page.goto(`${url}/web/hips.html?map=deepCoadd-gri`);
  await page.waitForFunction(() => window.pixserveHipsReady === true, null, { timeout: 60_000 })
    .catch((e) => { throw new Error(`${e.message}\n${problems.join("\n")}\nexternal: ${external.join(" ")}`); });
  await page.waitForTimeout(5000);
  const shot = await page.screenshot({ path: path.join(dir, "aladin-hips.png") });
  assert.ok(tiles.length > 0, "Aladin Lite fetched tiles of the map");
  assert.deepEqual(external, [], "no request left the server");
  assert.ok(shot.length > 10_000, `screenshot of ${shot.length} bytes`);
});

test("the landing page lists the maps with a link to view them", async () => {
  const doc = await (await fetch(`${url}/api/services.json`)).json();
  const hips = doc.services.find((s) => s.name === "hips");
  assert.ok(hips.resources.some((r) => r.name === "deepCoadd-gri" && r.href === "/web/hips.html?map=deepCoadd-gri"),
            JSON.stringify(hips.resources));
  // With maps, the progenitors endpoint has an example too, on a map that exists.
  assert.match(hips.endpoints.find((e) => e.path === "/api/hips/progenitors").example, /MAP=deepCoadd-/);
  const page = await context.newPage();
  const problems = [];
  page.on("console", (msg) => { if (msg.type() === "error") problems.push(`console: ${msg.text()}`); });
  await page.goto(`${url}/`);
  await page.waitForSelector('#services[data-ready="true"]', { timeout: 30_000 });
  const link = page.locator('#service-hips a.resource[href="web/hips.html?map=deepCoadd-gri"]');
  assert.equal(await link.count(), 1);
  for (const href of await page.$$eval("#service-hips a", (as) => as.map((a) => a.href))) {
    assert.equal((await page.request.get(href)).status(), 200, href);
  }
  assert.deepEqual(problems, [], "the landing page logs no errors");
  // The viewer opens from it (its own console is Aladin Lite's business).
  await link.click();
  await page.waitForFunction(() => window.pixserveHipsReady === true, null, { timeout: 60_000 });
  assert.match(page.url(), /\/web\/hips\.html\?map=deepCoadd-gri$/);
  await page.close();
});
