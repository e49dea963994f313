"""The embedded PostgreSQL: a private cluster built from the machine's PostgreSQL binaries.

`platformdb dev up` creates it under `.platformdb/` (or, when run as root and the `postgres`
OS user cannot enter the checkout, under `/var/lib/platformdb/clusters/<hash>/`), starts it on
127.0.0.1 with a free port, preloads pg_cron and pg_stat_statements, creates the `platform`
database and migrates it. The test suite uses the same class with throw-away settings.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

DEFAULT_DB = "platform"
SUPERUSER = "postgres"


class DevDBError(RuntimeError):
    """The embedded cluster could not be created, started or reached."""


def find_bindir() -> Path:
    """Locate the PostgreSQL server binaries (pg_config first, then /usr/lib/postgresql/*)."""
    env = os.environ.get("PLATFORMDB_PG_BINDIR")
    candidates: list[Path] = [Path(env)] if env else []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0:
            candidates.append(Path(out.stdout.strip()))
    versions = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in versions]
    for c in candidates:
        if (c / "initdb").exists() and (c / "pg_ctl").exists():
            return c
    raise DevDBError(
        "PostgreSQL server binaries not found (no initdb via pg_config or /usr/lib/postgresql/*/bin);"
        " run `make setup` to install them"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _is_root() -> bool:
    return os.geteuid() == 0


def _as_postgres(cmd: list[str]) -> list[str]:
    """Prefix a command so that it runs as the postgres OS user when we are root."""
    if not _is_root():
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _postgres_can_use(path: Path) -> bool:
    """True when the postgres OS user can traverse into `path` (needed when we are root)."""
    probe = subprocess.run(
        _as_postgres(["test", "-x", str(path)]), capture_output=True, check=False
    )
    return probe.returncode == 0


def _chown_postgres(path: Path) -> None:
    if _is_root():
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


@dataclass
class Cluster:
    """A private PostgreSQL cluster: where its files are, which port, which binaries."""

    datadir: Path
    port: int
    bindir: Path
    ephemeral: bool = False  # test clusters: fsync off, no durability
    settings: dict[str, str] = field(default_factory=dict)

    # ---- paths and urls -------------------------------------------------------------
    @property
    def logfile(self) -> Path:
        return self.datadir.parent / "postgresql.log"

    def url(self, dbname: str = DEFAULT_DB) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def _bin(self, name: str) -> str:
        return str(self.bindir / name)

    # ---- lifecycle ------------------------------------------------------------------
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def running(self) -> bool:
        if not self.initialized():
            return False
        r = subprocess.run(
            _as_postgres([self._bin("pg_ctl"), "status", "-D", str(self.datadir)]),
            capture_output=True,
            check=False,
        )
        return r.returncode == 0

    def init(self) -> None:
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        _chown_postgres(self.datadir.parent)
        # the postgres OS user must traverse it; the data dir inside is 0700 (initdb)
        os.chmod(self.datadir.parent, 0o755)  # noqa: S103
        r = subprocess.run(
            _as_postgres(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.datadir),
                    "-U",
                    SUPERUSER,
                    "-A",
                    "trust",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-sync",
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            raise DevDBError(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")
        self.write_config()

    def available_preloads(self) -> list[str]:
        libdir = self.bindir.parent / "lib"
        return [lib for lib in ("pg_cron", "pg_stat_statements") if (libdir / f"{lib}.so").exists()]

    def write_config(self) -> None:
        conf = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.datadir.parent}'",
            "max_connections": "300",
            "shared_buffers": "256MB",
            "shared_preload_libraries": "'" + ",".join(self.available_preloads()) + "'",
            "cron.database_name": f"'{DEFAULT_DB}'",
            "pg_stat_statements.track": "'all'",
            "max_locks_per_transaction": "256",
            "log_min_messages": "warning",
            "log_line_prefix": "'%m [%p] %q%u@%d '",
            "timezone": "'UTC'",
        }
        if self.ephemeral:
            conf.update(
                {
                    "fsync": "off",
                    "synchronous_commit": "off",
                    "full_page_writes": "off",
                    "wal_level": "minimal",
                    "max_wal_senders": "0",
                    "checkpoint_timeout": "30min",
                    "max_wal_size": "4GB",
                }
            )
        conf.update(self.settings)
        body = "# written by platformdb; edits are overwritten by `platformdb dev up`\n"
        body += "".join(f"{k} = {v}\n" for k, v in conf.items())
        target = self.datadir / "platformdb.conf"
        main_conf = self.datadir / "postgresql.conf"
        self._write_as_postgres(target, body)
        include = "include_if_exists = 'platformdb.conf'\n"
        current = main_conf.read_text()
        if include not in current:
            self._write_as_postgres(main_conf, current + "\n" + include)

    def _write_as_postgres(self, path: Path, text: str) -> None:
        path.write_text(text)
        _chown_postgres(path)

    def start(self, timeout: float = 60) -> None:
        if self.running():
            return
        if port_in_use(self.port):
            raise DevDBError(f"port {self.port} is taken by another process")
        self.logfile.touch(exist_ok=True)
        _chown_postgres(self.logfile)
        r = subprocess.run(
            _as_postgres(
                [
                    self._bin("pg_ctl"),
                    "start",
                    "-D",
                    str(self.datadir),
                    "-l",
                    str(self.logfile),
                    "-w",
                    "-t",
                    str(int(timeout)),
                ]
            ),
            capture_output=True,
            text=True,
            check=False,
        )
        if r.returncode != 0:
            tail = self.logfile.read_text()[-2000:] if self.logfile.exists() else ""
            raise DevDBError(f"pg_ctl start failed: {r.stderr.strip()}\n{tail}")
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = subprocess.run(
                [self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                capture_output=True,
                check=False,
            )
            if r.returncode == 0:
                return
            time.sleep(0.1)
        raise DevDBError(f"PostgreSQL on port {self.port} not ready after {timeout}s")

    def stop(self, mode: str = "fast") -> None:
        if not self.running():
            return
        subprocess.run(
            _as_postgres([self._bin("pg_ctl"), "stop", "-D", str(self.datadir), "-m", mode, "-w"]),
            capture_output=True,
            check=False,
        )

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.datadir.parent, ignore_errors=True)

    def create_database(self, dbname: str, template: str | None = None) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "select 1 from pg_database where datname = %s", (dbname,)
            ).fetchone()
            if exists:
                return
            stmt = sql.SQL("create database {}").format(sql.Identifier(dbname))
            if template:
                stmt = sql.SQL("create database {} template {}").format(
                    sql.Identifier(dbname), sql.Identifier(template)
                )
            conn.execute(stmt)


