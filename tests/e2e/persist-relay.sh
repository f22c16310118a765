#!/usr/bin/env bash
# relay-compiler in persisted mode (relay.persist.json): the artifacts under relay/__persisted__
# carry only ids, and relay/__persisted__/manifest.json maps each id to its text, the file a
# server in allow-list mode is started with (OAUTHLINK_GRAPHQL_OPERATIONS).
set -euo pipefail
cd "$(dirname "$0")"
[ -d node_modules ] || npm ci --silent --no-audit --no-fund
rm -rf relay/__persisted__
mkdir -p relay/__persisted__
# The compiler writes into an existing file only.
echo '{}' > relay/__persisted__/manifest.json
npx relay-compiler relay.persist.json >/dev/null
