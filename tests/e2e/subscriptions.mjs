// graphql-ws against the server's graphql-transport-ws endpoint. A subscriber on instance A
// (BASE_URL) sees a connection created on instance B (BASE_URL_B; the same one on SQLite)
// within a second, sees nothing of another user's rows, and is refused without credentials.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { assert, assertEq, env, freshIdentifier, gql, reporter } from './lib.mjs';

const TOKEN = env('TOKEN');
const OTHER_TOKEN = env('OTHER_TOKEN');
const SOURCE_UUID = env('SOURCE_UUID');
const BASE_URL = env('BASE_URL').replace(/\/+$/, '');
const BASE_URL_B = (process.env.BASE_URL_B || BASE_URL).replace(/\/+$/, '');
const wsUrl = (base) => `${base.replace(/^http/, 'ws')}/graphql`;
const t = reporter('graphql-ws');

const EVENTS = 'subscription { userOAuthSourceConnectionEvents { kind id pk connection { identifier user } } }';

async function gqlAt(base, query, variables, token) {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  return res.json();
}

const CREATE = 'mutation($input: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $input) { id pk } }';
const REMOVE = 'mutation($id: ID!) { removeUserOAuthSourceConnection(id: $id) { deletedId } }';

function subscriber(token) {
  const events = [];
  const client = createClient({
    url: wsUrl(BASE_URL),
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    retryAttempts: 0,
  });
  let acked;
  const ready = new Promise((resolve) => (acked = resolve));
  client.on('connected', () => acked());
  const stop = client.subscribe({ query: EVENTS }, {
    next: (v) => events.push({ at: Date.now(), value: v }),
    error: (e) => events.push({ at: Date.now(), error: e }),
    complete: () => {},
  });
  return { client, events, ready, stop };
}

await t.check('a create on instance B reaches a subscriber on A within 1 s; others\' rows never', async () => {
  const other = subscriber(OTHER_TOKEN);
  await other.ready;
  await new Promise((r) => setTimeout(r, 1000)); // the subscription is taken after the acknowledgement
  // The superuser's row: invisible to the other user.
  const mine = await gqlAt(BASE_URL_B, CREATE, { input: { source: SOURCE_UUID, identifier: freshIdentifier() } }, TOKEN);
  const theirsId = freshIdentifier();
  const started = Date.now();
  const theirs = await gqlAt(BASE_URL_B, CREATE, { input: { source: SOURCE_UUID, identifier: theirsId } }, OTHER_TOKEN);
  assert(theirs.data, `create failed: ${JSON.stringify(theirs)}`);
  while (other.events.length === 0 && Date.now() - started < 3000) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 300)); // anything else that would arrive
  other.stop();
  await other.client.dispose();
  await gqlAt(BASE_URL_B, REMOVE, { id: mine.data.createUserOAuthConnection.id }, TOKEN);
  await gqlAt(BASE_URL_B, REMOVE, { id: theirs.data.createUserOAuthConnection.id }, OTHER_TOKEN);
  assertEq(other.events.length, 1, `events (${JSON.stringify(other.events)})`);
  const event = other.events[0];
  assert(!event.error, `error: ${JSON.stringify(event.error)}`);
  const e = event.value.data.userOAuthSourceConnectionEvents;
  assertEq(e.kind, 'CREATED', 'kind');
  assertEq(e.id, theirs.data.createUserOAuthConnection.id, 'id');
  assertEq(e.connection.identifier, theirsId, 'identifier');
  const latency = event.at - started;
  console.log(`       latency ${latency} ms (${BASE_URL_B === BASE_URL ? 'one instance' : 'across instances'})`);
  assert(latency < 1000, `latency ${latency} ms`);
});

await t.check('refused without credentials (close 4403)', async () => {
  const code = await new Promise((resolve) => {
    const client = createClient({ url: wsUrl(BASE_URL), webSocketImpl: WebSocket, retryAttempts: 0 });
    client.on('closed', (e) => resolve(e.code));
    client.subscribe({ query: EVENTS }, { next: () => {}, error: () => {}, complete: () => {} });
  });
  assertEq(code, 4403, 'close code');
});

t.finish();
