#!/usr/bin/env bash
# Runs every test: the whole workspace on SQLite, then the store and server suites again on PostgreSQL
# (127.0.0.1:5432, user postgres; each test creates and drops its own database). Installs Huawei's
# Python SDK into .venv first, for the signer cross-check.
set -euo pipefail
cd "$(dirname "$0")/.."

pg_url="${KOOGATE_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
if ! pg_isready -d "$pg_url/postgres" -q 2>/dev/null; then
  echo "PostgreSQL is not answering at $pg_url (set KOOGATE_TEST_PG_URL to point elsewhere)" >&2
  exit 1
fi

# Huawei's official Python SDK, for the cross-check of the AK/SK signer (crates/protocol/tests/suite).
make_venv() {
  rm -rf .venv &&
    python3 -m venv .venv &&
    .venv/bin/pip install --quiet --disable-pip-version-check "huaweicloudsdkcore==3.1.219"
}
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import huaweicloudsdkcore" 2>/dev/null; then
  # One retry: creating a virtual environment has been seen to fail once on a busy machine.
  make_venv || { sleep 2; make_venv; }
fi
export KOOGATE_TEST_PYTHON="$PWD/.venv/bin/python"

echo "== tests on SQLite"
cargo test --workspace --locked

echo "== store and server tests on PostgreSQL"
KOOGATE_TEST_BACKEND=postgres cargo test --locked -p koogate-store -p koogate-server
