#!/usr/bin/env bash
# Sets up a fresh machine and runs the whole test suite: bash scripts/test.sh [pytest args]
# Creates .venv if missing, installs the project with its test extras, makes sure PostgreSQL
# answers at 127.0.0.1:5432 (the tests use both SQLite and PostgreSQL), installs Debian's
# chromium if missing (the console's browser tests), runs ruff (lint and format) and mypy,
# then pytest.
set -euo pipefail

cd "$(dirname "$0")/.."
# shellcheck source=scripts/setup.sh
source scripts/setup.sh

ensure_venv
ensure_postgres
ensure_chromium
ensure_java

# The quick checks first: a lint or type error fails the run before the long tests start.
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

set +e
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "test.sh: pytest collected no tests; the suite must always run tests" >&2
    exit 1
fi
exit "$status"
