// Apollo Client: InMemoryCache normalises by __typename + id, so an update made through the
// mutation shows in a list already in the cache, with no refetch. Then an automatic
// persisted query round trip with Apollo's persisted-queries link.
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { ENDPOINT, assert, assertEq, cleanup, env, freshIdentifier, gql, reporter } from './lib.mjs';

const require = createRequire(import.meta.url);
const { ApolloClient, HttpLink, InMemoryCache, gql: tag } = require('@apollo/client/core');
const { createPersistedQueryLink } = require('@apollo/client/link/persisted-queries');

const TOKEN = env('TOKEN');
const SOURCE_UUID = env('SOURCE_UUID');
const t = reporter('apollo');

await cleanup(TOKEN, SOURCE_UUID);
await gql(
  'mutation($input: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $input) { id } }',
  { input: { source: SOURCE_UUID, identifier: freshIdentifier() } },
  TOKEN,
);

/** fetch that records what went over the wire. */
function recorder() {
  const sent = [];
  const fetchImpl = async (url, init) => {
    const res = await fetch(url, init);
    sent.push({ body: JSON.parse(init.body), status: res.status });
    return res;
  };
  return { sent, fetchImpl };
}

const LIST = tag`
  query List {
    userOAuthSourceConnections(sourceSlug: "github-e2e", first: 10) {
      edges { node { id identifier } }
    }
  }
`;
const UPDATE = tag`
  mutation Update($id: ID!, $identifier: String!) {
    updateUserOAuthSourceConnection(id: $id, input: { identifier: $identifier }) { id identifier }
  }
`;

await t.check('InMemoryCache: a list reflects the mutation without a refetch', async () => {
  const { sent, fetchImpl } = recorder();
  const client = new ApolloClient({
    link: new HttpLink({ uri: ENDPOINT, headers: { authorization: `Bearer ${TOKEN}` }, fetch: fetchImpl }),
    cache: new InMemoryCache(),
  });
  const list = await client.query({ query: LIST });
  const edges = list.data.userOAuthSourceConnections.edges;
  assert(edges.length > 0, 'the list has our connection');
  const { id } = edges[0].node;
  const identifier = freshIdentifier();
  await client.mutate({ mutation: UPDATE, variables: { id, identifier } });
  const before = sent.length;
  const cached = await client.query({ query: LIST, fetchPolicy: 'cache-only' });
  assertEq(sent.length, before, 'requests after the mutation');
  const node = cached.data.userOAuthSourceConnections.edges.find((e) => e.node.id === id).node;
  assertEq(node.identifier, identifier, 'identifier read from the cached list');
});

await t.check('APQ: hash first, text on PersistedQueryNotFound, then the hash alone', async () => {
  const sha256 = (s) => createHash('sha256').update(s).digest('hex');
  const run = async () => {
    const { sent, fetchImpl } = recorder();
    const client = new ApolloClient({
      link: createPersistedQueryLink({ sha256 }).concat(
        new HttpLink({ uri: ENDPOINT, headers: { authorization: `Bearer ${TOKEN}` }, fetch: fetchImpl }),
      ),
      cache: new InMemoryCache(),
    });
    // A document no other run sent: its hash is unknown at first.
    const r = await client.query({ query: QUERY, fetchPolicy: 'network-only' });
    assertEq(r.data.me.__typename, 'Me', 'answer');
    return sent;
  };
  const alias = `u${freshIdentifier().replace(/[^0-9a-f]/g, '')}`;
  const QUERY = tag([`query Apq { me { username } ${alias}: __typename }`]);
  const first = await run();
  assertEq(first.length, 2, 'requests of the first run');
  assert(!first[0].body.query && first[0].body.extensions.persistedQuery, 'hash only at first');
  assertEq(first[0].status, 404, 'unknown hash status');
  assert(first[1].body.query, 'then the text with its hash');
  const second = await run();
  assertEq(second.length, 1, 'requests of the second run');
  assert(!second[0].body.query, 'the hash alone');
  assertEq(second[0].status, 200, 'registered hash status');
});

await cleanup(TOKEN, SOURCE_UUID);
t.finish();
