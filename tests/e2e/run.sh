#!/usr/bin/env bash
# End-to-end checks of a running oauthlink with real GraphQL tooling:
#   graphql.mjs  - graphql-js: introspection vs SCHEMA_FILE, validate + execute the create mutation, error codes
#   graphiql.mjs - GraphiQL in headless Debian Chromium: no CDN, headers editor, run the mutation
#   relay.mjs    - relay-compiler (relay/App.js vs SCHEMA_FILE) + relay-runtime: fetch, node(id:) refetch, mutation
#   apollo.mjs   - Apollo Client: InMemoryCache updated by a mutation; APQ with the persisted-queries link
#   subscriptions.mjs - graphql-ws: a create on BASE_URL_B reaches a subscriber on BASE_URL; visibility; 4403
#   allowlist.mjs - a server in allow-list mode (ALLOWLIST_URL, started with allowlist.json)
#   relay-persisted.mjs - relay-runtime sending doc_id only to a server in allow-list mode
#                  (RELAY_ALLOWLIST_URL) started with the manifest persist-relay.sh had
#                  relay-compiler write (run persist-relay.sh before starting that server)
# Env: BASE_URL (http://127.0.0.1:9123), TOKEN (a superuser API key), SOURCE_UUID (an existing
# OAuth source), SCHEMA_FILE (the committed schema.graphql), OTHER_TOKEN (a key of a user with
# add/change permissions only), ALLOWLIST_URL, optional BASE_URL_B (a second instance on the
# same PostgreSQL database). Point it at a test instance only:
# it creates connections for the token's user and deletes its own e2e-* ones afterwards.
set -euo pipefail

for v in BASE_URL TOKEN SOURCE_UUID SCHEMA_FILE OTHER_TOKEN ALLOWLIST_URL RELAY_ALLOWLIST_URL; do
  [ -n "${!v:-}" ] || { echo "run.sh: set $v" >&2; exit 2; }
done
SCHEMA_FILE="$(realpath "$SCHEMA_FILE")" # before the cd, so a relative path works
cd "$(dirname "$0")"
export BASE_URL TOKEN SOURCE_UUID SCHEMA_FILE OTHER_TOKEN ALLOWLIST_URL RELAY_ALLOWLIST_URL

if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "run.sh: installing Debian chromium" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null
fi
if [ ! -d node_modules ]; then
  npm ci --silent --no-audit --no-fund
fi

# relay.config.json reads ../../schema.graphql: the committed schema this run checks.
mkdir -p relay/__generated__
npx relay-compiler || exit 1

status=0
node graphql.mjs || status=1
node graphiql.mjs || status=1
node relay.mjs || status=1
node apollo.mjs || status=1
node subscriptions.mjs || status=1
node allowlist.mjs || status=1
node relay-persisted.mjs || status=1
exit $status
