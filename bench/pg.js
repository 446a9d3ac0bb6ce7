// npm run bench: bare pg and the query builders vs + querytrail vs + the OTel contrib instrumentations.
// Each round runs every variant once, in a shuffled order, each in a fresh process; medians over rounds.
// QT_BENCH_WORKLOADS="kysely PK lookup,PK lookup" runs only the workloads named (all concurrencies).
const { execFileSync } = require('node:child_process');
const path = require('node:path');

const ROUNDS = Number(process.env.QT_BENCH_ROUNDS ?? 5);
const QUERIES = Number(process.env.QT_BENCH_QUERIES ?? 10000);
const WARMUP = Number(process.env.QT_BENCH_WARMUP ?? 3000);
// QT_BENCH_BASELINE=<another checkout's dist/src/index.js> adds `querytrail (baseline)`: a refactor measured
// against the code it replaces, interleaved in the same run.
const VARIANTS = ['bare', 'querytrail', 'OTel contrib', 'querytrail (lean)'];
if (process.env.QT_BENCH_BASELINE) VARIANTS.push('querytrail (baseline)');
const ALL_WORKLOADS = [
  'SELECT 1',
  'PK lookup',
  'knex PK lookup',
  'drizzle PK lookup',
  'kysely PK lookup',
  'sequelize PK lookup',
  'typeorm PK lookup',
  'prisma PK lookup',
].flatMap((name) => [1, 8].map((concurrency) => ({ name, concurrency })));
const chosen = process.env.QT_BENCH_WORKLOADS?.split(',').map((name) => name.trim());
const WORKLOADS = chosen ? ALL_WORKLOADS.filter((w) => chosen.includes(w.name)) : ALL_WORKLOADS;
if (WORKLOADS.length === 0)
  throw new Error(`QT_BENCH_WORKLOADS names none of: ${[...new Set(ALL_WORKLOADS.map((w) => w.name))].join(', ')}`);

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const shuffle = (xs) =>
  xs
    .map((x) => [Math.random(), x])
    .sort((a, b) => a[0] - b[0])
    .map(([, x]) => x);

async function serverUrl() {
  if (process.env.QT_BENCH_URL) return { url: process.env.QT_BENCH_URL, stop: async () => {} };
  const { startTopology } = await import('../test/support/topology.mjs');
  const { topology, stop } = await startTopology();
  return { url: topology.primary, stop, source: topology.primarySource };
}

async function main() {
  const { url, stop, source } = await serverUrl();
  console.log(
    `querytrail bench: ${ROUNDS} rounds × ${QUERIES} queries per workload, pg.Pool max 4, server ${source ?? url}`,
  );
  const samples = {};
  for (let round = 1; round <= ROUNDS; round++) {
    for (const variant of shuffle(VARIANTS)) {
      const out = execFileSync(
        process.execPath,
        [
          path.join(__dirname, 'pg-worker.js'),
          JSON.stringify({ variant, workloads: WORKLOADS, queries: QUERIES, warmup: WARMUP }),
        ],
        {
          env: { ...process.env, QT_BENCH_URL: url },
        },
      );
      for (const [workload, r] of Object.entries(JSON.parse(out))) {
        ((samples[workload] ??= {})[variant] ??= []).push(r);
      }
    }
    process.stdout.write(`round ${round}/${ROUNDS} done\n`);
  }
  await stop();
  for (const [workload, byVariant] of Object.entries(samples)) {
    const m = Object.fromEntries(
      Object.entries(byVariant).map(([v, rs]) => [
        v,
        { wall: median(rs.map((r) => r.wallUs)), cpu: median(rs.map((r) => r.cpuUs)) },
      ]),
    );
    const bare = m.bare;
    console.log(`\n${workload}`);
    console.log('  variant                     µs/query  ratio   CPU µs/query  added CPU µs');
    for (const v of VARIANTS) {
      const r = m[v];
      console.log(
        `  ${v.padEnd(26)} ${r.wall.toFixed(1).padStart(9)} ${(r.wall / bare.wall).toFixed(2).padStart(6)} ${r.cpu.toFixed(1).padStart(13)} ${(r.cpu - bare.cpu).toFixed(1).padStart(13)}`,
      );
    }
    const qt = m.querytrail.cpu - bare.cpu;
    const otel = m['OTel contrib'].cpu - bare.cpu;
    console.log(`  querytrail adds ${(qt / otel).toFixed(2)}× the CPU the OTel contrib instrumentation adds`);
    if (m['querytrail (baseline)']) {
      const baseline = m['querytrail (baseline)'].cpu - bare.cpu;
      console.log(`  querytrail adds ${(qt / baseline).toFixed(2)}× the CPU its baseline adds`);
    }
  }
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
