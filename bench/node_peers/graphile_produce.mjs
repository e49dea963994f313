// Adds BENCH_JOBS no-op jobs in batches of BENCH_BATCH through graphile-worker's addJobs;
// prints "T0 <epoch ms>" taken just before the first add. BENCH_MIGRATE=1: install only.
import { Logger, makeWorkerUtils } from "graphile-worker";

const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") console.error(`${level}: ${message}`);
});

const url = process.env.BENCH_URL;
const jobs = Number(process.env.BENCH_JOBS || "20000");
const size = Number(process.env.BENCH_BATCH || "1000");
const utils = await makeWorkerUtils({ connectionString: url, logger });
await utils.migrate();
if (process.env.BENCH_MIGRATE !== "1") {
  const batch = Array.from({ length: size }, (_, i) => ({ identifier: "noop", payload: { n: i } }));
  const t0 = Date.now();
  for (let done = 0; done < jobs; done += size) {
    await utils.addJobs(done + size <= jobs ? batch : batch.slice(0, jobs - done));
  }
  console.log(`T0 ${t0}`);
}
await utils.release();
