// Inserts BENCH_JOBS jobs into queue "bench" in batches of BENCH_BATCH (boss.insert);
// prints "T0 <epoch ms>" taken just before the first insert. BENCH_MIGRATE=1: install the
// schema and create the queue (notify on) only.
import { PgBoss } from "pg-boss";

const boss = new PgBoss({ connectionString: process.env.BENCH_URL, schedule: false, supervise: false });
boss.on("error", (e) => console.error(e));
await boss.start();
if (process.env.BENCH_MIGRATE === "1") {
  await boss.createQueue("bench", { notify: true });
} else {
  const jobs = Number(process.env.BENCH_JOBS || "20000");
  const size = Number(process.env.BENCH_BATCH || "1000");
  const batch = Array.from({ length: size }, (_, i) => ({ data: { n: i } }));
  const t0 = Date.now();
  for (let done = 0; done < jobs; done += size) {
    await boss.insert("bench", done + size <= jobs ? batch : batch.slice(0, jobs - done));
  }
  console.log(`T0 ${t0}`);
}
await boss.stop({ graceful: false, wait: true });
