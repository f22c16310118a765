// Shared test harness for the TypeScript-client suites (plain Node >= 20 ESM, no dependencies).
//
// - a tiny test runner that prints `N passed, M failed` and sets the exit code,
// - a strict OpenAPI 3.0 schema checker used on the *raw* JSON of every response (the generated
//   TypeScript clients map JSON to models without validating anything, so the raw body is checked
//   against the component schema of the client's generation: required keys, types, formats, enums,
//   nullability, no unknown keys, write-only fields never returned),
// - helpers to capture every response body (to prove secrets never come back) and to assert on
//   ResponseError bodies.
import { readFileSync } from "node:fs";
import { isDeepStrictEqual, inspect } from "node:util";

export function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === "") {
    if (fallback !== undefined) return fallback;
    throw new Error(`environment variable ${name} is required (run through tests/clients/run.sh)`);
  }
  return v;
}

// ---------------------------------------------------------------- runner
const results = [];
export async function test(name, fn) {
  try {
    await fn();
    results.push({ name, ok: true });
    console.log(`  ok    ${name}`);
  } catch (e) {
    results.push({ name, ok: false });
    console.log(`  FAIL  ${name}\n        ${String(e && e.stack ? e.message : e).split("\n").join("\n        ")}`);
  }
}
export function summary(suite) {
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`${suite}: ${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
  return { passed, failed };
}

// ---------------------------------------------------------------- assertions
export class AssertionError extends Error {}
export function assert(cond, msg) {
  if (!cond) throw new AssertionError(msg);
}
const show = (v) => inspect(v, { depth: 6, breakLength: Infinity });
export function eq(actual, expected, what) {
  if (!isDeepStrictEqual(actual, expected)) {
    throw new AssertionError(`${what}: expected ${show(expected)}, got ${show(actual)}`);
  }
}

// ---------------------------------------------------------------- schema checking
export const RFC3339_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?Z$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function loadSchema(path) {
  return JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
}

function resolve(doc, schema) {
  while (schema && schema.$ref) {
    const parts = schema.$ref.replace(/^#\//, "").split("/");
    let s = doc;
    for (const p of parts) s = s[p];
    if (!s) throw new Error(`unresolvable $ref ${schema.$ref}`);
    schema = s;
  }
  return schema;
}

// Validate `value` (a response body) against `schema`; returns a list of problems.
export function validate(doc, schema, value, path = "$", problems = []) {
  const nullable = schema.nullable === true;
  if (schema.allOf) {
    if (value === null) {
      if (!nullable) problems.push(`${path}: null but not nullable`);
      return problems;
    }
    for (const s of schema.allOf) validate(doc, s, value, path, problems);
    return problems;
  }
  const s = resolve(doc, schema);
  if (value === null) {
    if (!(nullable || s.nullable)) problems.push(`${path}: null but not nullable`);
    return problems;
  }
  if (s.enum && !s.enum.includes(value)) problems.push(`${path}: ${show(value)} not in enum ${show(s.enum)}`);
  switch (s.type) {
    case "object": {
      if (typeof value !== "object" || Array.isArray(value)) {
        problems.push(`${path}: expected object, got ${show(value)}`);
        break;
      }
      const props = s.properties || {};
      for (const r of s.required || []) {
        if (!(r in value)) problems.push(`${path}: required key "${r}" missing`);
      }
      for (const [k, v] of Object.entries(value)) {
        const ps = props[k];
        if (!ps) {
          if (s.additionalProperties === undefined && s.properties) problems.push(`${path}: unknown key "${k}"`);
          continue;
        }
        if (ps.writeOnly) problems.push(`${path}: write-only key "${k}" returned`);
        validate(doc, ps, v, `${path}.${k}`, problems);
      }
      break;
    }
    case "array":
      if (!Array.isArray(value)) problems.push(`${path}: expected array, got ${show(value)}`);
      else value.forEach((v, i) => validate(doc, s.items || {}, v, `${path}[${i}]`, problems));
      break;
    case "string":
      if (typeof value !== "string") {
        problems.push(`${path}: expected string, got ${show(value)}`);
        break;
      }
      if (s.format === "uuid" && !UUID.test(value)) problems.push(`${path}: not a lowercase uuid: ${show(value)}`);
      if (s.format === "date-time" && !RFC3339_Z.test(value))
        problems.push(`${path}: not an RFC 3339 UTC datetime ending in Z: ${show(value)}`);
      if (s.maxLength !== undefined && value.length > s.maxLength) problems.push(`${path}: longer than ${s.maxLength}`);
      if (s.minLength !== undefined && value.length < s.minLength) problems.push(`${path}: shorter than ${s.minLength}`);
      if (s.pattern && !new RegExp(s.pattern).test(value)) problems.push(`${path}: does not match ${s.pattern}`);
      break;
    case "integer":
      if (!Number.isInteger(value)) problems.push(`${path}: expected integer, got ${show(value)}`);
      break;
    case "number":
      if (typeof value !== "number") problems.push(`${path}: expected number, got ${show(value)}`);
      break;
    case "boolean":
      if (typeof value !== "boolean") problems.push(`${path}: expected boolean, got ${show(value)}`);
      break;
    default:
      break; // {} = anything
  }
  return problems;
}

export function conforms(doc, name, value) {
  const schema = name.startsWith("[]")
    ? { type: "array", items: { $ref: `#/components/schemas/${name.slice(2)}` } }
    : { $ref: `#/components/schemas/${name}` };
  const problems = validate(doc, schema, value);
  if (problems.length) throw new AssertionError(`body does not match schema ${name}:\n  ${problems.join("\n  ")}\n  body: ${JSON.stringify(value)}`);
}

// ---------------------------------------------------------------- response capture
// A fetch wrapper that records every response (status, headers, text) so that tests can look at
// the raw bytes behind what the client parsed.
export const captured = [];
export async function capturingFetch(url, init) {
  const res = await fetch(url, init);
  const text = await res.clone().text();
  captured.push({ url: String(url), method: init?.method, status: res.status, headers: res.headers, text });
  return res;
}
export function lastResponse() {
  return captured[captured.length - 1];
}

// Call `fn`, which must throw the client's ResponseError with `status` and a JSON body deep-equal to
// `body` (and matching schema `schemaName` of `doc` if given).
export async function expectError(fn, status, body, doc, schemaName) {
  let err;
  try {
    await fn();
  } catch (e) {
    err = e;
  }
  assert(err, `expected HTTP ${status}, but the call succeeded`);
  assert(err.name === "ResponseError" && err.response, `expected ResponseError, got ${err && err.stack}`);
  const text = await err.response.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new AssertionError(`HTTP ${err.response.status}: body is not JSON: ${show(text)}`);
  }
  const last = lastResponse();
  const req = last ? `${last.method} ${last.url.replace(/^https?:\/\/[^/]+/, "")}` : "request";
  eq({ status: err.response.status, body: json }, { status, body }, `${req}: error response`);
  const ct = err.response.headers.get("content-type") || "";
  assert(/^application\/json\b/.test(ct), `error Content-Type should be application/json, got ${show(ct)}`);
  if (doc && schemaName) conforms(doc, schemaName, json);
  return json;
}

export function randomSuffix() {
  return Math.random().toString(36).slice(2, 10);
}
