// What bench/pg.js (CPU time) and bench/instructions.js (instructions counted by callgrind) share: the variants,
// the workloads, the server, and how a spread is printed.
const { fork } = require('node:child_process');
const path = require('node:path');

// QT_BENCH_BASELINE=<another checkout's dist/src/index.js> adds `querytrail (baseline)`: a refactor measured
// against the code it replaces, interleaved in the same run.
const VARIANTS = ['bare', 'querytrail', 'OTel contrib', 'querytrail (auto)'];
if (process.env.QT_BENCH_BASELINE) VARIANTS.push('querytrail (baseline)');
// QT_BENCH_PG_ALONE=1 adds querytrail's PgInstrumentation registered alone (raw pg workloads are its measure)
if (process.env.QT_BENCH_PG_ALONE) VARIANTS.push('querytrail (PgInstrumentation alone)');
// QT_BENCH_AGENT_BATCH=1 adds querytrail with the agent's span export batch (128) in place of the SDK's (512)
if (process.env.QT_BENCH_AGENT_BATCH) VARIANTS.push("querytrail (agent's export batch)");
// QT_BENCH_METRICS_API=1 adds querytrail recording durations through the metrics API, as without its producer
if (process.env.QT_BENCH_METRICS_API) VARIANTS.push('querytrail (metrics API)');
// QT_BENCH_VARIANTS="bare,querytrail,OTel contrib" keeps only the variants named (bare and contrib are needed)
const keep = process.env.QT_BENCH_VARIANTS?.split(',').map((name) => name.trim());
if (keep) VARIANTS.splice(0, VARIANTS.length, ...VARIANTS.filter((variant) => keep.includes(variant)));
if (!VARIANTS.includes('bare') || !VARIANTS.includes('OTel contrib'))
  throw new Error('QT_BENCH_VARIANTS must keep bare and OTel contrib: the ratios are computed against them');

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
// QT_BENCH_CONCURRENCY=1 runs only that concurrency
const concurrencies = process.env.QT_BENCH_CONCURRENCY?.split(',').map(Number);
// QT_BENCH_WORKLOADS="kysely PK lookup,PK lookup" runs only the workloads named (all concurrencies).
const chosen = process.env.QT_BENCH_WORKLOADS?.split(',').map((name) => name.trim());
const WORKLOADS = ALL_WORKLOADS.filter(
  (w) => (!chosen || chosen.includes(w.name)) && (!concurrencies || concurrencies.includes(w.concurrency)),
);
if (WORKLOADS.length === 0)
  throw new Error(
    `QT_BENCH_WORKLOADS and QT_BENCH_CONCURRENCY name none of: ${[...new Set(ALL_WORKLOADS.map((w) => w.name))].join(', ')}`,
  );

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const range = (xs) => `${median(xs).toFixed(2)} [${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}]`;

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

/**
 * A worker per variant (bench/pg-worker.js), answering one job at a time. `wrapper` runs it under another
 * program (valgrind): the wrapper takes node's place in the fork, and starts node with the IPC channel.
 * `nodeFlags` (node's and V8's) are QT_BENCH_NODE_FLAGS when set (space-separated; empty for none).
 */
function startWorker(variant, url, wrapper = [], nodeFlags = []) {
  const flags = (process.env.QT_BENCH_NODE_FLAGS?.split(' ') ?? nodeFlags).filter(Boolean);
  const worker = path.join(__dirname, 'pg-worker.js');
  const env = { ...process.env, QT_BENCH_URL: url };
  const args = [JSON.stringify({ variant })];
  const wrapped = () => ({ execPath: wrapper[0], execArgv: [...wrapper.slice(1), process.execPath, ...flags] });
  const child = fork(worker, args, { env, ...(wrapper.length ? wrapped() : flags.length ? { execArgv: flags } : {}) });
  let pending;
  child.on('message', (message) => {
    const resolve = pending;
    pending = undefined;
    if (message.error) resolve?.reject(new Error(`${variant}: ${message.error}`));
    else resolve?.resolve(message.result ?? message.ready);
  });
  child.on('exit', (code) => pending?.reject(new Error(`${variant}: the worker exited with ${code}`)));
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

module.exports = { VARIANTS, WORKLOADS, median, range, serverUrl, startWorker };
