#!/usr/bin/env bash
# `make citus`: makes sure the machine's PostgreSQL has the Citus extension, then runs
# scripts/citus_harness.py (coordinator + 2 workers on loopback, migrations, distribute,
# every capability's tests and the security matrix, verify, a small throughput table).
#
# Citus comes from Citus's own packages when installed (citus.so in PostgreSQL's lib dir).
# Otherwise it is built from an extracted Citus source tree given in CITUS_SRC (e.g. the
# public citusdata/citus repository at tag v13.2.2): its Debian build dependencies are
# installed first, then configure, `nice make -j2` and `make install` into the PostgreSQL
# found by platformdb (its pg_config). Nothing of Citus is copied into this repository.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi

bindir=$($PY -c 'from platformdb import devdb; print(devdb.find_bindir())')
libdir="$(dirname "$bindir")/lib"
major=$("$bindir/postgres" --version | sed -E 's/.* ([0-9]+)\..*/\1/')

if [ ! -f "$libdir/citus.so" ]; then
    if [ -z "${CITUS_SRC:-}" ] || [ ! -f "${CITUS_SRC}/configure" ]; then
        echo "citus: the Citus extension is not installed in $libdir." >&2
        echo "  Install Citus's packages, or give an extracted Citus source tree:" >&2
        echo "  make citus CITUS_SRC=/path/to/citus   (e.g. git archive v13.2.2 of citusdata/citus)" >&2
        exit 2
    fi
    deps=("postgresql-server-dev-$major" libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev
          libssl-dev libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev zlib1g-dev gcc make)
    missing=()
    for p in "${deps[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "citus: installing build dependencies ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        $SUDO apt-get update -qq
        $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
    pg_config="$bindir/pg_config"
    [ -x "$pg_config" ] || pg_config=$(command -v pg_config)
    # PostgreSQL minor releases that export have_createdb_privilege() (15.20 does) clash with
    # the static copy in Citus's pg_version_compat.h: guard the copy (once, idempotent)
    server_inc=$("$pg_config" --includedir-server)
    compat="$CITUS_SRC/src/include/pg_version_compat.h"
    if grep -q 'extern bool have_createdb_privilege' "$server_inc/commands/dbcommands.h" 2>/dev/null \
        && ! grep -q 'platformdb: exported by this minor release' "$compat"; then
        num=$("$pg_config" --version | sed -E 's/PostgreSQL ([0-9]+)\.([0-9]+).*/\1 \2/' | awk '{printf "%d%04d", $1, $2}')
        python3 - "$compat" "$num" <<'PYEOF'
import sys
path, num = sys.argv[1], sys.argv[2]
s = open(path).read()
head = "static inline bool\nhave_createdb_privilege(void)\n{"
i = s.index(head)
j = s.index("return result;\n}\n", i) + len("return result;\n}\n")
s = s[:i] + f"#if PG_VERSION_NUM < {num} /* platformdb: exported by this minor release */\n" + s[i:j] + "#endif\n" + s[j:]
open(path, "w").write(s)
PYEOF
    fi
    (
        cd "$CITUS_SRC"
        [ -f Makefile.global ] || nice -n 10 ./configure PG_CONFIG="$pg_config"
        nice -n 10 make -j2
        $SUDO make install
    )
fi

exec $PY scripts/citus_harness.py "$@"
