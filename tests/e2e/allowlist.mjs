// Allow-list mode (a server started with OAUTHLINK_GRAPHQL_OPERATIONS=allowlist.json): the
// listed operation runs, by its text or its id; an ad-hoc query is refused with a typed error.
import { readFileSync } from 'node:fs';
import { assertEq, env, reporter } from './lib.mjs';

const BASE = env('ALLOWLIST_URL').replace(/\/+$/, '');
const TOKEN = env('TOKEN');
const t = reporter('allow-list');
const manifest = JSON.parse(readFileSync(new URL('./allowlist.json', import.meta.url), 'utf8'));
const listed = manifest.operations[0];

async function post(body) {
  const res = await fetch(`${BASE}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

await t.check('a listed operation runs, by text and by id', async () => {
  for (const body of [{ query: listed.body }, { documentId: listed.id }]) {
    const r = await post(body);
    assertEq(r.status, 200, `status of ${JSON.stringify(body)}`);
    assertEq(typeof r.json.data?.me?.username, 'string', 'answer');
  }
});

await t.check('an ad-hoc query (and introspection) is refused: 403 OPERATION_NOT_ALLOWED', async () => {
  for (const query of ['{ me { pk } }', '{ __schema { queryType { name } } }']) {
    const r = await post({ query });
    assertEq(r.status, 403, 'status');
    assertEq(r.json.errors?.[0]?.extensions?.code, 'OPERATION_NOT_ALLOWED', 'code');
  }
});

t.finish();
