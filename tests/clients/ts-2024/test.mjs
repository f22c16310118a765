// oauthlink REST shim, documented shape (OAUTHLINK_REST_SHAPE=documented), exercised with the
// official TypeScript client @goauthentik/api@2024.8.3-1729836831 (the generation of authentik's
// reference page: request {identifier, access_token}, response with nested `source`).
//
// Every response is parsed with the client's own models (FromJSON) *and* its raw JSON is checked
// against the 2024.10 OpenAPI components (../schemas/openapi-2024.10.json), because the generated
// TypeScript code maps fields without validating them.
import { createRequire } from "node:module";
import {
  env, test, summary, assert, eq, conforms, loadSchema, capturingFetch, captured, expectError, randomSuffix, RFC3339_Z,
} from "../lib/harness.mjs";

const require = createRequire(import.meta.url);
const ak = require("@goauthentik/api");
const pkgVersion = require("@goauthentik/api/package.json").version;

const SUITE = "ts-2024";
const doc = loadSchema("../schemas/openapi-2024.10.json");
const BASE = env("OAUTHLINK_URL").replace(/\/+$/, "") + "/api/v3";
const SUPER = env("SUPER_TOKEN");
const ALICE = env("ALICE_TOKEN");
const BOB = env("BOB_TOKEN");
const BOB_PK = Number(env("BOB_PK"));
const SOURCE_UUID = env("SOURCE_UUID");
const SOURCE_SLUG = env("SOURCE_SLUG");

const NOT_FOUND = { detail: "No UserOAuthSourceConnection matches the given query." };
const SECRET = `gho_secret_${randomSuffix()}${randomSuffix()}`;

function api(token) {
  return new ak.SourcesApi(
    new ak.Configuration({ basePath: BASE, fetchApi: capturingFetch, ...(token === undefined ? {} : { accessToken: token }) }),
  );
}
const asSuper = api(SUPER);
const asBob = api(BOB);
const asAlice = api(ALICE);

// The 2024.8.3 request model has no `source`; add it through the generated method's second
// argument (runtime.ts: `initOverrides` may be an async function receiving {init, context} whose
// result is spread over init; init.body is still the plain JSON object and is stringified after).
const withSource = (uuid) => async ({ init }) => ({ ...init, body: { ...init.body, source: uuid } });

async function create(client, identifier, accessToken = SECRET, source = SOURCE_UUID) {
  return client.sourcesUserConnectionsOauthCreateRaw(
    { userOAuthSourceConnectionRequest: { identifier, accessToken } },
    withSource(source),
  );
}

async function rawJson(apiResponse) {
  return JSON.parse(await apiResponse.raw.clone().text());
}

function checkConnection(json, model, { identifier, user }) {
  conforms(doc, "UserOAuthSourceConnection", json);
  assert(RFC3339_Z.test(json.created), `created not RFC 3339 with Z: ${json.created}`);
  assert(Number.isInteger(model.pk) && model.pk > 0, `pk must be a positive integer, got ${model.pk}`);
  eq(model.identifier, identifier, "identifier");
  if (user !== undefined) eq(model.user, user, "user");
  assert(model.created instanceof Date && !Number.isNaN(model.created.getTime()), "created parses to a Date");
  assert(Math.abs(Date.now() - model.created.getTime()) < 10 * 60 * 1000, `created is not recent: ${json.created}`);
  const s = model.source;
  eq(s.pk, SOURCE_UUID, "source.pk");
  eq(s.slug, SOURCE_SLUG, "source.slug");
  eq(s.component, "ak-source-oauth-form", "source.component");
  eq(s.verboseName, "OAuth Source", "source.verboseName");
  eq(s.verboseNamePlural, "OAuth Sources", "source.verboseNamePlural");
  eq(s.metaModelName, "authentik_sources_oauth.oauthsource", "source.metaModelName");
  assert(!("access_token" in json), "access_token must never be returned");
}

console.log(`${SUITE}: @goauthentik/api@${pkgVersion} against ${BASE}`);
let first; // created by akadmin
let second; // created by bob

await test("create: 201, nested source parsed by UserOAuthSourceConnectionFromJSON", async () => {
  const res = await create(asSuper, "octocat-ts24");
  eq(res.raw.status, 201, "status");
  assert(/^application\/json\b/.test(res.raw.headers.get("content-type") || ""), "Content-Type application/json");
  eq(res.raw.headers.get("location"), null, "Location header (authentik sends none)");
  const json = await rawJson(res);
  const model = await res.value();
  checkConnection(json, model, { identifier: "octocat-ts24" });
  first = model;
});

