"""Where the queue's and the event store's time goes, beside pgmq's and message-db's.

`bench/peers.py --profile`: for each pair (see bench/peers.py; same cluster, fsync on, peers
from BENCH_PEERS_DIR, skipped with a message when absent) one 4-client pgbench run per side
of BENCH_PEERS_SECONDS, with pg_stat_statements (nested statements of the functions
included: time and WAL per call), pg_stat_wal (WAL bytes, records and full-page images per
transaction) and wait events sampled from pg_stat_activity every 10 ms. Writes
bench/results/peers_profile.json.
"""

from __future__ import annotations

import sys

import peers

if __name__ == "__main__":
    sys.argv.append("--profile")
    peers.PROFILE = True
    peers.main()
