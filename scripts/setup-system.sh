#!/usr/bin/env bash
# Installs the Debian packages platformdb needs for the machine's PostgreSQL major version
# (server, PostGIS, pg_cron) and chromium for the dashboard's browser test, only those
# missing. Idempotent. Uses sudo when not root.
set -euo pipefail

if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

detect_major() {
    if command -v pg_config >/dev/null 2>&1; then
        pg_config --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/'
        return
    fi
    local d
    d=$(ls -1d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$d" ]; then basename "$(dirname "$d")"; return; fi
    echo 15
}

major=$(detect_major)
want=("postgresql-$major" "postgresql-contrib" "postgresql-$major-postgis-3" "postgresql-$major-cron" "postgresql-client-$major")
# PgBouncer in transaction mode stands in for Supabase's transaction pooler in the tests
want+=("pgbouncer")
# the dashboard's browser test drives Debian's chromium (headless) through Playwright
want+=("chromium")
missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# pg_dump/pg_restore and python venv support are needed too.
python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=("python3-venv")

if [ ${#missing[@]} -eq 0 ]; then
    echo "setup-system: PostgreSQL $major with PostGIS and pg_cron, pgbouncer and chromium, already installed"
    exit 0
fi
echo "setup-system: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
