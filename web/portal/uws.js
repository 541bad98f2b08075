// UWS 1.1 jobs (the asynchronous SODA endpoint): create, run, follow the
// phase and pixserve's progress element, list the caller's jobs.
import { formBody, getText, request } from "./api.js";
import { parseXml } from "./votable.js";

const FINAL = new Set(["COMPLETED", "ERROR", "ABORTED", "ARCHIVED"]);

function text(doc, name) {
  const el = doc.getElementsByTagNameNS("*", name)[0];
  return el ? el.textContent.trim() : "";
}

// The job document as {id, url, phase, progress (0..1 or null),
// progressMessage, results: [{id, href}], error, creationTime}.
export function parseJob(xml, url) {
  const doc = parseXml(xml);
  const progress = doc.getElementsByTagName("progress")[0];
  return {
    id: text(doc, "jobId"),
    url,
    phase: text(doc, "phase"),
    progress: progress ? Number(progress.getAttribute("fraction")) : null,
    progressMessage: progress ? progress.textContent.trim() : "",
    results: Array.from(doc.getElementsByTagNameNS("*", "result")).map((r) => ({
      id: r.getAttribute("id"),
      href: r.getAttributeNS("http://www.w3.org/1999/xlink", "href") || r.getAttribute("xlink:href"),
    })),
    error: text(doc, "message"),
    creationTime: text(doc, "creationTime"),
  };
}

export const isFinal = (phase) => FINAL.has(phase);

// POST the parameters to the job list; the service answers 303 to the new
// job, which fetch follows (same origin, so the token goes along).
export async function createJob(listUrl, params) {
  const response = await request(listUrl, { method: "POST", body: formBody(params) });
  return parseJob(await response.text(), response.url);
}

export async function runJob(job) {
  const response = await request(`${job.url}/phase`, { method: "POST", body: formBody([["PHASE", "RUN"]]) });
  return parseJob(await response.text(), job.url);
}

export async function abortJob(job) {
  await request(`${job.url}/phase`, { method: "POST", body: formBody([["PHASE", "ABORT"]]) });
}

export async function fetchJob(url) {
  return parseJob(await getText(url), url);
}

// Polls until the job is final, reporting each state; the wait grows from
// 0.3 s to 3 s so that short jobs finish fast and long ones cost little.
export async function follow(job, onUpdate, { signal } = {}) {
  let wait = 300;
  let current = job;
  onUpdate(current);
  while (!isFinal(current.phase)) {
    if (signal?.aborted) throw new DOMException("stopped", "AbortError");
    await new Promise((resolve) => setTimeout(resolve, wait));
    wait = Math.min(3000, wait * 1.5);
    current = await fetchJob(job.url);
    onUpdate(current);
  }
  return current;
}

// The caller's jobs: [{id, url, phase, creationTime}], newest first.
export async function listJobs(listUrl) {
  const doc = parseXml(await getText(listUrl));
  return Array.from(doc.getElementsByTagNameNS("*", "jobref")).map((ref) => ({
    id: ref.getAttribute("id"),
    url: new URL(ref.getAttributeNS("http://www.w3.org/1999/xlink", "href") || ref.getAttribute("xlink:href") ||
                 ref.getAttribute("id"), listUrl.endsWith("/") ? listUrl : `${listUrl}/`).href,
    phase: text(ref, "phase"),
    creationTime: text(ref, "creationTime"),
  })).sort((a, b) => b.creationTime.localeCompare(a.creationTime));
}
