"""WhatsApp outbound throughput, side by side in one run:

1. the SQL path alone: enqueue → claim (batches of 100) → mark sent, through the SQL
   functions as service_role, (a) one call per round trip and (b) pipelined;
2. the sender end to end: the same messages claimed, POSTed to a local server playing the
   Graph API (rate limit lifted) and marked sent.

Target (issue 4): the SQL path at ≥ 2,000 messages/s on this machine. The sender's figure
is bounded by HTTP in this Python process; their ratio shows where the time goes.

    .venv/bin/python bench/whatsapp.py [--messages 5000] [--sender-messages 2000]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from typing import Any

import psycopg

from _common import database, rate, write_result
from platformdb.sdk import whatsapp as wa
from platformdb.whatsapp_cloud.graph_stub import GraphStub
from platformdb.whatsapp_cloud.sender import SenderConfig, WhatsAppSender

ENQUEUE = """select public.enqueue_whatsapp_message(p_recipient_phone => %s, p_message_type => 'text',
    p_message_payload => %s::jsonb)"""
MARK_SENT = "select public.mark_whatsapp_message_sent(p_message_id => %s, p_whatsapp_message_id => %s)"


def _service(url: str) -> psycopg.Connection[Any]:
    conn = psycopg.connect(url, autocommit=True)
    conn.execute("select set_config('role', 'service_role', false)")
    return conn


def _phone(i: int) -> str:
    return f"+2507{8 + i % 2}{i % 10_000_000:07d}"


RAW_ENQUEUE = """insert into public.whatsapp_message_queue (recipient_phone, message_type, payload)
    values (%s, 'text', %s::jsonb)"""
RAW_CLAIM = """with c as (select id from public.whatsapp_message_queue where status = 'pending'
    order by priority, scheduled_at, id limit 100 for update skip locked)
    update public.whatsapp_message_queue q set status = 'processing', attempt = attempt + 1,
           locked_until = now() + interval '60 seconds'
      from c where q.id = c.id returning q.id"""
RAW_MARK = """update public.whatsapp_message_queue set status = 'sent', whatsapp_message_id = %s,
    sent_at = now(), locked_until = null where id = %s"""


def _run_client(url: str, phones: list[str], pipelined: bool, raw: bool, done: list[int]) -> None:
    """Enqueue these messages, then claim and mark sent until the queue is empty."""
    enqueue = RAW_ENQUEUE if raw else ENQUEUE
    params = [(p, json.dumps({"body": f"Your driver is on the way ({p})"})) for p in phones]
    with _service(url) as conn:
        if pipelined:
            with conn.pipeline(), conn.cursor() as cur:
                cur.executemany(enqueue, params)
        else:
            for p in params:
                conn.execute(enqueue, p)
        while True:
            if raw:
                ids = [r[0] for r in conn.execute(RAW_CLAIM).fetchall()]
                marks = [(f"wamid.bench-{i}", i) for i in ids]
                mark = RAW_MARK
            else:
                ids = [m.id for m in wa.claim_messages(conn, limit=100, lease_seconds=60, worker_id="bench")]
                marks = [(i, f"wamid.bench-{i}") for i in ids]
                mark = MARK_SENT
            if not ids:
                return
            if pipelined:
                with conn.pipeline(), conn.cursor() as cur:
                    cur.executemany(mark, marks)
            else:
                for m in marks:
                    conn.execute(mark, m)
            done.append(len(ids))


def sql_path(url: str, n: int, *, pipelined: bool, clients: int = 1, raw: bool = False) -> dict[str, Any]:
    """enqueue → claim → mark sent for n messages spread over `clients` connections."""
    phones = [_phone(i) for i in range(n)]
    done: list[int] = []
    threads = [
        threading.Thread(target=_run_client, args=(url, phones[k::clients], pipelined, raw, done))
        for k in range(clients)
    ]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    with psycopg.connect(url, autocommit=True) as conn:  # the owner clears the table
        sent = conn.execute("select count(*) from public.whatsapp_message_queue where status = 'sent'").fetchone()
        conn.execute("delete from public.whatsapp_message_queue")
    assert sent == (n,) and sum(done) == n, (sent, sum(done), n)
    return {"messages": n, "clients": clients, "per_s": round(rate(n, elapsed))}


def sender_path(url: str, n: int) -> dict[str, float]:
    with _service(url) as conn:
        with conn.pipeline(), conn.cursor() as cur:
            cur.executemany(ENQUEUE, [(_phone(i), json.dumps({"body": f"m{i}"})) for i in range(n)])
    with GraphStub() as stub:
        config = SenderConfig(
            database_url=url,
            access_token=stub.token,
            phone_number_id=stub.phone_number_id,
            graph_url=stub.base_url,
            rate_per_second=None,
            batch_size=200,
            max_in_flight=16,
        )
        sender = WhatsAppSender(config)
        t0 = time.perf_counter()
        claimed = sender.drain()
        t1 = time.perf_counter()
        assert claimed == n and sender.stats["sent"] == n, (claimed, dict(sender.stats))
        assert len(stub.requests) == n
    return {"messages": n, "sent_per_s": round(rate(n, t1 - t0))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=5000)
    ap.add_argument("--sender-messages", type=int, default=2000)
    ap.add_argument("--clients", type=int, default=2, help="connections for the concurrent figures")
    args = ap.parse_args()
    n, k = args.messages, args.clients
    with database() as url:
        sql_path(url, 500, pipelined=True)  # warm-up
        figures: dict[str, Any] = {
            "sql_one_call_per_round_trip": sql_path(url, n, pipelined=False),
            "sql_pipelined": sql_path(url, n, pipelined=True),
            "sql_pipelined_concurrent": sql_path(url, n, pipelined=True, clients=k),
            "peer_plain_statements_pipelined_concurrent": sql_path(url, n, pipelined=True, clients=k, raw=True),
            "sender_vs_local_graph_api": sender_path(url, args.sender_messages),
        }
    best_sql = figures["sql_pipelined_concurrent"]["per_s"]
    figures["target_sql_per_s"] = 2000
    figures["functions_over_plain_statements"] = round(
        best_sql / figures["peer_plain_statements_pipelined_concurrent"]["per_s"], 3
    )
    figures["sender_over_sql_one_by_one"] = round(
        figures["sender_vs_local_graph_api"]["sent_per_s"] / figures["sql_one_call_per_round_trip"]["per_s"], 3
    )
    path = write_result("whatsapp", figures)
    print(json.dumps(figures, indent=2))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
