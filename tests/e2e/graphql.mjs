// The API as graphql-js sees it: introspection matches the committed SDL, and the
// createUserOAuthConnection mutation validates and behaves as documented over HTTP.
import { readFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import {
  buildClientSchema,
  buildSchema,
  findBreakingChanges,
  findDangerousChanges,
  getIntrospectionQuery,
  lexicographicSortSchema,
  parse,
  printSchema,
  validate,
} from 'graphql';
import { CREATE_MUTATION, assert, assertEq, cleanup, env, freshIdentifier, gql, reporter } from './lib.mjs';

const TOKEN = env('TOKEN');
const SOURCE_UUID = env('SOURCE_UUID');
const SCHEMA_FILE = env('SCHEMA_FILE');

const t = reporter('graphql-js');
const fileSchema = buildSchema(readFileSync(SCHEMA_FILE, 'utf8'));
const errorCodes = new Set(fileSchema.getType('ErrorCode')?.getValues().map((v) => v.name) ?? []);
const seenCodes = []; // every extensions.code we get back, checked against ErrorCode at the end
const createdPks = [];

function errorsOf(r) {
  const errs = r.json.errors ?? [];
  for (const e of errs) seenCodes.push(e.extensions?.code);
  return errs;
}

function expectError(r, code) {
  const errs = errorsOf(r);
  assert(errs.length > 0, `expected an error, got ${r.text.slice(0, 300)}`);
  assertEq(errs[0].extensions?.code, code, 'errors[0].extensions.code');
  return errs[0];
}

function expectFieldError(err, field, code) {
  const fe = err.extensions?.fieldErrors;
  assert(Array.isArray(fe), `extensions.fieldErrors missing: ${JSON.stringify(err)}`);
  for (const f of fe) {
    assert(typeof f.field === 'string' && typeof f.code === 'string' && typeof f.message === 'string',
      `fieldErrors entry lacks field/code/message: ${JSON.stringify(f)}`);
  }
  assert(fe.some((f) => f.field === field && f.code === code),
    `fieldErrors has no {field:${field}, code:${code}}: ${JSON.stringify(fe)}`);
}

const create = (input, token = TOKEN) => gql(CREATE_MUTATION, { input }, token);

await cleanup(TOKEN, SOURCE_UUID);

let serverSchema;
await t.check('standard introspection query builds a client schema', async () => {
  const r = await gql(getIntrospectionQuery(), {}, TOKEN);
  assert(!r.json.errors, `introspection errors: ${JSON.stringify(r.json.errors)}`);
  serverSchema = buildClientSchema(r.json.data);
});

// What the SDL file states beyond the standard query's defaults: repeatable directives,
// deprecated arguments, @oneOf and the scalars' @specifiedBy URLs. Not asked:
// schemaDescription (async-graphql answers it with the __Schema type's own description).
const COMPARE_QUERY = getIntrospectionQuery({
  directiveIsRepeatable: true, inputValueDeprecation: true, oneOf: true, specifiedByUrl: true,
});

// Both sides go through SDL semantics: printSchema drops built-in scalars and directives and
// buildSchema adds graphql-js's own, so only what the server defines is compared (otherwise
// unreferenced Float/ID, or graphql-js's newer @deprecated locations, show up as changes).
const viaSdl = (schema) => buildSchema(printSchema(schema));

let comparedSchema;
await t.check('server schema has no breaking or dangerous change against SCHEMA_FILE (both ways)', async () => {
  const r = await gql(COMPARE_QUERY, {}, TOKEN);
  assert(!r.json.errors, `introspection errors: ${JSON.stringify(r.json.errors)}`);
  comparedSchema = viaSdl(buildClientSchema(r.json.data));
  const diffs = [
    ...findBreakingChanges(fileSchema, comparedSchema).map((c) => `file->server breaking ${c.type}: ${c.description}`),
    ...findBreakingChanges(comparedSchema, fileSchema).map((c) => `server->file breaking ${c.type}: ${c.description}`),
    ...findDangerousChanges(fileSchema, comparedSchema).map((c) => `file->server dangerous ${c.type}: ${c.description}`),
    ...findDangerousChanges(comparedSchema, fileSchema).map((c) => `server->file dangerous ${c.type}: ${c.description}`),
  ];
  assert(diffs.length === 0, diffs.join('\n'));
});

const sortedSdl = (schema) => printSchema(lexicographicSortSchema(schema));

await t.check('printSchema(introspected) equals printSchema(SCHEMA_FILE), both sorted', async () => {
  assert(comparedSchema, 'no introspected schema');
  const a = sortedSdl(comparedSchema).split('\n');
  const b = sortedSdl(fileSchema).split('\n');
  const i = a.findIndex((line, n) => line !== b[n]);
  assert(i === -1 && a.length === b.length,
    `first difference at line ${i + 1}:\n  server: ${a[i]}\n  file:   ${b[i]}`);
});

await t.check('create mutation validates against both schemas', async () => {
  const doc = parse(CREATE_MUTATION);
  for (const [name, s] of [['file', fileSchema], ['server', serverSchema]]) {
    assert(s, `no ${name} schema`);
    const errs = validate(s, doc);
    assert(errs.length === 0, `${name}: ${errs.map((e) => e.message).join('; ')}`);
  }
});

const identifier = freshIdentifier();
const secret = `e2e-secret-${randomUUID()}`;
const expires = '2031-02-03T04:05:06Z';
let created;
await t.check('createUserOAuthConnection returns the new connection', async () => {
  const r = await create({ source: SOURCE_UUID, identifier, accessToken: secret, expires });
  assert(!errorsOf(r).length, `errors: ${JSON.stringify(r.json.errors)}`);
  created = r.json.data.createUserOAuthConnection;
  createdPks.push(created.pk);
  assert(Number.isInteger(created.pk), 'pk is an Int');
  assert(Number.isInteger(created.user), 'user is an Int');
  assertEq(created.identifier, identifier, 'identifier');
  assertEq(created.source.pk, SOURCE_UUID, 'source.pk');
  assert(typeof created.source.slug === 'string' && created.source.slug, 'source.slug');
  for (const f of ['created', 'lastUpdated']) assert(!Number.isNaN(Date.parse(created[f])), `${f} is a DateTime`);
  assertEq(Date.parse(created.expires), Date.parse(expires), 'expires (same instant)');
  assert(!/access_?token/i.test(r.text), 'response mentions accessToken/access_token');
  assert(!r.text.includes(secret), 'response echoes the access token value');
});

await t.check('duplicate create is CONFLICT', async () => {
  const r = await create({ source: SOURCE_UUID, identifier });
  expectError(r, 'CONFLICT');
});

await t.check('blank identifier is BAD_USER_INPUT {field: identifier, code: blank}', async () => {
  const r = await create({ source: SOURCE_UUID, identifier: '' });
  expectFieldError(expectError(r, 'BAD_USER_INPUT'), 'identifier', 'blank');
});

await t.check('no token is UNAUTHENTICATED', async () => {
  const r = await create({ source: SOURCE_UUID, identifier: freshIdentifier() }, null);
  expectError(r, 'UNAUTHENTICATED');
});

await t.check('unknown source is BAD_USER_INPUT {field: source, code: does_not_exist}', async () => {
  const r = await create({ source: randomUUID(), identifier: freshIdentifier() });
  expectFieldError(expectError(r, 'BAD_USER_INPUT'), 'source', 'does_not_exist');
});

await t.check('every returned extensions.code is a value of enum ErrorCode', async () => {
  assert(errorCodes.size > 0, 'SCHEMA_FILE has no enum ErrorCode');
  assert(seenCodes.length > 0, 'no error codes were seen');
  const bad = seenCodes.filter((c) => !errorCodes.has(c));
  assert(bad.length === 0, `codes not in ErrorCode: ${JSON.stringify(bad)}`);
});

await cleanup(TOKEN, SOURCE_UUID, createdPks);
t.finish();
