// npm run bench: bare pg and the query builders vs + querytrail vs + the OTel contrib instrumentations.
// One long-lived worker process per variant (patches are process-wide); each round runs every workload on
// every variant, the variants in a shuffled order, job after job (interleaved, so a noisy minute hits them
// all). The cost ratio is computed per round, and its median and min–max over the rounds are printed.
// QT_BENCH_WORKLOADS="kysely PK lookup,PK lookup" runs only the workloads named (all concurrencies).
const { fork } = require('node:child_process');
const path = require('node:path');

const ROUNDS = Number(process.env.QT_BENCH_ROUNDS ?? 5);
const QUERIES = Number(process.env.QT_BENCH_QUERIES ?? 10000);
const WARMUP = Number(process.env.QT_BENCH_WARMUP ?? 3000);
// QT_BENCH_BASELINE=<another checkout's dist/src/index.js> adds `querytrail (baseline)`: a refactor measured
// against the code it replaces, interleaved in the same run.
const VARIANTS = ['bare', 'querytrail', 'OTel contrib', 'querytrail (auto)'];
if (process.env.QT_BENCH_BASELINE) VARIANTS.push('querytrail (baseline)');
// QT_BENCH_PG_ALONE=1 adds querytrail's PgInstrumentation registered alone (raw pg workloads are its measure)
if (process.env.QT_BENCH_PG_ALONE) VARIANTS.push('querytrail (PgInstrumentation alone)');
// QT_BENCH_AGENT_BATCH=1 adds querytrail with the agent's span export batch (128) in place of the SDK's (512)
if (process.env.QT_BENCH_AGENT_BATCH) VARIANTS.push("querytrail (agent's export batch)");
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

/** The server: QT_BENCH_URL (its `items` table is created when missing), else the test topology's. */
async function serverUrl() {
  if (process.env.QT_BENCH_URL) {
    const pg = require('pg');
    const client = new pg.Client({ connectionString: process.env.QT_BENCH_URL });
    await client.connect();
    await client.query(
      'CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, name text NOT NULL, ' +
        "created_at timestamptz NOT NULL DEFAULT now() - interval '1 day')",
    );
    await client.query(
      "INSERT INTO items (id, name) VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma') ON CONFLICT DO NOTHING",
    );
    await client.end();
    return { url: process.env.QT_BENCH_URL, stop: async () => {} };
  }
  const { startTopology } = await import('../test/support/topology.mjs');
  const { topology, stop } = await startTopology();
  return { url: topology.primary, stop, source: topology.primarySource };
}

/** A worker per variant, answering one job at a time. */
function startWorker(variant, url) {
  const child = fork(path.join(__dirname, 'pg-worker.js'), [JSON.stringify({ variant })], {
    env: { ...process.env, QT_BENCH_URL: url },
  });
  let pending;
  child.on('message', (message) => {
    const resolve = pending;
    pending = undefined;
    if (message.error) resolve?.reject(new Error(`${variant}: ${message.error}`));
    else resolve?.resolve(message.result ?? message.ready);
  });
  const next = () => new Promise((resolve, reject) => (pending = { resolve, reject }));
  const ready = next();
  return {
    ready,
    run(job) {
      const answer = next();
      child.send(job);
      return answer;
    },
    stop: () => new Promise((resolve) => child.once('exit', resolve).send('stop')),
  };
}

const range = (xs) => `${median(xs).toFixed(2)} [${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}]`;

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
        const result = await workers[variant].run({ name, concurrency, queries: QUERIES, warmup: WARMUP });
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
    console.log('  variant                            µs/query  ratio   CPU µs/query  added CPU µs  GC µs  promoted B');
    for (const v of VARIANTS) {
      const of = (key) => median(byVariant[v].map((r) => r[key]));
      const wall = of('wallUs');
      const bareWall = median(bare.map((r) => r.wallUs));
      console.log(
        `  ${v.padEnd(33)} ${wall.toFixed(1).padStart(9)} ${(wall / bareWall).toFixed(2).padStart(6)} ${of('cpuUs').toFixed(1).padStart(13)} ${median(added(v)).toFixed(1).padStart(13)} ${of('gcUs').toFixed(1).padStart(6)} ${of('promotedBytes').toFixed(0).padStart(11)}`,
      );
    }
    const ratio = (variant, against) => added(variant).map((a, i) => a / added(against)[i]);
    console.log(
      `  querytrail / OTel contrib, added CPU per round: median [min–max] ${range(ratio('querytrail', 'OTel contrib'))}`,
    );
    console.log(`  auto / OTel contrib: ${range(ratio('querytrail (auto)', 'OTel contrib'))}`);
    if (byVariant['querytrail (PgInstrumentation alone)']) {
      const alone = range(ratio('querytrail (PgInstrumentation alone)', 'OTel contrib'));
      console.log(`  PgInstrumentation alone / OTel contrib: ${alone}`);
    }
    if (byVariant["querytrail (agent's export batch)"]) {
      const agent = range(ratio("querytrail (agent's export batch)", 'OTel contrib'));
      console.log(`  agent's export batch / OTel contrib (at the SDK's): ${agent}`);
    }
    if (byVariant['querytrail (baseline)']) {
      console.log(`  querytrail / its baseline: ${range(ratio('querytrail', 'querytrail (baseline)'))}`);
    }
  }
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
