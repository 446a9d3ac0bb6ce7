// npm run bench: bare pg and the query builders vs + querytrail vs + the OTel contrib instrumentations.
// One long-lived worker process per variant (patches are process-wide); each round runs every workload on
// every variant, the variants in a shuffled order, job after job (interleaved, so a noisy minute hits them
// all). The cost ratio is computed per round, and its median and min–max over the rounds are printed.
// Variants and workloads: bench/common.js. bench/instructions.js counts instructions in place of CPU time.
const { VARIANTS, WORKLOADS, median, range, serverUrl, startWorker } = require('./common.js');

const ROUNDS = Number(process.env.QT_BENCH_ROUNDS ?? 5);
const QUERIES = Number(process.env.QT_BENCH_QUERIES ?? 10000);
const WARMUP = Number(process.env.QT_BENCH_WARMUP ?? 3000);
// QT_BENCH_GC=1: the GC's pauses and the bytes promoted per query, at a cost in every variant (bench/pg-worker.js)
const GC_PROFILE = Boolean(process.env.QT_BENCH_GC);

const shuffle = (xs) =>
  xs
    .map((x) => [Math.random(), x])
    .sort((a, b) => a[0] - b[0])
    .map(([, x]) => x);

async function main() {
  const { url, stop, source } = await serverUrl();
  console.log(
    `querytrail bench: ${ROUNDS} rounds × ${QUERIES} queries per workload, pg.Pool max 4, server ${source ?? url}`,
  );
  const workers = Object.fromEntries(VARIANTS.map((variant) => [variant, startWorker(variant, url)]));
  await Promise.all(Object.values(workers).map((w) => w.ready));
  const samples = {}; // workload → variant → [{ wallUs, cpuUs }] by round
  for (let round = 1; round <= ROUNDS; round++) {
    for (const { name, concurrency } of WORKLOADS) {
      const workload = `${name}, concurrency ${concurrency}`;
      for (const variant of shuffle(VARIANTS)) {
        const result = await workers[variant].run({
          name,
          concurrency,
          queries: QUERIES,
          warmup: WARMUP,
          gcProfile: GC_PROFILE,
        });
        ((samples[workload] ??= {})[variant] ??= []).push(result);
      }
    }
    process.stdout.write(`round ${round}/${ROUNDS} done\n`);
  }
  await Promise.all(Object.values(workers).map((w) => w.stop()));
  await stop();
  for (const [workload, byVariant] of Object.entries(samples)) {
    const bare = byVariant.bare;
    // per round: what each variant adds over bare in that same round
    const added = (variant) => byVariant[variant].map((r, i) => r.cpuUs - bare[i].cpuUs);
    console.log(`\n${workload}`);
    const gcColumns = GC_PROFILE ? '  GC µs  promoted B' : '';
    console.log(`  variant                            µs/query  ratio   CPU µs/query  added CPU µs${gcColumns}`);
    for (const v of VARIANTS) {
      const of = (key) => median(byVariant[v].map((r) => r[key]));
      const wall = of('wallUs');
      const bareWall = median(bare.map((r) => r.wallUs));
      const gc = GC_PROFILE
        ? ` ${of('gcUs').toFixed(1).padStart(6)} ${of('promotedBytes').toFixed(0).padStart(11)}`
        : '';
      console.log(
        `  ${v.padEnd(33)} ${wall.toFixed(1).padStart(9)} ${(wall / bareWall).toFixed(2).padStart(6)} ${of('cpuUs').toFixed(1).padStart(13)} ${median(added(v)).toFixed(1).padStart(13)}${gc}`,
      );
    }
    const ratio = (variant, against) => added(variant).map((a, i) => a / added(against)[i]);
    const against = (variant, label, of = 'OTel contrib') => {
      if (byVariant[variant] && byVariant[of]) console.log(`  ${label}: ${range(ratio(variant, of))}`);
    };
    against('querytrail', 'querytrail / OTel contrib, added CPU per round: median [min–max]');
    against('querytrail (auto)', 'auto / OTel contrib');
    against('querytrail (PgInstrumentation alone)', 'PgInstrumentation alone / OTel contrib');
    against("querytrail (agent's export batch)", "agent's export batch / OTel contrib (at the SDK's)");
    against('querytrail', 'querytrail / its baseline', 'querytrail (baseline)');
  }
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
