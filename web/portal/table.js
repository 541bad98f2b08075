// The results table. Only the rows of the page in view are in the DOM, so a
// result of 10,000 rows costs a sort of an index array, not 10,000 <tr>s.
// Rows are named by their index in the result, whatever the sort order, so
// that the sky view and the dataset panel can refer to them.
import { el } from "./dom.js";

const PAGE_SIZE = 50;
const DEFAULT_COLUMNS = ["obs_id", "dataproduct_subtype", "band", "visit", "detector", "raft", "t_min",
                         "s_ra", "s_dec", "obs_collection", "data_rights"];

function cellText(value, field) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number" && field.datatype === "double" && !Number.isInteger(value)) {
    return String(Number(value.toPrecision(9)));
  }
  return String(value);
}

// One collator for every comparison: String.localeCompare builds one per
// call, which made sorting 10,000 rows take most of a second.
const collator = new Intl.Collator(undefined, { numeric: true });

function compare(a, b) {
  if (a === b) return 0;
  if (a === null || a === undefined) return 1;  // nulls last in either order
  if (b === null || b === undefined) return -1;
  if (typeof a === "number" && typeof b === "number") return a - b;
  return collator.compare(String(a), String(b));
}

// A link can not carry the token, so downloads go through onDownload
// (which fetches with it) while the link itself stays copyable.
function downloadLink(href, name, text, onDownload) {
  return el("a", { href, download: name, text, onclick: (e) => { e.preventDefault(); onDownload(href, name); } });
}

