"""Queue throughput and crash recovery, side by side with Procrastinate on one PostgreSQL.

Targets (issue 7): ≥ 10,000 messages/s end to end with batching and ≥ 10× Procrastinate
doing the same no-op work; a message held by a worker killed with SIGKILL is processed by
another worker within lease + 2 s.

What each figure includes:
- `platformdb_per_s_<n>w`: n `platformdb worker` processes (concurrency 4, claims of 100,
  acks batched per claim) drain a queue fed by one producer calling `enqueue_messages`
  with 1000 messages per call. Clock: from the first enqueue until the last message is
  completed (acked), so enqueue, NOTIFY wake-up, claim, handler dispatch and ack all count.
- `procrastinate_per_s_<n>w`: n `procrastinate worker` processes (concurrency 4, its
  LISTEN/NOTIFY on) drain a queue fed by `batch_defer` with 1000 jobs per call, with an
  async no-op task. Same clock: first defer to last job succeeded. Its schema lives in a
  second database of the same cluster.
- `sigkill_to_processed_s`: a worker holding a message (lease `LEASE` s, kept alive by its
  lease extension) is killed with SIGKILL; the figure is the time until a second, idle
  worker has processed it. `lease_left_at_kill_s` is what remained of the lease then.

Sizes are small on purpose (seconds per phase): BENCH_MESSAGES, BENCH_PROCRASTINATE_JOBS.
"""

# This file must be named like the standard library's `queue`, which psycopg imports. Every
# script run from bench/ has this folder first on sys.path, so that import finds this file:
# when imported (rather than run), it becomes the standard library's module. The bench
# itself lives in queue_bench.py.
if __name__ == "__main__":
    from queue_bench import main

    main()
else:
    import importlib.util
    import sys
    import sysconfig
    from pathlib import Path

    _spec = importlib.util.spec_from_file_location("queue", Path(sysconfig.get_paths()["stdlib"]) / "queue.py")
    assert _spec is not None and _spec.loader is not None
    _stdlib_queue = importlib.util.module_from_spec(_spec)
    sys.modules["queue"] = _stdlib_queue
    _spec.loader.exec_module(_stdlib_queue)
    globals().update({k: v for k, v in vars(_stdlib_queue).items() if not k.startswith("__")})
