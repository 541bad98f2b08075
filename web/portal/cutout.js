// The cutout tool: a circle or a box, typed or drawn on the sky, cut out of
// the selected dataset (or of every dataset of the results) by SODA. Small
// cutouts run synchronously and download at once; large ones become UWS
// jobs, followed with a progress bar, and stay in the user's job list.
import { request, saveBlob, saveUrl, serviceUrl, ServiceError } from "./api.js";
import { abortJob, createJob, follow, listJobs, runJob } from "./uws.js";
import { el } from "./dom.js";

// Above this many output pixels a cutout goes to the asynchronous endpoint:
// a few seconds of work at most stay on the synchronous one.
const SYNC_MAX_PIXELS = 4_000_000;
const MAX_IDS = 100;

const fmt = (x) => String(Number(x.toPrecision(10)));

// The region of the form: {circle: [ra, dec, r]} or {polygon: corners} for
// a box (ra, dec centre, width and height in degrees on the sky), plus the
// SODA parameter that says it.
export function regionOf(shape, ra, dec, a, b) {
  if (shape === "circle") return { circle: [ra, dec, a], param: ["CIRCLE", `${fmt(ra)} ${fmt(dec)} ${fmt(a)}`], area: Math.PI * a * a };
  const halfRa = a / 2 / Math.max(1e-6, Math.cos((dec * Math.PI) / 180));
  const [lo, hi] = [ra - halfRa, ra + halfRa];
  const [s, n] = [dec - b / 2, dec + b / 2];
  return {
    polygon: [[lo, s], [hi, s], [hi, n], [lo, n]],
    param: ["POS", `RANGE ${fmt((lo + 360) % 360)} ${fmt((hi + 360) % 360)} ${fmt(s)} ${fmt(n)}`],
    area: a * b,
  };
}

