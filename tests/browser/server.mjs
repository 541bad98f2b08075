// Starts `pixserve serve` on a tiny simulated repository for the browser
// tests: simulate + ingest into a temporary folder, then serve on a free
// loopback port (read from the "listening on" log line). stop() sends
// SIGTERM and removes the folder.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export function pixserveBinary() {
  const bin = process.env.PIXSERVE_BIN ?? path.join(ROOT, "build", "pixserve");
  if (!existsSync(bin)) throw new Error(`pixserve binary not found at ${bin}; run make build or set PIXSERVE_BIN`);
  return bin;
}

export function run(bin, args) {
  const result = spawnSync(bin, args, { encoding: "utf8", timeout: 300_000 });
  if (result.status !== 0) throw new Error(`${bin} ${args.join(" ")} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

// Without options, a tiny survey without coadds. `prepare(bin, dir)` makes
// another repository instead (at dir/repo) and may return more arguments
// of `serve` (a --config file it wrote).
export async function startServer({ prepare } = {}) {
  const bin = pixserveBinary();
  const dir = mkdtempSync(path.join(tmpdir(), "pixserve-browser-"));
  let serveArgs = [];
  if (prepare) {
    serveArgs = (await prepare(bin, dir)) ?? [];
  } else {
    run(bin, ["simulate", "--out", path.join(dir, "survey"), "--visits", "2", "--detectors", "2",
              "--detector-size", "64", "--no-coadds", "--no-comp", "--seed", "3"]);
    run(bin, ["ingest", "--repo", path.join(dir, "repo"), path.join(dir, "survey")]);
  }
  const child = spawn(bin, ["serve", "--repo", path.join(dir, "repo"), "--host", "127.0.0.1", "--port", "0", ...serveArgs],
                      { stdio: ["ignore", "pipe", "pipe"] });
  let log = "";
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pixserve serve did not start:\n${log}`)), 30_000);
    const onData = (chunk) => {
      log += chunk;
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`pixserve serve exited with ${code}:\n${log}`)));
  });
  return {
    url,
    dir,
    log: () => log,
    async stop() {
      const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
      child.kill("SIGTERM");
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

// Debian's headless Chromium with a fresh profile (--user-data-dir, which
// playwright passes for a persistent context) and no background traffic:
// pages may only talk to pixserve. close() also removes the profile.
// With `webgl`, software WebGL (SwiftShader) instead of no GPU, so that
// Aladin Lite's canvas renders.
export async function launchBrowser({ webgl = false } = {}) {
  const profile = mkdtempSync(path.join(tmpdir(), "pixserve-chromium-"));
  const gpu = webgl ? ["--use-angle=swiftshader", "--use-gl=angle", "--enable-unsafe-swiftshader", "--ignore-gpu-blocklist"]
                    : ["--disable-gpu"];
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM_BIN ?? "/usr/bin/chromium",
    headless: true,
    acceptDownloads: true,
    args: ["--headless", "--no-sandbox", ...gpu, "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
