#!/usr/bin/env bash
# Runs every test: the whole workspace on SQLite, then the store and server suites again on PostgreSQL
# (127.0.0.1:5432, user postgres; each test creates and drops its own database).
set -euo pipefail
cd "$(dirname "$0")/.."

pg_url="${KOOGATE_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
if ! pg_isready -d "$pg_url/postgres" -q 2>/dev/null; then
  echo "PostgreSQL is not answering at $pg_url (set KOOGATE_TEST_PG_URL to point elsewhere)" >&2
  exit 1
fi

echo "== tests on SQLite"
cargo test --workspace --locked

echo "== store and server tests on PostgreSQL"
KOOGATE_TEST_BACKEND=postgres cargo test --locked -p koogate-store -p koogate-server
