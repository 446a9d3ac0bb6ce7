// One benchmark variant in its own process (patches are process-wide): the same SDK setup for every
// variant — spans to a dropping exporter through a BatchSpanProcessor, metrics aggregated, a parent span
// active — and pools of 4 (pg.Pool, knex's own, drizzle's pg.Pool) against the server in QT_BENCH_URL.
// There is no OTel contrib drizzle instrumentation: for drizzle, "OTel contrib" is instrumentation-pg.
const { variant, workloads, queries, warmup } = JSON.parse(process.argv[2]);
const api = require('@opentelemetry/api');
const { BasicTracerProvider, BatchSpanProcessor } = require('@opentelemetry/sdk-trace-base');
const { MeterProvider, PeriodicExportingMetricReader, AggregationTemporality } = require('@opentelemetry/sdk-metrics');
const { AsyncLocalStorageContextManager } = require('@opentelemetry/context-async-hooks');
const { registerInstrumentations } = require('@opentelemetry/instrumentation');

const drop = { export: (_items, done) => done({ code: 0 }), shutdown: async () => {}, forceFlush: async () => {} };
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(drop)] });
api.trace.setGlobalTracerProvider(tracerProvider);
api.context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const metricExporter = { ...drop, selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE };
const meterProvider = new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 3_600_000 })] });
api.metrics.setGlobalMeterProvider(meterProvider);

// Apps build and run their queries inside requests or jobs; querytrail's policies depend on that.
let inScope = (fn) => fn();
if (variant.startsWith('querytrail')) {
  const { configureQuerytrail, PgInstrumentation, KnexInstrumentation, DrizzleInstrumentation, KyselyInstrumentation, SequelizeInstrumentation, runInJob } = require('../dist/src/index.js');
  inScope = (fn) => runInJob('bench', fn);
  configureQuerytrail({ console: 'off', capture: variant === 'querytrail (lean)' ? 'lean' : 'auto' });
  registerInstrumentations({ instrumentations: [new PgInstrumentation(), new KnexInstrumentation(), new DrizzleInstrumentation(), new KyselyInstrumentation(), new SequelizeInstrumentation()] });
} else if (variant === 'OTel contrib') {
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg');
  const { KnexInstrumentation } = require('@opentelemetry/instrumentation-knex');
  const { SequelizeInstrumentation } = require('@opentelemetry/instrumentation-sequelize');
  registerInstrumentations({ instrumentations: [new PgInstrumentation(), new KnexInstrumentation(), new SequelizeInstrumentation()] });
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
const Item = sequelize.define('Item', { id: { type: DataTypes.INTEGER, primaryKey: true }, name: DataTypes.TEXT }, { tableName: 'items', timestamps: false });

const WORKLOADS = {
  'SELECT 1': () => pool.query('SELECT 1'),
  'PK lookup': (i) => pool.query('SELECT id, name FROM items WHERE id = $1', [(i % 3) + 1]),
  // a builder per query, as apps write it: construction is on the measured path
  'knex PK lookup': (i) => db('items').select('id', 'name').where('id', (i % 3) + 1),
  'drizzle PK lookup': (i) => ddb.select({ id: items.id, name: items.name }).from(items).where(eq(items.id, (i % 3) + 1)),
  'kysely PK lookup': (i) => kdb.selectFrom('items').select(['id', 'name']).where('id', '=', (i % 3) + 1).execute(),
  'sequelize PK lookup': (i) => Item.findByPk((i % 3) + 1, { raw: true }),
};

async function drive(run, count, concurrency) {
  let next = 0;
  const worker = async () => {
    while (next < count) await run(next++);
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function main() {
  const results = {};
  await tracer.startActiveSpan('bench-parent', async (parent) => {
    for (const { name, concurrency } of workloads) {
      const run = WORKLOADS[name];
      await inScope(() => drive(run, warmup, concurrency));
      const cpu0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      await inScope(() => drive(run, queries, concurrency));
      const wallUs = Number(process.hrtime.bigint() - t0) / 1e3 / queries;
      const cpu = process.cpuUsage(cpu0);
      results[`${name}, concurrency ${concurrency}`] = { wallUs, cpuUs: (cpu.user + cpu.system) / queries };
    }
    parent.end();
  });
  await Promise.all([pool.end(), db.destroy(), drizzlePool.end(), kdb.destroy(), sequelize.close()]);
  process.stdout.write(JSON.stringify(results));
  process.exit(0);
}
main();
