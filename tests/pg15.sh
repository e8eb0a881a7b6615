#!/usr/bin/env bash
# Run a command against a throwaway Debian PostgreSQL 15 cluster.
#
#   tests/pg15.sh .venv/bin/pytest -m contract
#
# Starts a cluster in a temporary folder on a free loopback port, exports
# TEST_DATABASE_URL (a superuser URL) for the command, and removes the
# cluster afterwards. Debian's initdb refuses to run as root, so as root the
# server runs as the unprivileged "postgres" user the package creates.
set -euo pipefail

PGBIN=${PG15_BIN:-/usr/lib/postgresql/15/bin}
if [ ! -x "$PGBIN/postgres" ]; then
  echo "pg15.sh: SKIPPED: no PostgreSQL 15 in $PGBIN (apt-get install postgresql-15; .ci/run does)" >&2
  exit 0
fi

as_owner=()
if [ "$(id -u)" = 0 ]; then
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  as_owner=(runuser -u postgres --)
fi

dir=$(mktemp -d /tmp/sessiongate-pg15.XXXXXX)
chmod 755 "$dir"
[ ${#as_owner[@]} -gt 0 ] && chown postgres "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cleanup() {
  "${as_owner[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT

"${as_owner[@]}" "$PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust --encoding=UTF8 \
  --locale=C.UTF-8 >/dev/null
"${as_owner[@]}" "$PGBIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off" \
  start >/dev/null

export TEST_DATABASE_URL="postgresql://postgres@127.0.0.1:$port/postgres"
echo "pg15.sh: $("$PGBIN/postgres" --version) on 127.0.0.1:$port" >&2
"$@"