# ---- the project's dev cluster ------------------------------------------------------


@dataclass
class DevState:
    datadir: str
    port: int
    bindir: str

    def cluster(self) -> Cluster:
        return Cluster(Path(self.datadir), self.port, Path(self.bindir))


def home() -> Path:
    """The project's state folder: $PLATFORMDB_HOME or ./.platformdb."""
    return Path(os.environ.get("PLATFORMDB_HOME", Path.cwd() / ".platformdb")).resolve()


def _state_file() -> Path:
    return home() / "cluster.json"


def load_state() -> DevState | None:
    f = _state_file()
    if not f.exists():
        return None
    return DevState(**json.loads(f.read_text()))


def _save_state(state: DevState) -> None:
    home().mkdir(parents=True, exist_ok=True)
    _state_file().write_text(json.dumps(asdict(state), indent=2) + "\n")


def _choose_datadir() -> Path:
    base = home()
    base.mkdir(parents=True, exist_ok=True)
    if not _is_root() or _postgres_can_use(base):
        return base / "cluster" / "data"
    digest = hashlib.sha256(str(base).encode()).hexdigest()[:12]
    return Path("/var/lib/platformdb/clusters") / digest / "data"


def dev_cluster() -> Cluster | None:
    state = load_state()
    return state.cluster() if state else None


def dev_url() -> str | None:
    c = dev_cluster()
    return c.url() if c else None


def dev_up(migrate: bool = True, progress: object = None) -> Cluster:
    """Create (first time), start and migrate the dev cluster; idempotent."""
    state = load_state()
    if state is None or not Path(state.datadir, "PG_VERSION").exists():
        datadir = _choose_datadir()
        bindir = find_bindir()
        cluster = Cluster(datadir, free_port(), bindir)
        if datadir.exists() and not cluster.initialized():
            shutil.rmtree(datadir)
        if not cluster.initialized():
            cluster.init()
        _save_state(DevState(str(datadir), cluster.port, str(bindir)))
    else:
        cluster = state.cluster()
        if not cluster.running() and port_in_use(cluster.port):
            cluster.port = free_port()
            _save_state(DevState(str(cluster.datadir), cluster.port, str(cluster.bindir)))
        cluster.write_config()
    cluster.start()
    cluster.create_database(DEFAULT_DB)
    if migrate:
        from platformdb import migrate as migrate_mod

        migrate_mod.up(cluster.url())
    return cluster


def dev_down() -> bool:
    c = dev_cluster()
    if c is None:
        return False
    c.stop()
    return True


def dev_reset() -> Cluster:
    c = dev_cluster()
    if c is not None:
        c.destroy()
    f = _state_file()
    if f.exists():
        f.unlink()
    return dev_up()


def ephemeral_cluster(prefix: str = "platformdb-test-") -> Cluster:
    """A throw-away cluster in a fresh temporary folder (used by tests and benchmarks)."""
    # mkdtemp: unique, created 0700 by us; opened to 0755 so the postgres OS user can enter
    base = Path(tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("PLATFORMDB_TMP")))
    os.chmod(base, 0o755)  # noqa: S103
    _chown_postgres(base)
    cluster = Cluster(base / "data", free_port(), find_bindir(), ephemeral=True)
    cluster.init()
    cluster.start()
    return cluster
