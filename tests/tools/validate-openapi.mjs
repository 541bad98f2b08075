#!/usr/bin/env node
// Validates an OpenAPI document against the OpenAPI 3.x schema and its
// semantic rules with @apidevtools/swagger-parser (offline: nothing is
// fetched). Usage: node tests/tools/validate-openapi.mjs FILE|URL
// Prints "valid OpenAPI <version>: N paths, M operations" and exits 0, or
// prints the problems and exits 1.
import { readFile } from "node:fs/promises";
import SwaggerParser from "@apidevtools/swagger-parser";

export async function validateOpenApi(doc) {
  // validate() mutates its argument (dereferencing): give it a copy.
  const api = await SwaggerParser.validate(structuredClone(doc));
  let operations = 0;
  for (const item of Object.values(api.paths ?? {})) {
    for (const method of ["get", "put", "post", "delete", "options", "head", "patch", "trace"]) {
      if (item[method]) operations += 1;
    }
  }
  return { version: api.openapi, paths: Object.keys(api.paths ?? {}).length, operations };
}

async function load(source) {
  if (/^https?:\/\//.test(source)) {
    const response = await fetch(source);
    if (!response.ok) throw new Error(`${source}: HTTP ${response.status}`);
    return response.json();
  }
  return JSON.parse(await readFile(source, "utf8"));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const source = process.argv[2];
  if (!source) {
    console.error("usage: validate-openapi.mjs FILE|URL");
    process.exit(2);
  }
  try {
    const { version, paths, operations } = await validateOpenApi(await load(source));
    console.log(`valid OpenAPI ${version}: ${paths} paths, ${operations} operations`);
  } catch (error) {
    console.error(`invalid OpenAPI document ${source}:\n${error.message}`);
    process.exit(1);
  }
}
