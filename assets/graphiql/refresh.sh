#!/usr/bin/env bash
# Re-download the vendored GraphiQL UMD builds from the npm registry (npm pack),
# so /graphql never loads anything from a CDN. Bump the versions here, run this,
# then update the file names in src/graphql/graphiql.rs and README.md.
set -euo pipefail
GRAPHIQL=3.9.0   # last major with a UMD build (4.x+ ship ESM only)
REACT=18.3.1     # last React with umd/ builds (19 dropped them)

here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null
for p in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
  mkdir -p "$p" && tar xzf "$p.tgz" -C "$p"
done

# Versioned names: the server marks them immutable for a year.
# Drop the sourceMappingURL comment: we do not ship the 4 MB map.
sed '/^\/\/# sourceMappingURL=/d' "graphiql-$GRAPHIQL/package/graphiql.min.js" >"$here/graphiql-$GRAPHIQL.min.js"
cp "graphiql-$GRAPHIQL/package/graphiql.min.css" "$here/graphiql-$GRAPHIQL.min.css"
cp "react-$REACT/package/umd/react.production.min.js" "$here/react-$REACT.production.min.js"
cp "react-dom-$REACT/package/umd/react-dom.production.min.js" "$here/react-dom-$REACT.production.min.js"
cp "graphiql-$GRAPHIQL/package/LICENSE" "$here/LICENSE.graphiql"
cp "react-$REACT/package/LICENSE" "$here/LICENSE.react"
(cd "$here" && sha256sum graphiql-*.min.* react-*.min.js > SHA256SUMS)
echo "vendored graphiql $GRAPHIQL, react/react-dom $REACT into $here"
