// A pg-boss process for bench/node_peers.py: a no-op batch handler, counted.
// Env: BENCH_URL, BENCH_CONCURRENCY (localConcurrency), BENCH_BATCH_SIZE (batchSize).
// Burst on (burstWhenBatchFull), LISTEN/NOTIFY on, the shortest polling interval (0.5 s).
// Prints "READY" once working and "COUNT <n>" after SIGTERM.
import { PgBoss } from "pg-boss";

const boss = new PgBoss({
  connectionString: process.env.BENCH_URL,
  schedule: false,
  supervise: false,
  migrate: false,
  useListenNotify: true,
});
boss.on("error", (e) => console.error(e));
await boss.start();
let count = 0;
await boss.work(
  "bench",
  {
    batchSize: Number(process.env.BENCH_BATCH_SIZE || "100"),
    localConcurrency: Number(process.env.BENCH_CONCURRENCY || "4"),
    burstWhenBatchFull: true,
    pollingIntervalSeconds: 0.5,
  },
  async (jobs) => { count += jobs.length; },
);
console.log("READY");
process.on("SIGTERM", async () => {
  await boss.stop({ graceful: true, wait: true, timeout: 20000 });
  console.log(`COUNT ${count}`);
  process.exit(0);
});
