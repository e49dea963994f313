"""create_transaction vs a plain INSERT into the same table, 4 connections, same run.

Target (issue 5): the full function (authorisation, validation, global idempotency key,
directory row, creation event) at ≥ 0.5× the plain INSERT rate.

What each figure includes:
- `plain_insert_per_s`: `INSERT INTO transactions` as the table owner. The table's own
  triggers run (state-machine entry check, directory row for global id/ref uniqueness,
  creation event): they guard every writer, so they are part of the table's cost.
- `plain_insert_without_triggers_per_s`: the same INSERT with triggers off
  (session_replication_role = replica): the bare partitioned table, for reference.
- `create_transaction_per_s`: `select create_transaction(...)` as service_role with a fresh
  idempotency key per call (the key row is written too).
- `replay_per_s`: `create_transaction` with an already-used key (the idempotent hit path).

The load comes from pgbench (a C client, 4 connections, prepared statements) so the
Python client does not compress the ratio. Phases are interleaved (insert, create, insert,
create, …) and rates summed over the rounds, to even out a noisy shared machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path

import psycopg

from _common import database, write_result
from platformdb import devdb

SECONDS = float(os.environ.get("BENCH_SECONDS", "3"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "2"))
CLIENTS = 4
REPLAY_KEYS = 1000
REPLAY_USER = "0b7e3a52-6f1c-4c0e-9d55-2a4f3c1e8b01"

SCRIPTS = {
    "plain_insert": """
\\set amt random(100, 100000)
insert into public.transactions (user_id, type, amount, currency, idempotency_key)
values (gen_random_uuid(), 'payment', :amt, 'RWF', gen_random_uuid()::text);
""",
    "create_transaction": """
\\set amt random(100, 100000)
select public.create_transaction(p_user_id => gen_random_uuid(), p_type => 'payment',
    p_amount => :amt, p_currency => 'RWF', p_idempotency_key => gen_random_uuid()::text);
""",
    "replay": f"""
\\set k random(1, {REPLAY_KEYS})
select public.create_transaction(p_user_id => '{REPLAY_USER}', p_type => 'payment',
    p_amount => 2500, p_currency => 'RWF', p_idempotency_key => 'bench-replay-' || :k);
""",
}
# per phase: extra server options for the pgbench sessions
OPTIONS = {
    "plain_insert": "",
    "plain_insert_without_triggers": "-c session_replication_role=replica",
    "create_transaction": "-c role=service_role",
    "replay": "-c role=service_role",
}
TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")


def pgbench(url: str, script: Path, options: str) -> float:
    env = dict(os.environ, PGOPTIONS=options)
    r = subprocess.run(
        [str(devdb.find_bindir() / "pgbench"), "-n", "-M", "prepared", "-c", str(CLIENTS),
         "-j", "2", "-T", str(int(SECONDS)), "-f", str(script), url],
        capture_output=True, text=True, env=env, check=False,
    )
    m = TPS.search(r.stdout)
    if r.returncode != 0 or not m:
        raise SystemExit(f"pgbench failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return float(m.group(1))


def main() -> None:
    with database() as url, tempfile.TemporaryDirectory() as tmp:
        files = {}
        for name, text in SCRIPTS.items():
            files[name] = Path(tmp) / f"{name}.sql"
            files[name].write_text(text)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "select public.create_transaction(p_user_id => %s, p_type => 'payment',"
                " p_amount => 2500, p_idempotency_key => 'bench-replay-' || k)"
                " from generate_series(1, %s) k",
                (REPLAY_USER, REPLAY_KEYS),
            )
        phases = [
            ("plain_insert", "plain_insert"),
            ("create_transaction", "create_transaction"),
            ("plain_insert_without_triggers", "plain_insert"),
            ("replay", "replay"),
        ]
        totals = {name: 0.0 for name, _ in phases}
        for _ in range(ROUNDS):
            for name, script in phases:
                totals[name] += pgbench(url, files[script], OPTIONS[name])
        with psycopg.connect(url, autocommit=True) as conn:
            made = conn.execute("select count(*) from public.transactions").fetchone()
            keys = conn.execute("select count(*) from public.transaction_idempotency_keys").fetchone()
    rates = {name: total / ROUNDS for name, total in totals.items()}
    figures = {
        "connections": CLIENTS,
        "seconds_per_phase": SECONDS,
        "rounds": ROUNDS,
        "plain_insert_per_s": round(rates["plain_insert"]),
        "plain_insert_without_triggers_per_s": round(rates["plain_insert_without_triggers"]),
        "create_transaction_per_s": round(rates["create_transaction"]),
        "replay_per_s": round(rates["replay"]),
        "ratio_create_vs_plain_insert": round(rates["create_transaction"] / rates["plain_insert"], 2),
        "ratio_create_vs_insert_without_triggers": round(
            rates["create_transaction"] / rates["plain_insert_without_triggers"], 2
        ),
        "target_ratio_create_vs_plain_insert": 0.5,
        "transactions_written": made[0] if made else 0,
        "idempotency_keys_written": keys[0] if keys else 0,
    }
    for k, v in figures.items():
        print(f"{k:42} {v:>12,}" if isinstance(v, int) else f"{k:42} {v:>12}")
    write_result("payments", figures)


if __name__ == "__main__":
    main()
