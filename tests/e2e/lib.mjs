// Shared bits of the e2e scripts: env, a tiny test reporter, GraphQL over HTTP.
import { randomUUID } from 'node:crypto';

export function env(name) {
  const v = process.env[name];
  if (!v) {
    console.error(`missing env var ${name}`);
    process.exit(2);
  }
  return v;
}

export const BASE_URL = env('BASE_URL').replace(/\/+$/, '');
export const ENDPOINT = `${BASE_URL}/graphql`;

/** A fresh identifier; the e2e- prefix lets cleanup find leftovers of our own. */
export const freshIdentifier = () => `e2e-${randomUUID()}`;

export const CREATE_MUTATION = `mutation Create($input: CreateUserOAuthConnectionInput!) {
  createUserOAuthConnection(input: $input) {
    pk
    user
    identifier
    created
    lastUpdated
    expires
    source {
      pk name slug enabled component verboseName verboseNamePlural metaModelName
      policyEngineMode userMatchingMode userPathTemplate managed icon
      authenticationFlow enrollmentFlow userPropertyMappings groupPropertyMappings
    }
  }
}`;

/** POST a GraphQL request; returns {status, text, json}. */
export async function gql(query, variables, token) {
  const headers = { 'content-type': 'application/json', accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(ENDPOINT, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`non-JSON response (HTTP ${res.status}): ${text.slice(0, 300)}`);
  }
  return { status: res.status, text, json };
}

/** Minimal reporter: named checks, one line each, a closing "name: N passed, M failed". */
export function reporter(name) {
  let passed = 0;
  let failed = 0;
  return {
    async check(title, fn) {
      try {
        await fn();
        passed++;
        console.log(`  ok   ${title}`);
      } catch (e) {
        failed++;
        console.log(`  FAIL ${title}\n       ${String(e?.stack ?? e).split('\n').join('\n       ')}`);
      }
    },
    finish() {
      console.log(`${name}: ${passed} passed, ${failed} failed`);
      process.exitCode = failed === 0 && passed > 0 ? 0 : 1;
    },
  };
}

export function assert(cond, message) {
  if (!cond) throw new Error(message);
}

export function assertEq(actual, expected, what) {
  if (actual !== expected) {
    throw new Error(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`);
  }
}

/**
 * Best effort: delete the token owner's e2e-* connections to `sourceUuid`, so a run after a
 * crashed one does not hit the (user, source) uniqueness rule. Uses the delete mutation and the
 * list query, which are outside what these tests check; failures are only logged.
 */
export async function cleanup(token, sourceUuid, pks = []) {
  try {
    const me = await gql('{ me { pk } }', {}, token);
    const list = await gql(
      `query($user: Int) { userOAuthSourceConnections(user: $user, first: 100) {
         nodes { pk identifier source { pk } } } }`,
      { user: me.json.data?.me?.pk },
      token,
    );
    for (const n of list.json.data?.userOAuthSourceConnections?.nodes ?? []) {
      if (n.source.pk === sourceUuid && n.identifier.startsWith('e2e-')) pks.push(n.pk);
    }
    for (const pk of new Set(pks)) {
      const r = await gql('mutation($pk: Int!) { deleteUserOAuthSourceConnection(pk: $pk) }', { pk }, token);
      if (r.json.errors) console.log(`  note: cleanup of connection ${pk}: ${r.json.errors[0].message}`);
    }
  } catch (e) {
    console.log(`  note: cleanup skipped: ${e.message}`);
  }
}