export function createCutoutTool(root, { onError, onStatus, selection, results, onRegion, onDrawRequest }) {
  const form = root.querySelector("#cutout-form");
  const bar = root.querySelector("#cutout-progress");
  const barLabel = root.querySelector("#cutout-progress-label");
  const jobsBody = root.querySelector("#jobs-table tbody");
  const f = form.elements;
  let running = null;  // the AbortController of the job being followed
  // The jobs this page made, by ID: the service lists a signed-in user's
  // jobs, but an anonymous caller's are nobody's to list, so without this
  // they would vanish from the list as soon as they ran.
  const made = new Map();

  const boxFields = () => {
    const circle = f.cutshape.value === "circle";
    root.querySelector("#cut-circle-fields").hidden = !circle;
    root.querySelector("#cut-box-fields").hidden = circle;
  };

  function currentRegion() {
    const nums = ["cut_ra", "cut_dec"].map((n) => Number(f[n].value));
    const circle = f.cutshape.value === "circle";
    const size = circle ? [Number(f.cut_radius.value) / 3600] : [Number(f.cut_width.value) / 3600, Number(f.cut_height.value) / 3600];
    if ([...nums, ...size].some((v) => !Number.isFinite(v)) || size.some((v) => v <= 0) || f.cut_ra.value === "" || f.cut_dec.value === "") {
      return null;
    }
    return regionOf(f.cutshape.value, nums[0], nums[1], size[0], size[1]);
  }

  const refresh = () => { boxFields(); onRegion(currentRegion()); };
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  root.querySelector("#cut-draw").addEventListener("click", () => {
    onStatus("Click the centre of the cutout on the sky, then a point on its edge (circle) or a corner (box).");
    onDrawRequest();
  });

  // Two clicks on the sky: the centre, then the edge or a corner.
  const draw = {
    centre: null,
    click(ra, dec) {
      if (!this.centre) {
        this.centre = [ra, dec];
        f.cut_ra.value = ra.toFixed(6);
        f.cut_dec.value = dec.toFixed(6);
        refresh();
        onStatus("Now click the edge (circle) or a corner (box) of the cutout.");
        return false;
      }
      const [cra, cdec] = this.centre;
      const dx = (ra - cra) * Math.cos((cdec * Math.PI) / 180) * 3600;
      const dy = (dec - cdec) * 3600;
      if (f.cutshape.value === "circle") f.cut_radius.value = Math.max(0.5, Math.hypot(dx, dy)).toFixed(2);
      else {
        f.cut_width.value = Math.max(1, 2 * Math.abs(dx)).toFixed(2);
        f.cut_height.value = Math.max(1, 2 * Math.abs(dy)).toFixed(2);
      }
      this.centre = null;
      refresh();
      onStatus("Cutout region set: press Cut out to run it.");
      return true;  // drawing done
    },
  };

  function ids() {
    if (f.cutfrom.value === "all") return results().slice(0, MAX_IDS).map((r) => r.obs_publisher_did);
    const row = selection();
    return row ? [row.obs_publisher_did] : [];
  }

  function estimatePixels(region, count) {
    const row = selection() || results()[0];
    const scale = (row?.s_pixel_scale || 0.2) / 3600;
    return (region.area / (scale * scale)) * count;
  }

  function setProgress(fraction, label) {
    bar.hidden = false;
    if (fraction === null) bar.removeAttribute("value"); else bar.value = fraction;
    barLabel.textContent = label;
  }

  async function refreshJobs() {
    try {
      const listed = await listJobs(serviceUrl("api/soda/async"));
      const ids = new Set(listed.map((j) => j.id));
      const jobs = [...listed, ...[...made.values()].filter((j) => !ids.has(j.id))]
        .sort((a, b) => b.creationTime.localeCompare(a.creationTime));
      jobsBody.replaceChildren(...jobs.slice(0, 20).map((j) => el("tr", {},
        el("td", {}, el("code", { text: j.id })),
        el("td", { text: j.phase }),
        el("td", { text: j.creationTime.replace("T", " ").replace(/\.\d+Z?$/, "") }),
        el("td", {}, el("button", { type: "button", text: "Results", onclick: () => showJobResults(j) })))));
      if (!jobs.length) jobsBody.append(el("tr", {}, el("td", { colspan: "4", text: "No cutout jobs yet." })));
    } catch (e) {
      onError(`Job list: ${e.message}`);
    }
  }

  async function showJobResults(jobRef) {
    const job = await follow({ url: jobRef.url, phase: "" }, () => {}).catch((e) => { onError(e.message); return null; });
    if (!job) return;
    if (job.phase !== "COMPLETED") { onError(`Job ${job.id} ended ${job.phase}${job.error ? `: ${job.error}` : ""}`); return; }
    for (const r of job.results) await saveUrl(new URL(r.href, job.url).href, `${job.id}-${r.id}.fits`).catch((e) => onError(e.message));
  }

  async function runSync(params) {
    setProgress(null, "Cutting (synchronous)…");
    const response = await request(serviceUrl("api/soda/sync", params));
    if (response.status === 204) throw new ServiceError("The region does not overlap the image: no cutout has pixels.", 204);
    const blob = await response.blob();
    setProgress(1, `Done: cutout.fits, ${(blob.size / 1024).toFixed(0)} kB`);
    saveBlob(blob, "cutout.fits");
  }

  async function runAsync(params) {
    running = new AbortController();
    setProgress(0, "Creating the job…");
    let job = await createJob(serviceUrl("api/soda/async"), params);
    job = await runJob(job);
    root.querySelector("#cut-abort").hidden = false;
    root.querySelector("#cut-abort").onclick = () => { abortJob(job).catch((e) => onError(e.message)); running.abort(); };
    job = await follow(job, (j) => {
      made.set(j.id, { id: j.id, url: j.url, phase: j.phase, creationTime: j.creationTime });
      setProgress(j.progress ?? (j.phase === "COMPLETED" ? 1 : null),
        `Job ${j.id}: ${j.phase}${j.progress !== null ? ` ${Math.round(j.progress * 100)}%` : ""}${j.progressMessage ? ` — ${j.progressMessage}` : ""}`);
    }, { signal: running.signal });
    root.querySelector("#cut-abort").hidden = true;
    await refreshJobs();
    if (job.phase !== "COMPLETED") throw new ServiceError(job.error || `The job ended ${job.phase}.`, 200);
    for (const r of job.results) await saveUrl(new URL(r.href, job.url).href, `${job.id}-${r.id}.fits`);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const region = currentRegion();
    if (!region) { onError("The cutout needs a centre (RA, Dec) and a positive size."); return; }
    const list = ids();
    if (!list.length) { onError("Select a dataset in the results first (or cut from every result)."); return; }
    const planes = [...root.querySelectorAll('input[name="cutplane"]:checked')].map((box) => box.value);
    if (!planes.length) { onError("Tick at least one plane to cut (image, mask or variance)."); return; }
    // All three is what the service cuts by default: no PLANE then.
    const params = [...list.map((id) => ["ID", id]), region.param, ...(planes.length < 3 ? planes.map((p) => ["PLANE", p]) : [])];
    const big = f.cut_async.checked || estimatePixels(region, list.length) > SYNC_MAX_PIXELS;
    try {
      if (big) await runAsync(params); else await runSync(params);
    } catch (e) {
      if (e.name === "AbortError") { setProgress(0, "Stopped."); return; }
      setProgress(0, "Failed.");
      onError(`Cutout: ${e.message}`);
    }
  });

  boxFields();
  return {
    draw,
    refreshJobs,
    setCentre(ra, dec) { f.cut_ra.value = ra.toFixed(6); f.cut_dec.value = dec.toFixed(6); refresh(); },
  };
}