export function createResultsTable(root, { onSelect, onHover, onDownload }) {
  const status = root.querySelector("#results-status");
  const table = root.querySelector("#results-table");
  const chooser = root.querySelector("#column-chooser-list");
  const pager = root.querySelector("#pager-label");
  const prev = root.querySelector("#page-prev");
  const next = root.querySelector("#page-next");
  const downloads = root.querySelector("#downloads");

  let fields = [];
  let rows = [];
  let order = [];          // result indices in display order
  let visible = new Set(); // names of the columns shown
  let added = [];          // columns a join added, shown after t_min
  let sort = { column: null, dir: 1 };
  let page = 0;
  let selected = null;

  const pages = () => Math.max(1, Math.ceil(order.length / PAGE_SIZE));

  // The usual columns first, in a reading order (the ID, with the row's
  // button, leads), then the others as the service sends them.
  function shownColumns() {
    const after = DEFAULT_COLUMNS.indexOf("t_min");
    const rank = (name) => (DEFAULT_COLUMNS.includes(name) ? DEFAULT_COLUMNS.indexOf(name)
      : added.includes(name) ? after + (added.indexOf(name) + 1) / (added.length + 1) : DEFAULT_COLUMNS.length);
    return fields.map((f, i) => [f, i]).filter(([f]) => visible.has(f.name))
      .sort(([a, i], [b, j]) => rank(a.name) - rank(b.name) || i - j);
  }

  function renderHead() {
    const tr = el("tr");
    for (const [f] of shownColumns()) {
      const sorted = sort.column === f.name;
      const th = el("th", { scope: "col", "aria-sort": sorted ? (sort.dir > 0 ? "ascending" : "descending") : "none" },
        el("button", {
          type: "button", class: "sort", title: [f.description, f.unit && `(${f.unit})`].filter(Boolean).join(" "),
          text: `${f.name}${sorted ? (sort.dir > 0 ? " ▲" : " ▼") : ""}`,
          onclick: () => sortBy(f.name),
        }));
      tr.append(th);
    }
    table.tHead.replaceChildren(tr);
  }

  function renderBody() {
    const body = document.createDocumentFragment();
    const shown = shownColumns();
    const first = page * PAGE_SIZE;
    for (const index of order.slice(first, first + PAGE_SIZE)) {
      const row = rows[index];
      const tr = el("tr", { "data-index": String(index), class: index === selected ? "selected" : "" });
      tr.addEventListener("mouseenter", () => onHover(index));
      tr.addEventListener("mouseleave", () => onHover(null));
      shown.forEach(([f, i], n) => {
        const text = cellText(row[i], f);
        // The first shown cell holds the row's button: rows are chosen by
        // keyboard as well as by mouse, and a button says so to everyone.
        tr.append(n === 0
          ? el("td", {}, el("button", {
            type: "button", class: "row-select", text: text || `row ${index + 1}`,
            "aria-pressed": index === selected ? "true" : "false",
            onclick: () => onSelect(index), onfocus: () => onHover(index), onblur: () => onHover(null),
          }))
          : el("td", { text, class: f.numeric ? "num" : "" }));
      });
      body.append(tr);
    }
    table.tBodies[0].replaceChildren(body);
    pager.textContent = order.length ? `Page ${page + 1} of ${pages()} (rows ${first + 1}–${Math.min(first + PAGE_SIZE, order.length)} of ${order.length})` : "No rows";
    prev.disabled = page === 0;
    next.disabled = page >= pages() - 1;
  }

  function renderChooser() {
    chooser.replaceChildren(...fields.map((f) => {
      const id = `col-${f.name}`;
      const box = el("input", { type: "checkbox", id, value: f.name });
      box.checked = visible.has(f.name);
      box.addEventListener("change", () => {
        if (box.checked) visible.add(f.name); else visible.delete(f.name);
        if (!visible.size) { visible.add(f.name); box.checked = true; }  // never an empty table
        renderHead();
        renderBody();
      });
      return el("li", {}, box, el("label", { for: id, text: f.name }));
    }));
  }

  function sortBy(name) {
    sort = sort.column === name ? { column: name, dir: -sort.dir } : { column: name, dir: 1 };
    const i = fields.findIndex((f) => f.name === name);
    order.sort((a, b) => sort.dir * compare(rows[a][i], rows[b][i]) || a - b);
    page = 0;
    renderHead();
    renderBody();
    // Keep the keyboard where it was: on this column's header button.
    const button = Array.from(table.tHead.querySelectorAll("button")).find((b) => b.textContent.startsWith(`${name} `) || b.textContent === name);
    button?.focus();
  }

  prev.addEventListener("click", () => { page = Math.max(0, page - 1); renderBody(); });
  next.addEventListener("click", () => { page = Math.min(pages() - 1, page + 1); renderBody(); });

  return {
    setResult(result, query) {
      fields = result.fields;
      rows = result.rows;
      order = rows.map((_, i) => i);
      const names = new Set(fields.map((f) => f.name));
      // The usual columns, and those a join added (observing conditions,
      // coadd provenance), which the person asked about.
      added = (query.columns ?? []).filter((n) => names.has(n));
      visible = new Set([...DEFAULT_COLUMNS.filter((n) => names.has(n)), ...added]);
      if (!visible.size) visible = new Set(fields.slice(0, 8).map((f) => f.name));
      sort = { column: null, dir: 1 };
      page = 0;
      selected = null;
      renderChooser();
      renderHead();
      renderBody();
      status.textContent = `${rows.length} row${rows.length === 1 ? "" : "s"} from ${query.service}` +
        (result.overflow ? " (more match: the result stops at the row limit)" : "");
      downloads.replaceChildren(
        downloadLink(query.download("votable"), "results.vot", "Download VOTable", onDownload),
        downloadLink(query.download("csv"), "results.csv", "Download CSV", onDownload),
      );
    },
    clear(message) {
      fields = []; rows = []; order = []; selected = null; added = [];
      table.tHead.replaceChildren();
      table.tBodies[0].replaceChildren();
      chooser.replaceChildren();
      downloads.replaceChildren();
      pager.textContent = "";
      status.textContent = message;
    },
    // Marks a row as selected and shows its page.
    select(index) {
      selected = index;
      const at = order.indexOf(index);
      if (at >= 0) page = Math.floor(at / PAGE_SIZE);
      // Re-rendering replaces the buttons: keep the keyboard on the row.
      const hadFocus = table.contains(document.activeElement);
      renderBody();
      if (hadFocus) table.querySelector(`tr[data-index="${index}"] button.row-select`)?.focus();
      // Scroll the table's own box, not the page: a click on the sky
      // should not move the sky away from under the pointer.
      const tr = table.querySelector(`tr[data-index="${index}"]`);
      const wrap = table.parentElement;
      if (tr && (tr.offsetTop < wrap.scrollTop + table.tHead.offsetHeight ||
                 tr.offsetTop + tr.offsetHeight > wrap.scrollTop + wrap.clientHeight)) {
        wrap.scrollTop = tr.offsetTop - wrap.clientHeight / 2;
      }
    },
    highlight(index) {
      for (const tr of table.querySelectorAll("tr.hovered")) tr.classList.remove("hovered");
      if (index !== null) table.querySelector(`tr[data-index="${index}"]`)?.classList.add("hovered");
    },
    get rowCount() { return rows.length; },
  };
}
