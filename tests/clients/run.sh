#!/usr/bin/env bash
# Prove oauthlink's authentik-compatible REST shim with the official authentik clients.
#
#   tests/clients/run.sh BIN
#
# BIN is the oauthlink binary (e.g. target/debug/oauthlink). The database is $DATABASE_URL, or a
# fresh SQLite file in a temporary directory. With a postgres:// URL (which must name a fresh,
# empty database) OAUTHLINK_SECRET_KEY is exported (random 64 hex characters unless already set).
#
# Runs the server twice against the same database:
#   OAUTHLINK_REST_SHAPE=documented -> ts-2024 (@goauthentik/api@2024.8.3-1729836831)
#   OAUTHLINK_REST_SHAPE=current    -> ts-2026 (@goauthentik/api@2026.8.3) and py (authentik-client)
# Each suite prints `N passed, M failed`; this script prints the total and exits non-zero if any
# test failed (or a suite could not run).
set -uo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 BIN" >&2
  exit 2
fi
BIN=$(realpath "$1") || { echo "no such binary: $1" >&2; exit 2; }
[[ -x $BIN ]] || { echo "not executable: $BIN" >&2; exit 2; }
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

TMP=$(mktemp -d "${TMPDIR:-/tmp}/oauthlink-clients.XXXXXX")
URL=${DATABASE_URL:-"sqlite://$TMP/x.sqlite3?mode=rwc"}
if [[ $URL == postgres://* || $URL == postgresql://* ]]; then
  if [[ -z ${OAUTHLINK_SECRET_KEY:-} ]]; then
    OAUTHLINK_SECRET_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  fi
  export OAUTHLINK_SECRET_KEY
fi
export OAUTHLINK_DATABASE_URL=$URL
unset OAUTHLINK_LISTEN OAUTHLINK_REST_SHAPE OAUTHLINK_BOOTSTRAP_TOKEN
# The suites try many bad tokens on purpose; throttling has its own tests.
export OAUTHLINK_AUTH_FAILURES_PER_MINUTE=0
SUPER_TOKEN="clients-super-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"

SERVER_PID=
stop_server() {
  if [[ -n $SERVER_PID ]]; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null
    wait "$SERVER_PID" 2>/dev/null
    SERVER_PID=
  fi
}
cleanup() {
  stop_server
  if [[ -n ${KEEP_TMP:-} ]]; then echo "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '\n=== %s\n' "$*"; }
die() { echo "run.sh: $*" >&2; exit 1; }

# ------------------------------------------------------------------ dependencies
log "installing client packages (if missing)"
for d in ts-2024 ts-2026; do
  if [[ ! -f $HERE/$d/node_modules/@goauthentik/api/package.json ]] ||
     [[ $HERE/$d/package-lock.json -nt $HERE/$d/node_modules/.package-lock.json ]]; then
    (cd "$HERE/$d" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed in $d"
  fi
  echo "$d: @goauthentik/api@$(node -p "require('$HERE/$d/node_modules/@goauthentik/api/package.json').version")"
done
if [[ ! -x $HERE/.venv/bin/python ]]; then
  python3 -m venv "$HERE/.venv" || die "cannot create $HERE/.venv"
fi
"$HERE/.venv/bin/pip" install --quiet --disable-pip-version-check -r "$HERE/py/requirements.txt" || die "pip install failed"
echo "py: authentik-client==$("$HERE/.venv/bin/python" -c 'import authentik_client; print(authentik_client.__version__)')"

# ------------------------------------------------------------------ server
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

start_server() { # shape
  local shape=$1 port
  port=$(free_port)
  OAUTHLINK_LISTEN=127.0.0.1:$port OAUTHLINK_REST_SHAPE=$shape OAUTHLINK_BOOTSTRAP_TOKEN=$SUPER_TOKEN \
    "$BIN" serve >"$TMP/server-$shape.log" 2>&1 &
  SERVER_PID=$!
  OAUTHLINK_URL=http://127.0.0.1:$port
  for _ in $(seq 1 300); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      tail -n 40 "$TMP/server-$shape.log" >&2
      SERVER_PID=
      die "server ($shape) exited during start-up"
    fi
    if [[ $(curl -s -o /dev/null -w '%{http_code}' "$OAUTHLINK_URL/-/health/ready/") == 200 ]]; then
      echo "server ($shape) ready on $OAUTHLINK_URL, pid $SERVER_PID"
      return 0
    fi
    sleep 0.2
  done
  tail -n 40 "$TMP/server-$shape.log" >&2
  die "server ($shape) not ready after 60s"
}

cli() { # prints the last stdout line of a CLI call; dies on failure
  local out
  out=$("$BIN" "$@" 2>"$TMP/cli.err") || { cat "$TMP/cli.err" >&2; die "\`oauthlink $*\` failed"; }
  printf '%s\n' "$out" | tail -n 1
}

# ------------------------------------------------------------------ suites
TOTAL_PASSED=0
TOTAL_FAILED=0
SUMMARY=()
run_suite() { # name command...
  local name=$1 out line p f rc
  shift
  log "suite $name ($SHAPE mode)"
  out="$TMP/suite-$name.out"
  (
    export OAUTHLINK_URL SUPER_TOKEN ALICE_TOKEN BOB_TOKEN BOB_PK ALICE_PK
    export SOURCE_UUID=${SOURCES[$name]} SOURCE_SLUG=${SLUGS[$name]}
    "$@"
  ) 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  line=$(grep -Eo '[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
  if [[ -z $line ]]; then
    p=0 f=1
    line="suite crashed before its summary"
  else
    p=${line%% passed*}
    f=${line#*, }; f=${f%% failed}
  fi
  if [[ $f -eq 0 && $rc -ne 0 ]]; then f=1; line="$line (exit status $rc)"; fi
  if [[ $f -gt 0 ]]; then
    echo "--- last lines of the server log ($SHAPE):"
    tail -n 15 "$TMP/server-$SHAPE.log"
  fi
  TOTAL_PASSED=$((TOTAL_PASSED + p))
  TOTAL_FAILED=$((TOTAL_FAILED + f))
  SUMMARY+=("$(printf '%-8s %-11s %s' "$name" "$SHAPE" "$line")")
}

log "database: ${URL%%\?*}"
declare -A SOURCES SLUGS

SHAPE=documented
start_server "$SHAPE"

# Fixtures through the CLI, while the server (which bootstrapped akadmin) runs.
ALICE_PK=$(cli user create --username alice)
BOB_PK=$(cli user create --username bob)
cli user grant --username bob add_useroauthsourceconnection view_useroauthsourceconnection \
  change_useroauthsourceconnection delete_useroauthsourceconnection >/dev/null
ALICE_TOKEN=$(cli token create --username alice)
BOB_TOKEN=$(cli token create --username bob)
# One source per suite, so each suite's counts and (user, source) pairs are its own.
SOURCES[ts-2024]=$(cli source create --name GitHub --slug github)
SLUGS[ts-2024]=github
SOURCES[ts-2026]=$(cli source create --name "GitHub 2026" --slug github-2026)
SLUGS[ts-2026]=github-2026
SOURCES[py]=$(cli source create --name "GitHub Python" --slug github-py)
SLUGS[py]=github-py
[[ $ALICE_PK =~ ^[0-9]+$ && $BOB_PK =~ ^[0-9]+$ ]] || die "user create did not print integer pks: '$ALICE_PK' '$BOB_PK'"
for s in "${SOURCES[@]}"; do
  [[ $s =~ ^[0-9a-f-]{36}$ ]] || die "source create did not print a uuid: '$s'"
done
echo "fixtures: alice=$ALICE_PK bob=$BOB_PK sources: ${SOURCES[*]}"

run_suite ts-2024 node "$HERE/ts-2024/test.mjs"
stop_server

SHAPE=current
start_server "$SHAPE"
run_suite ts-2026 node "$HERE/ts-2026/test.mjs"
run_suite py "$HERE/.venv/bin/python" "$HERE/py/test_client.py"
stop_server

log "summary (${URL%%://*})"
printf '%s\n' "${SUMMARY[@]}"
echo "total: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
[[ $TOTAL_FAILED -eq 0 ]]
