# Shared by scripts/test.sh and scripts/run.sh (sourced, not run): the venv and PostgreSQL.

PG_HOST=127.0.0.1
PG_PORT=5432

ensure_venv() {
    if [ ! -x .venv/bin/python ]; then
        echo "setup: creating .venv" >&2
        python3 -m venv .venv
    fi
    # Editable, so that the checkout is what runs: only a changed pyproject.toml (dependencies,
    # console scripts) needs installing again. Quiet unless something goes wrong.
    local stamp
    stamp=".venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)"
    if [ -f "$stamp" ]; then
        return 0
    fi
    echo "setup: installing the project and its test and spark extras into .venv" >&2
    if ! .venv/bin/python -m pip install --disable-pip-version-check -e ".[test,spark]" \
            > .venv/pip-install.log 2>&1; then
        cat .venv/pip-install.log >&2
        echo "setup: pip install failed (log above, also in .venv/pip-install.log)" >&2
        return 1
    fi
    rm -f .venv/.installed-*
    touch "$stamp"
}

postgres_ready() {
    .venv/bin/python - "$PG_HOST" "$PG_PORT" <<'PY'
import sys

import psycopg

try:
    psycopg.connect(f"postgresql://postgres@{sys.argv[1]}:{sys.argv[2]}/postgres",
                    connect_timeout=3).close()
except psycopg.Error:
    sys.exit(1)
PY
}

ensure_postgres() {
    if postgres_ready; then
        return 0
    fi
    echo "setup: PostgreSQL is not answering at $PG_HOST:$PG_PORT; starting the local cluster" >&2
    if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null 2>&1; then
        for version in $(ls /etc/postgresql); do
            pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
        done
    fi
    for _ in $(seq 1 30); do
        if postgres_ready; then
            return 0
        fi
        sleep 1
    done
    echo "setup: PostgreSQL is still not reachable at $PG_HOST:$PG_PORT (user postgres);" \
         "start it and try again" >&2
    return 1
}

# pyspark (the spark extra: projections/spark/) runs on a Java runtime: Debian's headless JDK
# 17 is installed with apt-get when `java` is missing.
ensure_java() {
    if command -v java >/dev/null 2>&1; then
        return 0
    fi
    echo "setup: installing a Java runtime (apt-get) for pyspark" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    if ! $sudo apt-get install -y openjdk-17-jre-headless >/dev/null 2>&1; then
        $sudo apt-get update >/dev/null
        $sudo apt-get install -y openjdk-17-jre-headless >/dev/null
    fi
    command -v java >/dev/null 2>&1 || {
        echo "setup: java could not be installed; the Spark job and its tests need it" >&2
        return 1
    }
}

# The console's browser tests (tests/api/test_console_browser.py) drive Debian's chromium
# through Playwright; Playwright's own browser download is never used (it cannot reach its
# host here). Installed with apt-get when missing.
# A Chinese font (WenQuanYi Micro Hei) comes along, so that the screenshots show the pages'
# text rather than empty boxes.
ensure_chromium() {
    if command -v chromium >/dev/null 2>&1 && fc-list :lang=zh 2>/dev/null | grep -q .; then
        return 0
    fi
    echo "setup: installing chromium and a Chinese font (apt-get) for the console's browser" \
         "tests" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    if ! $sudo apt-get install -y chromium fonts-wqy-microhei >/dev/null 2>&1; then
        $sudo apt-get update >/dev/null
        $sudo apt-get install -y chromium fonts-wqy-microhei >/dev/null
    fi
    command -v chromium >/dev/null 2>&1 || {
        echo "setup: chromium could not be installed; the browser tests need it" >&2
        return 1
    }
}
