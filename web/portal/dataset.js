// The panel of the selected dataset: its DataLink links (the service's
// own list of what can be done with it), its preview, its FITS header and
// its provenance (the #progenitor / #derivation / #provenance links).
import { getBlob, getJson, getText, getVOTable, saveUrl, serviceUrl } from "./api.js";
import { serviceDescriptors, tableObjects } from "./votable.js";
import { el } from "./dom.js";

const PROVENANCE = new Set(["#progenitor", "#derivation", "#provenance"]);

function size(bytes) {
  if (bytes === null || bytes === undefined || bytes === "") return "";
  const units = ["B", "kB", "MB", "GB"];
  let v = Number(bytes);
  let u = 0;
  while (v >= 1000 && u < units.length - 1) { v /= 1000; u++; }
  return `${v.toFixed(u ? 1 : 0)} ${units[u]}`;
}

// The DataLink URL of a result row: its access_url when that is a DataLink
// document (ObsCore access_format), otherwise the links endpoint by DID.
export function datalinkUrl(row) {
  if (row.access_url && /datalink/.test(row.access_format || "")) return row.access_url;
  return serviceUrl("api/datalink/links", [["ID", row.obs_publisher_did]]);
}

export function createDatasetPanel(root, { onError }) {
  const title = root.querySelector("#dataset-title");
  const linksBody = root.querySelector("#links-table tbody");
  const preview = root.querySelector("#preview");
  const header = root.querySelector("#header-text");
  const provenance = root.querySelector("#provenance-list");
  let previewUrl = null;
  let generation = 0;  // a newer selection wins over a slower older one

  function reset(message) {
    title.textContent = message;
    linksBody.replaceChildren();
    provenance.replaceChildren();
    header.textContent = "";
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    preview.removeAttribute("src");
    preview.hidden = true;
  }

  async function showPreview(url, mine) {
    const blob = await getBlob(url);  // with the token: an <img src> could not send it
    if (mine !== generation) return;
    previewUrl = URL.createObjectURL(blob);
    preview.src = previewUrl;
    preview.hidden = false;
  }

  async function showProvenance(link, mine) {
    const item = el("li", {}, el("strong", { text: link.semantics }), " ", link.description || "");
    if (link.access_url) {
      item.append(" ", el("a", { href: link.access_url, text: link.ID === link.access_url ? "open" : "open link" }));
    }
    provenance.append(item);
    if (link.semantics === "#provenance" && /json/.test(link.content_type || "")) {
      const doc = await getJson(link.access_url);
      if (mine === generation) item.append(el("pre", { class: "json", text: JSON.stringify(doc, null, 2) }));
    }
  }

  return {
    reset,
    async show(row) {
      const mine = ++generation;
      reset(`${row.obs_id ?? row.obs_publisher_did} — ${row.dataproduct_subtype ?? ""} ${row.band ?? ""}`.trim());
      let result;
      try {
        result = await getVOTable(datalinkUrl(row));
      } catch (e) {
        onError(`DataLink: ${e.message}`);
        return [];
      }
      if (mine !== generation) return [];
      const links = tableObjects(result);
      const services = serviceDescriptors(result.doc);
      for (const link of links) {
        const action = link.error_message
          ? el("span", { class: "error", text: link.error_message })
          : link.access_url
            ? el("a", {
              href: link.access_url, text: link.semantics === "#this" ? "Download" : "Open",
              onclick: (e) => { e.preventDefault(); saveUrl(link.access_url, link.semantics === "#this" ? `${row.obs_id}.fits` : (link.access_url.split("/").pop() || "link")).catch((err) => onError(err.message)); },
            })
            : el("span", { text: services[link.service_def] ? `service ${services[link.service_def].accessURL}` : link.service_def || "" });
        linksBody.append(el("tr", { "data-semantics": link.semantics || "" },
          el("td", {}, el("code", { text: link.semantics || "" })),
          el("td", { text: link.description || "" }),
          el("td", { text: link.content_type || "" }),
          el("td", { class: "num", text: size(link.content_length) }),
          el("td", {}, action)));
      }
      const tasks = [];
      const previewLink = links.find((l) => l.semantics === "#preview" && l.access_url);
      if (previewLink) tasks.push(showPreview(previewLink.access_url, mine));
      const headerLink = links.find((l) => l.semantics === "#detached-header" && l.access_url);
      if (headerLink) {
        tasks.push(getText(headerLink.access_url).then((t) => { if (mine === generation) header.textContent = t; }));
      }
      const related = links.filter((l) => PROVENANCE.has(l.semantics) && !l.error_message);
      if (!related.length) provenance.append(el("li", { text: "No provenance links for this dataset." }));
      for (const link of related) tasks.push(showProvenance(link, mine));
      for (const outcome of await Promise.allSettled(tasks)) {
        if (outcome.status === "rejected") onError(outcome.reason.message);
      }
      return links;
    },
  };
}
