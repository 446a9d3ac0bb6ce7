// One benchmark variant in its own process (patches are process-wide): the same SDK setup for every
// variant — spans to a dropping exporter through a BatchSpanProcessor, metrics aggregated (querytrail's
// reader also given its duration histogram producer, as the agent's are), a parent span active — and pools
// of 4 (pg.Pool, knex's own, drizzle's pg.Pool) against the server in QT_BENCH_URL.
// There is no OTel contrib drizzle or kysely instrumentation, and prisma's own (@prisma/instrumentation) is
// not OTel contrib: for those, "OTel contrib" is instrumentation-pg.
const { variant } = JSON.parse(process.argv[2]);
const v8 = require('node:v8');
const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { MeterProvider, PeriodicExportingMetricReader, AggregationTemporality } = require('@opentelemetry/sdk-metrics');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');

const drop = { export: (_items, done) => done({ code: 0 }), shutdown: async () => {}, forceFlush: async () => {} };
// `querytrail (agent's export batch)`: the span batch `--require querytrail/agent` exports (exporters/otel.ts);
// every other variant has the SDK's (512, or OTEL_BSP_MAX_EXPORT_BATCH_SIZE)
const agentBatch = variant === "querytrail (agent's export batch)";
const batch = agentBatch ? { maxExportBatchSize: require('../dist/exporters/otel.js').SPAN_EXPORT_BATCH } : {};
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(drop, batch)] });
api.trace.setGlobalTracerProvider(tracerProvider);
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const metricExporter = { ...drop, selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE };
const qt = variant.startsWith('querytrail')
  ? require(variant === 'querytrail (baseline)' ? process.env.QT_BENCH_BASELINE : '../dist/src/index.js')
  : undefined;
// The reader is given querytrail's duration histogram producer, as the agent gives its readers
// (exporters/otel.ts); `querytrail (metrics API)` and `querytrail (PgInstrumentation alone)` set up metrics as a
// user's own SDK does without it: durations recorded through the metrics API.
const throughApi = variant === 'querytrail (metrics API)' || variant === 'querytrail (PgInstrumentation alone)';
const metricProducers = qt?.durationMetricProducer && !throughApi ? [qt.durationMetricProducer()] : [];
const meterProvider = new MeterProvider({
  readers: [
    new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000, metricProducers }),
  ],
});
api.metrics.setGlobalMeterProvider(meterProvider);

// Apps build and run their queries inside requests or jobs; querytrail's policies depend on that.
let inScope = (fn) => fn();
if (qt) {
  inScope = (fn) => qt.runInJob('bench', fn);
  // `querytrail`: the defaults (capture lean); `querytrail (auto)`: every query object captured where built
  qt.configureQuerytrail({ console: 'off', capture: variant === 'querytrail (auto)' ? 'auto' : undefined });
  // `querytrail (PgInstrumentation alone)`: only the driver's, as a user adds it to an existing setup
  const alone = variant === 'querytrail (PgInstrumentation alone)';
  const libraries = alone
    ? [qt.PgInstrumentation]
    : [
        qt.PgInstrumentation,
        qt.KnexInstrumentation,
        qt.DrizzleInstrumentation,
        qt.KyselyInstrumentation,
        qt.SequelizeInstrumentation,
        qt.TypeormInstrumentation,
        qt.PrismaInstrumentation,
      ];
  registerInstrumentations({ instrumentations: libraries.map((Instrumentation) => new Instrumentation()) });
} else if (variant === 'OTel contrib') {
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg');
  const { KnexInstrumentation } = require('@opentelemetry/instrumentation-knex');
  const { SequelizeInstrumentation } = require('@opentelemetry/instrumentation-sequelize');
  const { TypeormInstrumentation } = require('@opentelemetry/instrumentation-typeorm');
  registerInstrumentations({
    instrumentations: [
      new PgInstrumentation(),
      new KnexInstrumentation(),
      new SequelizeInstrumentation(),
      new TypeormInstrumentation(),
    ],
  });
}

const pg = require('pg');
const knex = require('knex');
const { drizzle } = require('drizzle-orm/node-postgres');
const { pgTable, integer, text } = require('drizzle-orm/pg-core');
const { eq } = require('drizzle-orm');
const pool = new pg.Pool({ connectionString: process.env.QT_BENCH_URL, max: 4 });
const db = knex({ client: 'pg', connection: process.env.QT_BENCH_URL, pool: { min: 4, max: 4 } });
const drizzlePool = new pg.Pool({ connectionString: process.env.QT_BENCH_URL, max: 4 });
const ddb = drizzle({ client: drizzlePool });
const items = pgTable('items', { id: integer('id').primaryKey(), name: text('name') });
const { Kysely, PostgresDialect } = require('kysely');
const kyselyPool = new pg.Pool({ connectionString: process.env.QT_BENCH_URL, max: 4 });
const kdb = new Kysely({ dialect: new PostgresDialect({ pool: kyselyPool }) });
const tracer = api.trace.getTracer('bench');

const { Sequelize, DataTypes } = require('sequelize');
const sequelize = new Sequelize(process.env.QT_BENCH_URL, { logging: false, pool: { min: 4, max: 4 } });
const Item = sequelize.define(
  'Item',
  { id: { type: DataTypes.INTEGER, primaryKey: true }, name: DataTypes.TEXT },
  { tableName: 'items', timestamps: false },
);