await test("create as bob (holds add_useroauthsourceconnection): 201, user = bob", async () => {
  const res = await create(asBob, "bob-ts24");
  eq(res.raw.status, 201, "status");
  const json = await rawJson(res);
  const model = await res.value();
  checkConnection(json, model, { identifier: "bob-ts24", user: BOB_PK });
  assert(first && model.user !== first.user, "bob's row must belong to bob, not akadmin");
  second = model;
});

await test("list filtered by sourceSlug: pagination block + results via PaginatedUserOAuthSourceConnectionListFromJSON", async () => {
  const res = await asSuper.sourcesUserConnectionsOauthListRaw({ sourceSlug: SOURCE_SLUG });
  eq(res.raw.status, 200, "status");
  const json = await rawJson(res);
  conforms(doc, "PaginatedUserOAuthSourceConnectionList", json);
  const page = await res.value();
  eq(page.pagination, { next: 0, previous: 0, count: 2, current: 1, totalPages: 1, startIndex: 1, endIndex: 2 }, "pagination");
  eq(page.results.map((r) => r.pk), [first.pk, second.pk], "results ordered by pk");
  eq(page.results.map((r) => r.identifier), ["octocat-ts24", "bob-ts24"], "identifiers");
  for (const r of page.results) eq(r.source.pk, SOURCE_UUID, "results[].source.pk");
});

await test("list page/pageSize: page 1 and 2 of size 1, page 3 -> 404 Invalid page.", async () => {
  const p1 = await asSuper.sourcesUserConnectionsOauthList({ sourceSlug: SOURCE_SLUG, pageSize: 1, page: 1 });
  eq(p1.pagination, { next: 2, previous: 0, count: 2, current: 1, totalPages: 2, startIndex: 1, endIndex: 1 }, "page 1");
  eq(p1.results.map((r) => r.pk), [first.pk], "page 1 results");
  const p2 = await asSuper.sourcesUserConnectionsOauthList({ sourceSlug: SOURCE_SLUG, pageSize: 1, page: 2 });
  eq(p2.pagination, { next: 0, previous: 1, count: 2, current: 2, totalPages: 2, startIndex: 2, endIndex: 2 }, "page 2");
  eq(p2.results.map((r) => r.pk), [second.pk], "page 2 results");
  await expectError(
    () => asSuper.sourcesUserConnectionsOauthList({ sourceSlug: SOURCE_SLUG, pageSize: 1, page: 3 }),
    404, { detail: "Invalid page." },
  );
});

await test("list filters: user=bob, search=slug, unknown slug", async () => {
  const byUser = await asSuper.sourcesUserConnectionsOauthList({ sourceSlug: SOURCE_SLUG, user: BOB_PK });
  eq(byUser.pagination.count, 1, "count for user=bob");
  eq(byUser.results.map((r) => r.pk), [second.pk], "user=bob results");
  const bySearch = await asSuper.sourcesUserConnectionsOauthList({ search: SOURCE_SLUG });
  assert(bySearch.results.some((r) => r.pk === first.pk), "search by source slug finds the row");
  const none = await asSuper.sourcesUserConnectionsOauthList({ sourceSlug: `no-such-${randomSuffix()}` });
  eq(none.pagination, { next: 0, previous: 0, count: 0, current: 1, totalPages: 1, startIndex: 0, endIndex: 0 }, "empty pagination");
  eq(none.results, [], "empty results");
});

await test("list as alice (no rows of her own): 200 empty page", async () => {
  const res = await asAlice.sourcesUserConnectionsOauthListRaw({});
  conforms(doc, "PaginatedUserOAuthSourceConnectionList", await rawJson(res));
  const page = await res.value();
  eq(page.pagination, { next: 0, previous: 0, count: 0, current: 1, totalPages: 1, startIndex: 0, endIndex: 0 }, "pagination");
  eq(page.results, [], "results");
});

await test("retrieve: 200, same object", async () => {
  const res = await asSuper.sourcesUserConnectionsOauthRetrieveRaw({ id: first.pk });
  eq(res.raw.status, 200, "status");
  const json = await rawJson(res);
  const model = await res.value();
  checkConnection(json, model, { identifier: "octocat-ts24", user: first.user });
  eq(model.pk, first.pk, "pk");
  eq(model.created.getTime(), first.created.getTime(), "created");
});

await test("another user's connection as alice: retrieve -> 404", async () => {
  await expectError(() => asAlice.sourcesUserConnectionsOauthRetrieve({ id: first.pk }), 404, NOT_FOUND);
});

