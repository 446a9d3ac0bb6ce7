// node bench/orm-layer.js [knex|kysely] [concurrency] [rounds]: what querytrail's layer for a query builder costs
// over its pg layer, in one process against QT_BENCH_URL (its items table must exist: npm run bench creates it).
// Round by round, in a shuffled order: the builder's instrumentation disabled (pg alone), enabled with the run
// stated through the seam's `sendsNow` (as shipped: knex's runner, kysely's connection), and enabled with
// `runAs` in its place (entering a context, as before 2026-12-02). Prints the median user CPU µs per query of
// each: differences of a few µs that npm run bench's spread hides.
const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');

const drop = { export: (_items, done) => done({ code: 0 }), shutdown: async () => {}, forceFlush: async () => {} };
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(drop)] });
api.trace.setGlobalTracerProvider(tracerProvider);
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const qt = require('../dist/src/index.js');
qt.configureQuerytrail({ console: 'off' });
const [library = 'knex', concurrency = 1, rounds = 20] = process.argv.slice(2).map((a, i) => (i ? Number(a) : a));
const url = process.env.QT_BENCH_URL;
if (!url) throw new Error('QT_BENCH_URL: the server to run against (its items table must exist)');
const LIBRARIES = {
  knex: {
    Instrumentation: qt.KnexInstrumentation,
    // required after the instrumentations are registered: their hooks patch it as it loads
    open: () => {
      const db = require('knex')({ client: 'pg', connection: url, pool: { min: 4, max: 4 } });
      const run = (i) =>
        db('items')
          .select('id', 'name')
          .where('id', (i % 3) + 1);
      return { run, close: () => db.destroy() };
    },
  },
  kysely: {
    Instrumentation: qt.KyselyInstrumentation,
    open: () => {
      const { Kysely, PostgresDialect } = require('kysely');
      const pool = new (require('pg').Pool)({ connectionString: url, max: 4 });
      const db = new Kysely({ dialect: new PostgresDialect({ pool }) });
      const run = (i) =>
        db
          .selectFrom('items')
          .select(['id', 'name'])
          .where('id', '=', (i % 3) + 1)
          .execute();
      return { run, close: () => db.destroy() };
    },
  },
};
if (!LIBRARIES[library]) throw new Error(`library: one of ${Object.keys(LIBRARIES).join(', ')}`);
const layer = new LIBRARIES[library].Instrumentation();
registerInstrumentations({ instrumentations: [new qt.PgInstrumentation(), layer] });
// the layer reads the seam's exports at each call (CommonJS): `runAs` can stand in for `sendsNow`
const seam = require('../dist/src/seam.js');
const { sendsNow, runAs } = seam;
const { run, close } = LIBRARIES[library].open();
const QUERIES = 3000;

async function drive(count) {
  let next = 0;
  const worker = async () => {
    while (next < count) await run(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const MODES = {
  'pg alone': () => layer.isEnabled() && layer.disable(),
  [`${library} + pg, sendsNow`]: () => (seam.sendsNow = sendsNow),
  [`${library} + pg, runAs (before)`]: () => (seam.sendsNow = runAs),
};

async function main() {
  const parent = tracerProvider.getTracer('bench').startSpan('bench-parent');
  await api.context.with(api.trace.setSpan(api.context.active(), parent), () =>
    qt.runInJob('bench', async () => {
      await drive(5000);
      const userUs = Object.fromEntries(Object.keys(MODES).map((mode) => [mode, []]));
      for (let round = 0; round < rounds; round++) {
        for (const mode of Object.keys(MODES).sort(() => Math.random() - 0.5)) {
          if (mode !== 'pg alone' && !layer.isEnabled()) layer.enable();
          MODES[mode]();
          await drive(500);
          const cpu0 = process.cpuUsage();
          await drive(QUERIES);
          userUs[mode].push(process.cpuUsage(cpu0).user / QUERIES);
        }
      }
      console.log(
        `${library} PK lookup, concurrency ${concurrency}, ${rounds} rounds × ${QUERIES} queries, user CPU µs/query:`,
      );
      for (const [mode, xs] of Object.entries(userUs)) console.log(`  ${mode.padEnd(26)} ${median(xs).toFixed(1)}`);
    }),
  );
  parent.end();
  await close();
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
