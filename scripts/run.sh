#!/usr/bin/env bash
# Runs the service on the embedded default store (SQLite under ./var/, or LEDGER_DATABASE_URL).
# Loads the demo deployment when the store has none (arguments go to `ledger demo`), then
# serves the HTTP API (LEDGER_HOST, LEDGER_PORT; default http://127.0.0.1:8000).
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh

ensure_venv
case "${LEDGER_DATABASE_URL:-sqlite}" in
    postgres*) ensure_postgres ;;
esac

# `ledger summary` fails (exit 1) on a store without a deployment: load the demo then.
# Without arguments a quarter of a county (~25,000 members, about a minute); pass `--scale 1`
# for the whole county (~100,000 members, several minutes).
if [ "$#" -eq 0 ]; then
    set -- --scale 0.25
fi
if ! .venv/bin/ledger summary >/dev/null 2>&1; then
    .venv/bin/ledger demo --size county "$@"
fi

echo "Mint a token for the API with: .venv/bin/ledger token create --role admin [--pii]" >&2
echo "The auditors' console is http://${LEDGER_HOST:-127.0.0.1}:${LEDGER_PORT:-8000}/ (sign in" \
     "with a token, e.g. .venv/bin/ledger token create --role auditor)" >&2
exec .venv/bin/ledger serve
