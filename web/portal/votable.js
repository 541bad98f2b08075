// Reading VOTable documents (TABLEDATA serialization, which the services
// answer by default) into plain columns and rows, and the DALI error
// document into the message a person should read.

// The XML namespace varies between VOTable versions, so elements are found
// by local name.
function children(node, name) {
  return Array.from(node.children).filter((c) => c.localName === name);
}

function descendants(node, name) {
  return Array.from(node.getElementsByTagNameNS("*", name));
}

// A cell's text as the value of its FIELD's datatype: numbers as numbers,
// the empty cell (VOTable's null) as null, everything else as text.
function typed(text, field) {
  if (text === "") return null;
  if (field.numeric && !field.arraysize) {
    const n = Number(text);
    return Number.isNaN(n) && text.toLowerCase() !== "nan" ? text : n;
  }
  return text;
}

const NUMERIC = new Set(["short", "int", "long", "float", "double", "unsignedByte"]);

export function parseXml(text) {
  const doc = new DOMParser().parseFromString(text, "application/xml");
  if (doc.getElementsByTagName("parsererror").length) throw new Error("The service answered with a document that is not XML.");
  return doc;
}

// The QUERY_STATUS of a document: {status, message} or null when it has none.
export function queryStatus(doc) {
  const info = descendants(doc, "INFO").find((i) => i.getAttribute("name") === "QUERY_STATUS");
  if (!info) return null;
  return { status: info.getAttribute("value"), message: (info.textContent || "").trim() };
}

// The first TABLE of a VOTable: {fields: [{name, datatype, unit, ucd,
// description, numeric}], rows: [[...]], overflow}. `overflow` is true when
// the service says the result was cut at MAXREC.
export function parseTable(doc) {
  const table = descendants(doc, "TABLE")[0];
  if (!table) return { fields: [], rows: [], overflow: false };
  const fields = children(table, "FIELD").map((f) => {
    const datatype = f.getAttribute("datatype") || "char";
    const description = children(f, "DESCRIPTION")[0];
    return {
      name: f.getAttribute("name"),
      datatype,
      arraysize: datatype !== "char" && datatype !== "unicodeChar" ? f.getAttribute("arraysize") : null,
      unit: f.getAttribute("unit") || "",
      ucd: f.getAttribute("ucd") || "",
      xtype: f.getAttribute("xtype") || "",
      description: description ? description.textContent.trim() : "",
      numeric: NUMERIC.has(datatype),
    };
  });
  const rows = [];
  const tabledata = descendants(table, "TABLEDATA")[0];
  if (tabledata) {
    for (const tr of children(tabledata, "TR")) {
      const tds = children(tr, "TD");
      rows.push(fields.map((f, i) => typed(tds[i] ? tds[i].textContent : "", f)));
    }
  }
  const status = queryStatus(doc);
  return { fields, rows, overflow: status?.status === "OVERFLOW" };
}

// DataLink results as objects keyed by column name, for the columns the
// standard defines (ID, access_url, service_def, error_message, semantics,
// description, content_type, content_length, ...).
export function tableObjects(table) {
  return table.rows.map((row) => Object.fromEntries(table.fields.map((f, i) => [f.name, row[i]])));
}

// The service descriptors (RESOURCE type="meta" utype="adhoc:service") of
// a DataLink document, by ID: {accessURL, params: [{name, ref, value}]}.
export function serviceDescriptors(doc) {
  const out = {};
  for (const r of descendants(doc, "RESOURCE")) {
    if (r.getAttribute("type") !== "meta" || r.getAttribute("utype") !== "adhoc:service") continue;
    const params = descendants(r, "PARAM");
    const access = params.find((p) => p.getAttribute("name") === "accessURL");
    out[r.getAttribute("ID") || ""] = {
      accessURL: access ? access.getAttribute("value") : "",
      params: params.filter((p) => p !== access).map((p) => ({
        name: p.getAttribute("name"), ref: p.getAttribute("ref"), value: p.getAttribute("value"),
      })),
    };
  }
  return out;
}
