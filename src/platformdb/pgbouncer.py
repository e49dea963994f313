"""A local PgBouncer in front of a cluster (tests, benchmarks, the pooler smoke run).

It stands in for Supabase's transaction pooler (Supavisor, port 6543): `pool_mode =
transaction`, so consecutive transactions of one client may run on different server
sessions and the server sessions are shared by all clients. Debian's `pgbouncer` package
provides the binary (scripts/setup-system.sh installs it).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from platformdb import devdb

CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


class PgBouncerError(RuntimeError):
    pass


def find_binary() -> str | None:
    found = shutil.which("pgbouncer")
    if found:
        return found
    for c in CANDIDATES:
        if Path(c).exists():
            return c
    return None


@dataclass
class PgBouncer:
    """One PgBouncer process in a private folder; `url(db)` reaches `db` through it."""

    server_port: int
    pool_size: int = 4
    pool_mode: str = "transaction"
    user: str = devdb.SUPERUSER
    max_client_conn: int = 500
    port: int = 0
    base: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="platformdb-pgbouncer-")))
    process: subprocess.Popen[bytes] | None = None

    def url(self, dbname: str = devdb.DEFAULT_DB) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{dbname}"

    def url_for(self, server_url: str) -> str:
        """The same database as `server_url` (a URL of the cluster), through PgBouncer."""
        return self.url(server_url.rsplit("/", 1)[1].split("?", 1)[0])

    @property
    def logfile(self) -> Path:
        return self.base / "pgbouncer.log"

    def write_config(self) -> Path:
        if not self.port:
            self.port = devdb.free_port()
        (self.base / "userlist.txt").write_text(f'"{self.user}" ""\n')
        ini = self.base / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"* = host=127.0.0.1 port={self.server_port}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {self.base}\n"
            "auth_type = trust\n"
            f"auth_file = {self.base / 'userlist.txt'}\n"
            f"pool_mode = {self.pool_mode}\n"
            f"default_pool_size = {self.pool_size}\n"
            "min_pool_size = 0\n"
            "reserve_pool_size = 0\n"
            f"max_client_conn = {self.max_client_conn}\n"
            "max_db_connections = 0\n"
            "server_reset_query =\n"
            "server_check_delay = 0\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.logfile}\n"
            f"pidfile = {self.base / 'pgbouncer.pid'}\n"
            "log_connections = 0\n"
            "log_disconnections = 0\n"
            "admin_users = " + self.user + "\n"
        )
        return ini

    def start(self, timeout: float = 20.0) -> PgBouncer:
        binary = find_binary()
        if binary is None:
            raise PgBouncerError("pgbouncer is not installed (Debian package `pgbouncer`; run `make setup`)")
        ini = self.write_config()
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            os.chmod(self.base, 0o755)  # noqa: S103 - a throw-away folder, nothing secret in it
            devdb._chown_postgres(self.base)
            for f in self.base.iterdir():
                devdb._chown_postgres(f)
        cmd = devdb._as_postgres([binary, "-q", str(ini)])
        self.process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # noqa: S603
        deadline = time.monotonic() + timeout
        while not devdb.port_in_use(self.port):
            if self.process.poll() is not None:
                err = (self.process.stderr.read() if self.process.stderr else b"").decode(errors="replace")
                log = self.logfile.read_text(errors="replace") if self.logfile.exists() else ""
                raise PgBouncerError(f"pgbouncer exited: {err.strip()} {log.strip()[-2000:]}")
            if time.monotonic() > deadline:
                self.stop()
                raise PgBouncerError(f"pgbouncer did not listen on port {self.port} within {timeout}s")
            time.sleep(0.05)
        return self

    def _daemon_pid(self) -> int | None:
        """pgbouncer's own pid (its pidfile), when it is still that pgbouncer."""
        try:
            pid = int((self.base / "pgbouncer.pid").read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if b"pgbouncer" in cmdline else None

    def stop(self) -> None:
        p = self.process
        if p is None:
            return
        # as root, `p` is runuser, which does not pass SIGINT on: signal pgbouncer itself too
        daemon = self._daemon_pid()
        if p.poll() is None:
            for pid in [p.pid] if daemon is None else [p.pid, daemon]:
                try:
                    os.kill(pid, signal.SIGINT)  # immediate shutdown
                except ProcessLookupError:
                    pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        deadline = time.monotonic() + 5
        while daemon is not None and self._daemon_pid() == daemon:
            if time.monotonic() > deadline:
                os.kill(daemon, signal.SIGKILL)
                break
            time.sleep(0.05)
        self.process = None

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PgBouncer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