const { DataSource, EntitySchema } = require('typeorm');
const TypeormItem = new EntitySchema({
  name: 'Item',
  tableName: 'items',
  columns: { id: { type: 'int', primary: true }, name: { type: 'text' } },
});
const dataSource = new DataSource({
  type: 'postgres',
  url: process.env.QT_BENCH_URL,
  entities: [TypeormItem],
  poolSize: 4,
});

// generated by npm run generate:prisma (test/fixtures/prisma/schema.prisma)
const { PrismaClient } = require('@prisma/client');
const { PrismaPg } = require('@prisma/adapter-pg');
const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: process.env.QT_BENCH_URL, max: 4 }) });

const WORKLOADS = {
  'SELECT 1': () => pool.query('SELECT 1'),
  'PK lookup': (i) => pool.query('SELECT id, name FROM items WHERE id = $1', [(i % 3) + 1]),
  // a builder per query, as apps write it: construction is on the measured path
  'knex PK lookup': (i) =>
    db('items')
      .select('id', 'name')
      .where('id', (i % 3) + 1),
  'drizzle PK lookup': (i) =>
    ddb
      .select({ id: items.id, name: items.name })
      .from(items)
      .where(eq(items.id, (i % 3) + 1)),
  'kysely PK lookup': (i) =>
    kdb
      .selectFrom('items')
      .select(['id', 'name'])
      .where('id', '=', (i % 3) + 1)
      .execute(),
  'sequelize PK lookup': (i) => Item.findByPk((i % 3) + 1, { raw: true }),
  'typeorm PK lookup': (i) => dataSource.getRepository(TypeormItem).findOneBy({ id: (i % 3) + 1 }),
  'prisma PK lookup': (i) => prisma.item.findUnique({ where: { id: (i % 3) + 1 }, select: { id: true, name: true } }),
};

async function drive(run, count, concurrency) {
  let next = 0;
  const worker = async () => {
    while (next < count) await run(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

const warmed = new Set();

/** One job: a workload at a concurrency, measured; warmed up the first time this worker runs it. */
async function measure({ name, concurrency, queries, warmup, profileFile, gcProfile }) {
  const run = WORKLOADS[name];
  const key = `${name}@${concurrency}`;
  if (!warmed.has(key)) {
    await inScope(() => drive(run, warmup, concurrency));
    warmed.add(key);
  }
  const profiler = profileFile ? await startProfiler() : undefined;
  // v8.GCProfiler records the heap's statistics around every collection: ~170 000 instructions each (counted
  // by bench/instructions.js), 27 collections per 1 000 knex queries. That is CPU on the measured path,
  // more for the variants that allocate more, so it is on only when asked for (QT_BENCH_GC=1).
  const gcProfiler = gcProfile ? new v8.GCProfiler() : undefined;
  gcProfiler?.start();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await inScope(() => drive(run, queries, concurrency));
  const wallUs = Number(process.hrtime.bigint() - t0) / 1e3 / queries;
  const cpu = process.cpuUsage(cpu0);
  const gc = gcProfiler ? gcOf(gcProfiler.stop(), queries) : {};
  if (profiler) require('node:fs').writeFileSync(profileFile, JSON.stringify(await profiler.stop()));
  return { wallUs, cpuUs: (cpu.user + cpu.system) / queries, systemUs: cpu.system / queries, ...gc };
}

/**
 * The garbage collector's share of a job, per query: its pauses on the main thread (µs), and the bytes young
 * collections promoted to the old generation (what outlives two of them: spans waiting in the batch span
 * processor, when the workload allocates enough between two exports). Promoted bytes depend on allocation,
 * not on the machine's speed: steady where CPU times are not.
 */
function gcOf(profile, queries) {
  const oldSpace = (stats) => stats.heapSpaceStatistics.find((s) => s.spaceName === 'old_space').spaceUsedSize;
  let pauseUs = 0;
  let promoted = 0;
  for (const event of profile.statistics) {
    pauseUs += event.cost;
    if (event.gcType === 'Scavenge') promoted += oldSpace(event.afterGC) - oldSpace(event.beforeGC);
  }
  return { gcUs: pauseUs / queries, promotedBytes: promoted / queries };
}

/** bench/profile.js: a CPU profile of the measured queries only (not of loading the libraries). */
async function startProfiler() {
  const session = new (require('node:inspector').Session)();
  session.connect();
  const post = (method, params) =>
    new Promise((resolve, reject) => session.post(method, params, (e, r) => (e ? reject(e) : resolve(r))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 50 });
  await post('Profiler.start');
  return { stop: async () => (await post('Profiler.stop')).profile };
}

// A long-lived worker (bench/pg.js): jobs arrive one at a time over IPC, each answered with its numbers.
async function main() {
  await dataSource.initialize();
  const parent = tracer.startSpan('bench-parent');
  const ctx = api.trace.setSpan(api.context.active(), parent);
  process.on('message', (job) => {
    if (job === 'stop') {
      parent.end();
      Promise.all([
        pool.end(),
        db.destroy(),
        drizzlePool.end(),
        kdb.destroy(),
        sequelize.close(),
        dataSource.destroy(),
        prisma.$disconnect(),
      ]).finally(() => process.exit(0));
      return;
    }
    api.context
      .with(ctx, () => measure(job))
      .then(
        (result) => process.send({ result }),
        (err) => process.send({ error: String(err?.stack ?? err) }),
      );
  });
  // a bench that failed or was stopped leaves no worker behind (under valgrind, a slow one)
  process.on('disconnect', () => process.exit(1));
  process.send({ ready: variant });
}
main();
