// Relay's persisted queries against a server in allow-list mode started with the manifest
// relay-compiler wrote (persist-relay.sh): relay-runtime sends only `doc_id`; the listed
// operations run, by id and by their exact text; anything else is refused.
import relayRuntime from 'relay-runtime';
import AppQuery from './relay/__persisted__/AppQuery.graphql.js';
import AppConnectionRefetchQuery from './relay/__persisted__/AppConnectionRefetchQuery.graphql.js';
import { readFileSync } from 'node:fs';
import { assert, assertEq, env, reporter } from './lib.mjs';

const { Environment, Network, RecordSource, Store, fetchQuery } = relayRuntime;
const BASE = env('RELAY_ALLOWLIST_URL').replace(/\/+$/, '');
const TOKEN = env('TOKEN');
const t = reporter('relay-persisted');
const manifest = JSON.parse(
  readFileSync(new URL('./relay/__persisted__/manifest.json', import.meta.url), 'utf8'),
);

async function post(body) {
  const res = await fetch(`${BASE}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

const sent = [];
const network = Network.create(async (params, variables) => {
  // Persisted artifacts have an id and no text: the request names the document only.
  assert(params.id && params.text == null, `artifact ${params.name} is persisted`);
  sent.push(params.id);
  return (await post({ doc_id: params.id, variables })).json;
});
const environment = new Environment({ network, store: new Store(new RecordSource()) });

await t.check('relay-runtime runs the persisted query by doc_id', async () => {
  const data = await fetchQuery(environment, AppQuery, {}).toPromise();
  assert(data.me?.id, `me answered: ${JSON.stringify(data)}`);
  assertEq(sent[0], AppQuery.params.id, 'the id sent');
  assert(manifest[AppQuery.params.id], 'the id is in the manifest relay-compiler wrote');
  const id = environment.getStore().getSource().get('client:root')?.me?.__ref;
  const again = await fetchQuery(environment, AppConnectionRefetchQuery, { id }).toPromise();
  assert('node' in again, 'a second persisted operation ran');
});

await t.check('the listed text runs; an ad-hoc query and an unknown id are refused', async () => {
  const r = await post({ query: manifest[AppQuery.params.id] });
  assertEq(r.status, 200, 'listed text');
  for (const body of [{ query: '{ me { pk } }' }, { doc_id: 'f'.repeat(64) }]) {
    const r = await post(body);
    assertEq(r.status, 403, `status of ${JSON.stringify(body)}`);
    assertEq(r.json.errors?.[0]?.extensions?.code, 'OPERATION_NOT_ALLOWED', 'code');
  }
});

t.finish();