await test("another user's connection as alice: partialUpdate -> 404, row untouched", async () => {
  await expectError(
    () => asAlice.sourcesUserConnectionsOauthPartialUpdate({ id: first.pk, patchedUserOAuthSourceConnectionRequest: { identifier: "stolen" } }),
    404, NOT_FOUND,
  );
  eq((await asSuper.sourcesUserConnectionsOauthRetrieve({ id: first.pk })).identifier, first.identifier, "identifier");
});

await test("another user's connection as alice: destroy -> 404, row kept", async () => {
  await expectError(() => asAlice.sourcesUserConnectionsOauthDestroy({ id: first.pk }), 404, NOT_FOUND);
  eq((await asSuper.sourcesUserConnectionsOauthRetrieve({ id: first.pk })).pk, first.pk, "pk");
});

await test("partialUpdate identifier: 200, persisted", async () => {
  const res = await asSuper.sourcesUserConnectionsOauthPartialUpdateRaw({
    id: first.pk,
    patchedUserOAuthSourceConnectionRequest: { identifier: "octocat-renamed" },
  });
  eq(res.raw.status, 200, "status");
  const json = await rawJson(res);
  checkConnection(json, await res.value(), { identifier: "octocat-renamed", user: first.user });
  const again = await asSuper.sourcesUserConnectionsOauthRetrieve({ id: first.pk });
  eq(again.identifier, "octocat-renamed", "identifier after retrieve");
});

await test("partialUpdate access token only: 200, identifier unchanged, token not echoed", async () => {
  const res = await asSuper.sourcesUserConnectionsOauthPartialUpdateRaw({
    id: first.pk,
    patchedUserOAuthSourceConnectionRequest: { accessToken: `${SECRET}-rotated` },
  });
  eq(res.raw.status, 200, "status");
  checkConnection(await rawJson(res), await res.value(), { identifier: "octocat-renamed", user: first.user });
});

await test("usedByList: 200 []", async () => {
  const res = await asSuper.sourcesUserConnectionsOauthUsedByListRaw({ id: first.pk });
  eq(res.raw.status, 200, "status");
  const json = await rawJson(res);
  conforms(doc, "[]UsedBy", json);
  eq(await res.value(), [], "used_by");
});

await test("400 blank identifier", async () => {
  await expectError(() => create(asSuper, ""), 400, { identifier: ["This field may not be blank."] }, doc, "ValidationError");
});

await test("400 duplicate (user, source)", async () => {
  await expectError(
    () => create(asSuper, "octocat-again"),
    400, { non_field_errors: ["The fields user, source must make a unique set."] }, doc, "ValidationError",
  );
});

await test("403 without token (list and create)", async () => {
  const anon = api(undefined);
  const body = { detail: "Authentication credentials were not provided." };
  await expectError(() => anon.sourcesUserConnectionsOauthList({}), 403, body, doc, "GenericError");
  await expectError(() => create(anon, "anon"), 403, body, doc, "GenericError");
});

await test("403 bad token", async () => {
  const bad = api(`not-a-token-${randomSuffix()}`);
  const body = { detail: "Token invalid/expired" };
  await expectError(() => bad.sourcesUserConnectionsOauthList({}), 403, body, doc, "GenericError");
  await expectError(() => create(bad, "bad"), 403, body, doc, "GenericError");
});

await test("403 alice (no add permission) creating", async () => {
  await expectError(
    () => create(asAlice, "alice-ts24"),
    403, { detail: "You do not have permission to perform this action." }, doc, "GenericError",
  );
});

await test("destroy: 204 empty body, then retrieve -> 404", async () => {
  for (const row of [first, second]) {
    assert(row, "row was not created");
    const res = await asSuper.sourcesUserConnectionsOauthDestroyRaw({ id: row.pk });
    eq(res.raw.status, 204, "status");
    eq(await res.raw.clone().text(), "", "204 body");
    await expectError(() => asSuper.sourcesUserConnectionsOauthRetrieve({ id: row.pk }), 404, NOT_FOUND);
  }
  const page = await asSuper.sourcesUserConnectionsOauthList({ sourceSlug: SOURCE_SLUG });
  eq(page.pagination.count, 0, "count after destroy");
});

await test("no response ever contained the access token sent", async () => {
  assert(captured.length > 10, "responses were captured");
  const leaks = captured.filter((c) => c.text.includes(SECRET) || c.text.includes("gho_secret_"));
  eq(leaks.map((c) => `${c.method} ${c.url} -> ${c.status}`), [], "responses containing the token");
});

summary(SUITE);
