"""A Citus cluster on loopback for `make citus`: a coordinator and workers, each a private
PostgreSQL (free ports, data under a temporary folder), with the settings platformdb needs.

Needs the citus extension installed in the PostgreSQL found by platformdb.devdb.find_bindir()
(Citus's packages, or scripts/citus.sh building it from CITUS_SRC).

Settings (docs/scaling.md, "Settings"):
- shared_preload_libraries starts with citus (then pg_cron, pg_stat_statements);
- max_prepared_transactions > 0: writes touching several shards commit with 2PC;
- citus.propagate_set_commands = 'local': SET LOCAL (the JWT claims of a request) reaches the
  workers, where the row-level security policies of the shards run;
- citus.enable_unsafe_triggers = on: the row triggers of distributed tables run on the
  workers' shards (every one of them only checks or fills its own row; the scaling-plan
  test refuses triggers that write other tables of another co-location group).
- the API roles (anon, authenticated, service_role) may log in, on every node: Citus opens
  its connections to the workers as the current role. Authentication here is trust on
  loopback; a deployment uses pg_dist_authinfo / pg_hba (docs/scaling.md, "Roles").
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from platformdb import devdb

SETTINGS = {
    "max_prepared_transactions": "200",
    # 4 shards per distributed table (default 32): every table still spans both workers, and
    # a test run on a small machine does not pay 32 shards per statement
    "citus.shard_count": "4",
    "citus.propagate_set_commands": "'local'",
    "citus.enable_unsafe_triggers": "on",
    "citus.log_remote_commands": "off",
    "citus.max_adaptive_executor_pool_size": "4",
    "max_connections": "300",
    "shared_buffers": "128MB",
}

API_ROLES = ("anon", "authenticated", "service_role")


def citus_installed(bindir: Path | None = None) -> bool:
    bindir = bindir or devdb.find_bindir()
    return (bindir.parent / "lib" / "citus.so").exists()


@dataclass
class CitusCluster:
    coordinator: devdb.Cluster
    base: Path
    workers: list[devdb.Cluster] = field(default_factory=list)
    version: str = "?"

    @property
    def nodes(self) -> list[devdb.Cluster]:
        return [self.coordinator, *self.workers]

    def url(self) -> str:
        return self.coordinator.url()

    def destroy(self) -> None:
        for n in reversed(self.nodes):
            n.destroy()
        shutil.rmtree(self.base, ignore_errors=True)


def _node(base: Path, name: str) -> devdb.Cluster:
    root = base / name
    root.mkdir()
    os.chmod(root, 0o755)  # noqa: S103
    devdb._chown_postgres(root)
    c = devdb.Cluster(root / "data", devdb.free_port(), devdb.find_bindir(), ephemeral=True)
    preloads = ["citus", *c.available_preloads()]
    c.settings = {**SETTINGS, "shared_preload_libraries": "'" + ",".join(preloads) + "'"}
    c.init()
    c.start()
    c.create_database(devdb.DEFAULT_DB)
    with psycopg.connect(c.url(), autocommit=True) as conn:
        conn.execute("create extension if not exists citus")
        # on every node before the workers join: the location migration's CREATE EXTENSION
        # inside a DO block is refused by Citus on the workers ("operation is not allowed on
        # this node"); with PostGIS already there the migration leaves it as it is
        conn.execute("create extension if not exists postgis")
    return c


def start(workers: int = 2, progress: Callable[[str], None] = print) -> CitusCluster:
    """Start a coordinator and `workers` workers on loopback; the workers are registered."""
    if not citus_installed():
        raise devdb.DevDBError(
            "Citus is not installed in this PostgreSQL (no citus.so): install Citus's packages,"
            " or run `make citus CITUS_SRC=/path/to/citus` to build it from source"
        )
    base = Path(tempfile.mkdtemp(prefix="platformdb-citus-", dir=os.environ.get("PLATFORMDB_TMP")))
    os.chmod(base, 0o755)  # noqa: S103
    devdb._chown_postgres(base)
    coordinator = _node(base, "coordinator")
    cc = CitusCluster(coordinator, base)
    try:
        for i in range(workers):
            cc.workers.append(_node(base, f"worker{i + 1}"))
        with psycopg.connect(coordinator.url(), autocommit=True) as conn:
            conn.execute("select citus_set_coordinator_host('127.0.0.1', %s)", (coordinator.port,))
            for w in cc.workers:
                conn.execute("select citus_add_node('127.0.0.1', %s)", (w.port,))
            row = conn.execute("select citus_version()").fetchone()
            cc.version = str(row[0]).split(" on ")[0] if row else "?"
        progress(
            f"{cc.version}: coordinator 127.0.0.1:{coordinator.port}, workers "
            + ", ".join(f"127.0.0.1:{w.port}" for w in cc.workers)
        )
    except BaseException:
        cc.destroy()
        raise
    return cc


def allow_api_roles_to_connect(url: str) -> None:
    """The API roles may log in (Citus connects to the workers as the current role).

    Only for a Citus cluster: on single-node Supabase the roles stay NOLOGIN. ALTER ROLE on the
    coordinator is propagated to every worker by Citus.
    """
    with psycopg.connect(url, autocommit=True) as conn:
        for role in API_ROLES:
            conn.execute(f"alter role {role} login")
