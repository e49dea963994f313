// A graphile-worker process for bench/node_peers.py: a no-op task, counted.
// Env: BENCH_URL, BENCH_CONCURRENCY, BENCH_LOCAL_QUEUE (> 1: its documented batching on:
// localQueue.size and completeJobBatchDelay 0). Prints "READY" once running and
// "COUNT <n>" after SIGTERM (the number of times the task ran in this process).
import { Logger, run } from "graphile-worker";

// its log goes to stderr, warnings and errors only (info would log every job)
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`${level}: ${message}`);
});

const url = process.env.BENCH_URL;
const concurrency = Number(process.env.BENCH_CONCURRENCY || "4");
const localQueue = Number(process.env.BENCH_LOCAL_QUEUE || "-1");
let count = 0;
const worker = localQueue > 1
  ? { localQueue: { size: localQueue }, completeJobBatchDelay: 0, failJobBatchDelay: 0 }
  : {};
const runner = await run({
  connectionString: url,
  concurrency,
  noHandleSignals: true,
  pollInterval: 1000,
  preset: { worker },
  logger,
  taskList: { noop: async () => { count += 1; } },
});
console.log("READY");
process.on("SIGTERM", async () => {
  await runner.stop();
  console.log(`COUNT ${count}`);
  process.exit(0);
});
