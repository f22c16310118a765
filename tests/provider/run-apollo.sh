#!/usr/bin/env bash
# Apollo Client (apollo.mjs) against an oauthlink binary that trusts the test OpenID provider
# (server.mjs): starts both on loopback, links a user to a subject with the CLI
# (`oauthlink user subject`), signs in at the provider and runs the mutation with the token;
# then GraphiQL in Chromium (tests/e2e/graphiql.mjs) with that access token pasted into its
# headers editor, mutation and subscription included.
# Usage: run-apollo.sh BIN   (DATABASE_URL: the database; default a fresh SQLite file)
set -euo pipefail
BIN=$(realpath "$1")
cd "$(dirname "$0")"
TMP=$(mktemp -d)
PROVIDER_PID= SERVER_PID=
cleanup() {
  [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
  [ -n "$PROVIDER_PID" ] && kill "$PROVIDER_PID" 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
[ -d node_modules ] || npm ci --silent --no-audit --no-fund

PORT=0 node server.mjs </dev/null >"$TMP/provider.out" 2>"$TMP/provider.err" &
PROVIDER_PID=$!
for _ in $(seq 300); do [ -s "$TMP/provider.out" ] && break; sleep 0.1; done
ISSUER=$(sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p' "$TMP/provider.out")
[ -n "$ISSUER" ] || { cat "$TMP/provider.err" >&2; echo "run-apollo.sh: the provider did not start" >&2; exit 1; }

export OAUTHLINK_DATABASE_URL=${DATABASE_URL:-sqlite://$TMP/apollo.sqlite3?mode=rwc}
export OAUTHLINK_SECRET_KEY
OAUTHLINK_SECRET_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export OAUTHLINK_OIDC_ISSUER=$ISSUER OAUTHLINK_OIDC_AUDIENCE=https://oauthlink.test
port=19450
OAUTHLINK_BOOTSTRAP_TOKEN=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n') \
  OAUTHLINK_LISTEN=127.0.0.1:$port OAUTHLINK_LOG=warn "$BIN" serve &
SERVER_PID=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/-/health/ready/" >/dev/null && break; sleep 0.1; done

source=$("$BIN" source create --name "GitHub apollo" --slug github-apollo)
user=$("$BIN" user create --username apollo-user)
"$BIN" user grant --username apollo-user add_useroauthsourceconnection view_useroauthsourceconnection
"$BIN" user subject --username apollo-user --set apollo-sub
"$BIN" user subject --username apollo-user

BASE_URL=http://127.0.0.1:$port ISSUER=$ISSUER SOURCE_UUID=$source SUB=apollo-sub USER_PK=$user \
  node apollo.mjs

# GraphiQL with a pasted access token: the browser check of tests/e2e, signed in by the IdP.
"$BIN" user grant --username apollo-user change_useroauthsourceconnection delete_useroauthsourceconnection
jwt=$(curl -fs "$ISSUER/__admin/login" -H 'Content-Type: application/json' \
  -d '{"client_id":"test","sub":"apollo-sub","scope":"openid api"}' |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["access_token"])')
[ -d ../e2e/node_modules ] || (cd ../e2e && npm ci --silent --no-audit --no-fund)
# A source of its own: apollo.mjs already linked the user to the first one.
source=$("$BIN" source create --name "GitHub graphiql" --slug github-graphiql)
BASE_URL=http://127.0.0.1:$port TOKEN=$jwt SOURCE_UUID=$source node ../e2e/graphiql.mjs
