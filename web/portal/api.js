// The client of the public services: every request of the portal goes
// through here, so that it carries the signed-in user's token and so that a
// refusal reaches the person as the service's own message.
import { parseTable, parseXml, queryStatus } from "./votable.js";

const TOKEN_KEY = "pixserve.portal.token";

// Relative to the page, so that the portal also works behind a proxy that
// adds a path prefix (the page is served at <prefix>/portal).
export const BASE = new URL(".", document.baseURI).href;

export function serviceUrl(path, params) {
  const url = new URL(path.replace(/^\/+/, ""), BASE);
  if (params) for (const [k, v] of params) url.searchParams.append(k, v);
  return url.href;
}

// The token lives in sessionStorage: it goes away with the tab, and other
// sites cannot read it.
export const auth = {
  token: () => sessionStorage.getItem(TOKEN_KEY),
  signIn(token) { sessionStorage.setItem(TOKEN_KEY, token.trim()); },
  signOut() { sessionStorage.removeItem(TOKEN_KEY); },
};

export class ServiceError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}

// What a refusal says, as a sentence: the DALI error VOTable's QUERY_STATUS
// text, a UWS/plain-text service's first lines, or the HTTP status.
export async function errorText(response) {
  const type = response.headers.get("content-type") || "";
  const body = await response.text().catch(() => "");
  if (/xml/.test(type) || body.trimStart().startsWith("<")) {
    try {
      const status = queryStatus(parseXml(body));
      if (status?.message) return status.message;
    } catch { /* not XML after all: fall through */ }
  } else if (/json/.test(type)) {
    try {
      const doc = JSON.parse(body);
      if (typeof doc.message === "string") return doc.message;
      if (typeof doc.error === "string") return doc.error;
    } catch { /* fall through */ }
  } else if (body && !/html/.test(type)) {
    return body.trim().split("\n").slice(0, 3).join(" ");
  }
  if (response.status === 401) return "This needs signing in (or the token is no longer valid).";
  if (response.status === 403) return "The token does not allow this.";
  return `The service answered ${response.status} ${response.statusText}.`;
}

// fetch() with the token, throwing ServiceError with the service's message
// when the answer is not a success.
export async function request(url, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = auth.token();
  if (token) headers.set("Authorization", `Bearer ${token}`);
  let response;
  try {
    response = await fetch(url, { ...options, headers });
  } catch (e) {
    throw new ServiceError(`The server could not be reached (${e.message}).`, 0);
  }
  if (!response.ok) throw new ServiceError(await errorText(response), response.status);
  return response;
}

export async function getText(url, options) {
  return (await request(url, options)).text();
}

export async function getJson(url, options) {
  return (await request(url, options)).json();
}

export async function getBlob(url, options) {
  return (await request(url, options)).blob();
}

// A VOTable result: {fields, rows, overflow, doc}. A 200 answer that still
// says QUERY_STATUS=ERROR (allowed by DALI) is an error too.
export async function getVOTable(url, options) {
  const doc = parseXml(await getText(url, options));
  const status = queryStatus(doc);
  if (status?.status === "ERROR") throw new ServiceError(status.message || "The query failed.", 200);
  return { ...parseTable(doc), doc };
}

// A POST body of form fields (repeated names allowed).
export function formBody(params) {
  const body = new URLSearchParams();
  for (const [k, v] of params) body.append(k, v);
  return body;
}

// Saves what a URL answers as a file, fetched with the token (a plain link
// would go without it).
export async function saveUrl(url, filename) {
  const blob = await getBlob(url);
  saveBlob(blob, filename);
}

export function saveBlob(blob, filename) {
  const href = URL.createObjectURL(blob);
  const a = Object.assign(document.createElement("a"), { href, download: filename });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 60_000);
}
