// Relay: the artifacts relay-compiler built from relay/App.js against schema.graphql, run by
// relay-runtime against the server: fetch the paginated list, refetch a connection and a
// source through node(id:), update the store through the mutation, delete with @deleteRecord.
import relayRuntime from 'relay-runtime';
import AppQuery from './relay/__generated__/AppQuery.graphql.js';
import AppConnectionRefetchQuery from './relay/__generated__/AppConnectionRefetchQuery.graphql.js';
import AppSourceRefetchQuery from './relay/__generated__/AppSourceRefetchQuery.graphql.js';
import AppUpdateMutation from './relay/__generated__/AppUpdateMutation.graphql.js';
import AppRemoveMutation from './relay/__generated__/AppRemoveMutation.graphql.js';
import { assert, assertEq, cleanup, env, freshIdentifier, gql, reporter } from './lib.mjs';

const { Environment, Network, RecordSource, Store, fetchQuery, commitMutation } = relayRuntime;
const TOKEN = env('TOKEN');
const SOURCE_UUID = env('SOURCE_UUID');
const t = reporter('relay');

await cleanup(TOKEN, SOURCE_UUID);
const created = await gql(
  'mutation($input: CreateUserOAuthConnectionInput!) { createUserOAuthConnection(input: $input) { id pk } }',
  { input: { source: SOURCE_UUID, identifier: freshIdentifier() } },
  TOKEN,
);
const { id, pk } = created.json.data.createUserOAuthConnection;

const requests = [];
const network = Network.create(async (params, variables) => {
  requests.push(params.name);
  return (await gql(params.text, variables, TOKEN)).json;
});
const environment = new Environment({ network, store: new Store(new RecordSource()) });
const record = (dataID) => environment.getStore().getSource().get(dataID);

await t.check('fetches the paginated @connection query', async () => {
  const data = await fetchQuery(environment, AppQuery, {}).toPromise();
  assert(data.me.id, 'me has a global id');
  const r = record(id);
  assert(r, `connection ${id} is in the store`);
  assertEq(r.pk, pk, 'stored pk');
  assertEq(r.__typename, 'UserOAuthSourceConnection', 'typename');
});

await t.check('refetches a connection and a source through node(id:)', async () => {
  // The fragments' fields are masked in `data`: what node(id:) answered is in the store.
  const data = await fetchQuery(environment, AppConnectionRefetchQuery, { id }).toPromise();
  assert(data.node, 'node(id:) answered');
  assertEq(record('client:root')[`node(id:"${id}")`]?.__ref, id, 'node(id:) resolved to the same record');
  const sourceId = record(id).source.__ref;
  const s = await fetchQuery(environment, AppSourceRefetchQuery, { id: sourceId }).toPromise();
  assert(s.node, 'source refetched');
  assertEq(record(sourceId).slug, 'github-e2e', 'source slug in the store');
  assertEq(requests.filter((n) => n.endsWith('RefetchQuery')).length, 2, 'refetch requests sent');
});

await t.check('a mutation updates the record in the store', async () => {
  const identifier = freshIdentifier();
  await new Promise((resolve, reject) =>
    commitMutation(environment, {
      mutation: AppUpdateMutation,
      variables: { id, identifier },
      onCompleted: (_, errors) => (errors ? reject(new Error(JSON.stringify(errors))) : resolve()),
      onError: reject,
    }),
  );
  assertEq(record(id).identifier, identifier, 'identifier in the store after the mutation');
});

await t.check('@deleteRecord on deletedId removes it from the store', async () => {
  await new Promise((resolve, reject) =>
    commitMutation(environment, {
      mutation: AppRemoveMutation,
      variables: { id },
      onCompleted: (_, errors) => (errors ? reject(new Error(JSON.stringify(errors))) : resolve()),
      onError: reject,
    }),
  );
  assertEq(record(id), null, 'deleted record');
  const again = await gql('query($id: ID!) { node(id: $id) { id } }', { id }, TOKEN);
  assertEq(again.json.data.node, null, 'node(id:) of a deleted row');
});

t.finish();
