#!/usr/bin/env bash
# A PostgreSQL server for the store's tests and benchmark; safe to run again. Prints the database URL.
#   1. starts the local cluster (Debian's postgresql-common: pg_ctlcluster) when it is installed and down;
#   2. creates a role with a password and a test database it owns (password auth on 127.0.0.1, which
#      Debian's default pg_hba.conf allows: nothing in the server's configuration is edited).
# As root it acts as the postgres user (runuser); otherwise through password-less sudo, or it says what
# to run. Environment: PLAYGROUND_PG_ROLE (default playground), PLAYGROUND_PG_PASSWORD (default
# playground: a local test server only), PLAYGROUND_PG_DB (default playground_test).
# --reset drops the test database first (tests and benchmarks killed half-way leave schemas behind).
# Exit status: 0 and the URL on stdout; 1 with the reason on stderr when there is no server to use.
set -euo pipefail
# Only the URL goes to stdout: everything else (pg_ctlcluster's "Removed stale pid file.", psql) to stderr.
exec 3>&1 1>&2
RESET=0
[[ "${1:-}" == --reset ]] && RESET=1

ROLE="${PLAYGROUND_PG_ROLE:-playground}"
PASSWORD="${PLAYGROUND_PG_PASSWORD:-playground}"
DATABASE="${PLAYGROUND_PG_DB:-playground_test}"

say() { printf '[postgres] %s\n' "$*" >&2; }

[[ "$ROLE" =~ ^[a-z_][a-z0-9_]*$ && "$DATABASE" =~ ^[a-z_][a-z0-9_]*$ ]] \
  || { say "PLAYGROUND_PG_ROLE and PLAYGROUND_PG_DB must be lower-case SQL names"; exit 1; }
[[ "$PASSWORD" =~ ^[A-Za-z0-9_.~-]+$ ]] \
  || { say "PLAYGROUND_PG_PASSWORD may hold letters, digits and _.~- only (it goes into a URL)"; exit 1; }

if ! command -v pg_lsclusters >/dev/null || [[ -z "$(pg_lsclusters --no-header 2>/dev/null)" ]]; then
  say "PostgreSQL is not installed (Debian: sudo apt-get install postgresql)"
  exit 1
fi
# The first cluster listed, e.g. "15 main 5432 down postgres /var/lib/postgresql/15/main ..."
read -r VERSION CLUSTER PORT STATUS _ < <(pg_lsclusters --no-header | head -n 1)

URL="postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$PORT/$DATABASE"
if [[ "$STATUS" == online* && "$RESET" == 0 ]] \
  && PGPASSWORD="$PASSWORD" PGCONNECT_TIMEOUT=5 psql --no-psqlrc -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" \
    -d "$DATABASE" -tA -c "SELECT 1" </dev/null >/dev/null 2>&1; then
  echo "$URL" >&3  # already set up (by root, or an earlier run)
  exit 0
fi

as_postgres=()
if [[ $(id -u) -eq 0 ]]; then
  as_postgres=(runuser -u postgres --)
elif [[ $(id -un) == postgres ]]; then
  as_postgres=()
elif sudo -n true 2>/dev/null; then
  as_postgres=(sudo -n -u postgres --)
else
  say "cannot act as the postgres user without root or password-less sudo; run as root:"
  say "  pg_ctlcluster $VERSION $CLUSTER start   # if it is down"
  say "  su postgres -c \"psql -c \\\"CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'\\\"\""
  say "  su postgres -c \"createdb -O $ROLE $DATABASE\""
  say "then: export PLAYGROUND_TEST_PG=$URL"
  exit 1
fi

if [[ "$STATUS" != online* ]]; then
  say "starting PostgreSQL $VERSION/$CLUSTER on port $PORT"
  starter=(pg_ctlcluster)
  [[ $(id -u) -ne 0 && $(id -un) != postgres ]] && starter=(sudo -n pg_ctlcluster)
  "${starter[@]}" --skip-systemctl-redirect "$VERSION" "$CLUSTER" start 3>&-  # the server must not hold the URL pipe open
fi

psql_admin() {  # psql as the postgres superuser over the local socket (peer auth); from / so it may cd
  (cd / && "${as_postgres[@]}" psql --no-psqlrc -X -q -v ON_ERROR_STOP=1 -p "$PORT" -d postgres -tA "$@")
}

for _ in $(seq 1 30); do  # the server may still be starting
  psql_admin -c "SELECT 1" >/dev/null 2>&1 && break
  sleep 1
done
psql_admin -c "SELECT 1" >/dev/null || { say "the server on port $PORT does not answer"; exit 1; }

if [[ "$(psql_admin -c "SELECT 1 FROM pg_roles WHERE rolname = '$ROLE'")" == 1 ]]; then
  psql_admin -c "ALTER ROLE $ROLE LOGIN PASSWORD '$PASSWORD'"
else
  say "creating the role $ROLE"
  psql_admin -c "CREATE ROLE $ROLE LOGIN PASSWORD '$PASSWORD'"
fi
if [[ "$RESET" == 1 ]]; then
  say "dropping the database $DATABASE"
  psql_admin -c "DROP DATABASE IF EXISTS $DATABASE WITH (FORCE)"
fi
if [[ "$(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'")" != 1 ]]; then
  say "creating the database $DATABASE"
  psql_admin -c "CREATE DATABASE $DATABASE OWNER $ROLE"
fi

echo "$URL" >&3
