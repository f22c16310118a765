// Apollo Client in Node, the way a GraphQL frontend signs its user in: it gets an access
// token from the OpenID provider (a real authorization-code + PKCE flow, through the
// harness's /__admin/login) and runs createUserOAuthConnection with it.
//
// Env: BASE_URL (oauthlink), ISSUER (the provider), SOURCE_UUID (an existing source), SUB
// (the subject linked to a user with add/view connection permissions), USER_PK (that user).
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { SetContextLink } from '@apollo/client/link/context';
import { CombinedGraphQLErrors, ServerError } from '@apollo/client/errors';

function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`apollo.mjs: set ${name}`);
    process.exit(2);
  }
  return v;
}
const BASE_URL = env('BASE_URL');
const ISSUER = env('ISSUER');
const SOURCE_UUID = env('SOURCE_UUID');
const SUB = env('SUB');
const USER_PK = Number(env('USER_PK'));

let passed = 0;
let failed = 0;
async function check(title, fn) {
  try {
    await fn();
    passed += 1;
    console.log(`  ok   ${title}`);
  } catch (e) {
    failed += 1;
    console.log(`  FAIL ${title}\n       ${String(e?.stack ?? e).split('\n').join('\n       ')}`);
  }
}
function assert(cond, message) {
  if (!cond) throw new Error(message);
}

async function signIn() {
  const res = await fetch(`${ISSUER}/__admin/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ client_id: 'test', sub: SUB, scope: 'openid offline_access api' }),
  });
  const tokens = await res.json();
  assert(res.ok && tokens.access_token, `sign-in failed: ${JSON.stringify(tokens)}`);
  return tokens;
}

// The token a frontend holds, added to every operation by a context link.
function client(getToken) {
  const auth = new SetContextLink(({ headers }) => ({
    headers: { ...headers, authorization: `Bearer ${getToken()}` },
  }));
  return new ApolloClient({
    link: auth.concat(new HttpLink({ uri: `${BASE_URL}/graphql` })),
    cache: new InMemoryCache(),
  });
}

const CREATE = gql`
  mutation Create($input: CreateUserOAuthConnectionInput!) {
    createUserOAuthConnection(input: $input) {
      pk
      user
      identifier
      source { pk slug }
    }
  }
`;

// The GraphQL error code of a failed operation, whichever way Apollo reports it.
function codeOf(error) {
  if (CombinedGraphQLErrors.is(error)) return error.errors[0]?.extensions?.code;
  if (ServerError.is(error)) return JSON.parse(error.bodyText).errors?.[0]?.extensions?.code;
  throw error;
}

let tokens;
await check('signs in at the provider: a JWT access token and a refresh token', async () => {
  tokens = await signIn();
  assert(tokens.access_token.split('.').length === 3, 'a JWT');
  assert(tokens.refresh_token, 'offline_access gives a refresh token');
});

await check('createUserOAuthConnection with the access token creates for the signed-in user', async () => {
  const apollo = client(() => tokens.access_token);
  const identifier = `apollo-${Date.now()}`;
  const { data, error } = await apollo.mutate({
    mutation: CREATE,
    variables: { input: { source: SOURCE_UUID, identifier } },
  });
  assert(!error, `error: ${error}`);
  const created = data.createUserOAuthConnection;
  assert(created.user === USER_PK, `user ${created.user}, expected ${USER_PK}`);
  assert(created.identifier === identifier, `identifier ${created.identifier}`);
  assert(created.source.pk === SOURCE_UUID, `source ${created.source.pk}`);
  console.log(`       created connection ${created.pk} for user ${created.user}`);
});

await check('a tampered token is refused with UNAUTHENTICATED', async () => {
  const [h, p, s] = tokens.access_token.split('.');
  const tampered = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`;
  const apollo = client(() => tampered);
  let code;
  try {
    const { error } = await apollo.mutate({
      mutation: CREATE,
      variables: { input: { source: SOURCE_UUID, identifier: `apollo-tampered-${Date.now()}` } },
    });
    code = error ? codeOf(error) : 'no error';
  } catch (e) {
    code = codeOf(e);
  }
  assert(code === 'UNAUTHENTICATED', `code ${code}`);
});

console.log(`apollo: ${passed} passed, ${failed} failed`);
process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
