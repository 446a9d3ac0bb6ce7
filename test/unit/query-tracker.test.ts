// The tracker in process: one span per query, the contract's attributes, hazards as events, strict mode.
import { metrics, ROOT_CONTEXT } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import {
  ATTR,
  DURATION_HISTOGRAM,
  HAZARD,
  HAZARD_EVENT,
  IN_FLIGHT_GAUGE,
  REQUEST_QUERIES_HISTOGRAM,
} from '../../src/attributes';
import { internSite, SiteRef, StackCapture } from '../../src/callsite';
import { DatabaseRegistry, ServerFacts } from '../../src/database';
import { QueryStart, QueryTracker } from '../../src/query-tracker';
import { HazardPipeline, QueryTrailHazardError } from '../../src/report';
import { requestScope } from '../../src/scope';
import { embed } from '../../src/seam';
import { SiteCapture } from '../../src/site-capture';
import { analyzeStatement } from '../../src/statement';
import type { Trail } from '../../src/trail';
import { makeTrail, profile } from '../support/trails';

const exporter = new InMemorySpanExporter();
const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');
const databases = new DatabaseRegistry();
const app = databases.ref('postgresql', 'db1', 5432, 'app');
const analytics = databases.ref('postgresql', 'db1', 5432, 'analytics');
const runSite = internSite('/app/routes/items.js', 12, 5, 'list');

function tracker(strict: string[] = [], nPlusOneThreshold = 5) {
  const pipeline = new HazardPipeline(undefined, new Set(strict as never[]));
  const t = new QueryTracker(new SiteCapture(), pipeline, nPlusOneThreshold);
  t.useMeter(metrics.getMeter('test'));
  return t;
}

function start(overrides: Partial<QueryStart>): QueryStart {
  const server = new ServerFacts(app);
  server.setRole('primary', 'in_hot_standby=off');
  const statement = overrides.statement ?? analyzeStatement('SELECT id FROM items WHERE id = $1', 'postgresql');
  return {
    tracer,
    driver: profile('pg'),
    ctx: ROOT_CONTEXT,
    scope: undefined,
    trail: undefined,
    site: runSite,
    statement,
    text: statement.text,
    server,
    parameters: [1],
    recordParameters: false,
    capture: 'auto',
    ...overrides,
  };
}

afterEach(() => exporter.reset());

describe('QueryTracker', () => {
  it('ends one CLIENT span per raw query: built where it ran, so its construction site is code.*, said once', () => {
    const t = tracker();
    const { query, rejection } = t.start(start({}));
    t.finish(query);
    expect(rejection).toBeUndefined();
    const [span] = exporter.getFinishedSpans();
    expect(span.name).toBe('SELECT items');
    expect(span.attributes).toMatchObject({
      [ATTR.DB_SYSTEM_NAME]: 'postgresql',
      [ATTR.DB_NAMESPACE]: 'app',
      [ATTR.LIBRARY]: 'pg',
      [ATTR.CODE_LINE_NUMBER]: 12,
      [ATTR.EXECUTION_PHASE]: 'init',
      [ATTR.RAN_ROLE]: 'primary',
      [ATTR.RAN_ALIAS]: 'db1:5432/app',
      [ATTR.BOUND_ALIAS]: 'db1:5432/app',
    });
    // the compact contract: nothing that repeats a semantic-convention attribute
    for (const repeated of [
      ATTR.CONSTRUCTION_FILE,
      ATTR.CONSTRUCTION_LINE,
      ATTR.CONSTRUCTION_PHASE, // built in the phase it ran in
      ATTR.CONSTRUCTION_AGE_MS, // no query object: nothing was built before it ran
      'db.operation.name', // not parsed out of SQL text (semantic conventions): the summary names it
      'db.collection.name',
      ATTR.BOUND_ADDRESS,
      ATTR.BOUND_PORT,
      ATTR.BOUND_NAMESPACE,
      'querytrail.ran.address',
      'querytrail.ran.port',
      'querytrail.ran.namespace',
    ]) {
      expect(span.attributes).not.toHaveProperty([repeated]);
    }
    expect(span.attributes).not.toHaveProperty(`${ATTR.DB_QUERY_PARAMETER_PREFIX}0`);
  });

  it('says where a query object was bound when that is not where it ran', () => {
    const t = tracker();
    const trail = makeTrail({ library: 'knex', site: internSite('/app/data.js', 3, 1), binding: analytics });
    t.finish(t.start(start({ trail })).query);
    expect(exporter.getFinishedSpans()[0].attributes).toMatchObject({
      [ATTR.DB_NAMESPACE]: 'app',
      [ATTR.BOUND_NAMESPACE]: 'analytics',
      [ATTR.BOUND_ADDRESS]: 'db1',
      [ATTR.BOUND_PORT]: 5432,
    });
  });

  it("names the ORM, where the object was built and the origin it was derived from, in the request's phase", () => {
    const t = tracker();
    const base = makeTrail({ library: 'knex', site: internSite('/app/data.js', 3, 1), binding: app });
    const scope = requestScope({ method: 'GET', url: '/items' });
    const derived = makeTrail({ library: 'knex', site: internSite('/app/routes/items.js', 11, 3), parent: base });
    const { query } = t.start(start({ trail: derived, scope }));
    t.finish(query);
    const [span] = exporter.getFinishedSpans();
    expect(span.attributes).toMatchObject({
      [ATTR.LIBRARY]: 'knex',
      [ATTR.CODE_LINE_NUMBER]: 12,
      [ATTR.CONSTRUCTION_LINE]: 11, // built elsewhere than it ran: said
      [ATTR.ORIGIN_FILE]: '/app/data.js',
      [ATTR.ORIGIN_LINE]: 3,
      [ATTR.ORIGIN_PHASE]: 'init',
      [ATTR.EXECUTION_PHASE]: 'request',
    });
    expect(span.attributes[ATTR.ORIGIN_AGE_MS]).toEqual(expect.any(Number));
  });

  it("stays at 19 attributes or fewer when nothing unusual is said: V8 makes the SDK's 20th a hash table", () => {
    const t = tracker();
    const scope = requestScope({ method: 'GET', url: '/items/1', route: { path: '/items/:id' } });
    const builtInRequest = (library: string, site: SiteRef | undefined): Trail => ({
      ...makeTrail({ library, site, binding: app }),
      phase: 'request',
    });
    const raw = undefined;
    const eagerCall = builtInRequest('sequelize', runSite); // built on the line that ran it
    const leanBuilder = builtInRequest('knex', undefined); // built in a request, its line not captured
    // a drizzle builder: built a line above the await, in the same handler
    const builder = builtInRequest('drizzle', internSite('/app/routes/items.js', 11, 20, 'list'));
    for (const trail of [raw, eagerCall, leanBuilder, builder]) t.finish(t.start(start({ trail, scope })).query);
    const spans = exporter.getFinishedSpans();
    expect(spans.map((s) => s.attributes[ATTR.ROUTE])).toEqual(Array(4).fill('GET /items/:id'));
    for (const span of spans) expect(Object.keys(span.attributes).length).toBeLessThanOrEqual(19);
    // its construction site says its line and column; its file and function are code.*'s
    expect(spans[3].attributes).toMatchObject({ [ATTR.CONSTRUCTION_LINE]: 11, [ATTR.CONSTRUCTION_COLUMN]: 20 });
    expect(spans[3].attributes).not.toHaveProperty([ATTR.CONSTRUCTION_FILE]);
    expect(spans[3].attributes).not.toHaveProperty([ATTR.CONSTRUCTION_FUNCTION]);
  });

  it("leaves out a site's file and function when they are the nearer site's, and only then", () => {
    const t = tracker();
    const scope = requestScope({ method: 'GET', url: '/items' });
    const base = makeTrail({ library: 'knex', site: internSite('/app/data.js', 4, 1, 'published'), binding: app });
    const sameFile = makeTrail({ library: 'knex', site: internSite('/app/data.js', 9, 7, 'recent'), parent: base });
    const elsewhere = makeTrail({ library: 'knex', site: internSite('/app/lib.js', 4, 2, 'list'), parent: sameFile });
    for (const trail of [sameFile, elsewhere]) t.finish(t.start(start({ trail, scope })).query);
    const [first, second] = exporter.getFinishedSpans().map((s) => s.attributes);
    // built in another file and function than it ran in (/app/routes/items.js, list); origin in that file
    expect(first).toMatchObject({
      [ATTR.CONSTRUCTION_FILE]: '/app/data.js',
      [ATTR.CONSTRUCTION_LINE]: 9,
      [ATTR.CONSTRUCTION_FUNCTION]: 'recent',
      [ATTR.ORIGIN_LINE]: 4,
      [ATTR.ORIGIN_COLUMN]: 1,
      [ATTR.ORIGIN_FUNCTION]: 'published',
    });
    expect(first).not.toHaveProperty([ATTR.ORIGIN_FILE]);
    // built in list() of another file: its function is code.*'s, its file is not; the origin's file is
    expect(second).toMatchObject({ [ATTR.CONSTRUCTION_FILE]: '/app/lib.js', [ATTR.ORIGIN_FILE]: '/app/data.js' });
    expect(second).not.toHaveProperty([ATTR.CONSTRUCTION_FUNCTION]);
  });

  it('reports a hazard as a span event, and in strict mode returns the error to fail the query with', () => {
    const outer = makeTrail({ library: 'knex', site: internSite('/app/a.js', 1, 1), binding: app });
    embed(outer, makeTrail({ library: 'knex', site: internSite('/app/b.js', 2, 1), binding: analytics }));
    for (const strict of [[], ['cross_database_query']]) {
      const t = tracker(strict);
      const { query, rejection } = t.start(start({ trail: outer }));
      t.finish(query, rejection);
      const span = exporter.getFinishedSpans().pop()!;
      expect(span.events.map((e) => [e.name, e.attributes?.[HAZARD.CODE]])).toEqual([
        [HAZARD_EVENT, 'cross_database_query'],
      ]);
      expect(span.attributes[ATTR.PARTS_NAMESPACES]).toEqual(['app', 'analytics']);
      if (strict.length) expect(rejection).toBeInstanceOf(QueryTrailHazardError);
      else expect(rejection).toBeUndefined();
    }
  });

  it('records parameter values only when the driver opted in', () => {
    const t = tracker();
    const { query } = t.start(start({ recordParameters: true }));
    t.finish(query);
    expect(exporter.getFinishedSpans()[0].attributes[`${ATTR.DB_QUERY_PARAMETER_PREFIX}0`]).toBe('1');
  });

  it('takes the execution site in the completion handler when the call had no application frame', () => {
    const t = tracker();
    const trail = makeTrail({ library: 'drizzle', site: undefined, binding: app });
    const { query } = t.start(start({ trail, site: undefined }));
    (function completion() {
      t.finish(query, undefined, undefined, completion);
    })();
    // the completion handler's caller is this test file: its frame is the execution site
    expect(exporter.getFinishedSpans()[0].attributes[ATTR.CODE_FILE_PATH]).toBe(__filename);
  });
});

describe('QueryTracker: metrics', () => {
  function trackerWithReader() {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 60_000,
    });
    const t = tracker();
    t.useMeter(new MeterProvider({ readers: [reader] }).getMeter('test'));
    return { reader, t };
  }

  it('hands every finished query to the duration histogram before each collection, and counts those in flight', async () => {
    const { reader, t } = trackerWithReader();
    const collect = async () => {
      const metrics = (await reader.collect()).resourceMetrics.scopeMetrics[0].metrics;
      const duration = metrics.find((m) => m.descriptor.name === DURATION_HISTOGRAM)?.dataPoints ?? [];
      const inFlight = metrics.find((m) => m.descriptor.name === IN_FLIGHT_GAUGE)?.dataPoints ?? [];
      return {
        count: duration.reduce((n, p) => n + (p.value as { count: number }).count, 0),
        inFlight: inFlight.map((p) => p.value),
      };
    };
    // fewer than a batch, then more than one: each collection has every query finished before it
    for (let i = 0; i < 3; i++) t.finish(t.start(start({})).query);
    const open = t.start(start({})).query;
    expect(await collect()).toEqual({ count: 3, inFlight: [1] });
    for (let i = 0; i < 300; i++) t.finish(t.start(start({})).query);
    t.finish(open);
    expect(await collect()).toEqual({ count: 304, inFlight: [0] });
  });

  it('gives the duration histogram its attributes in key order (the SDK sorts them per record)', async () => {
    const { reader, t } = trackerWithReader();
    t.finish(t.start(start({})).query);
    const { resourceMetrics } = await reader.collect();
    const duration = resourceMetrics.scopeMetrics[0].metrics.find((m) => m.descriptor.name === DURATION_HISTOGRAM);
    const keys = Object.keys(duration?.dataPoints[0].attributes ?? {});
    expect(keys.length).toBeGreaterThan(4);
    expect(keys).toEqual([...keys].sort());
  });
});

describe('QueryTracker: execution sites learned per statement shape', () => {
  /** Runs one shape `runs` times, each with the site the capture policy gives; returns how many were captured. */
  function capturesFor(spansRecorded: boolean, runs: number): number {
    const sites = new SiteCapture();
    const t = new QueryTracker(sites, new HazardPipeline(undefined, new Set()), 5);
    const sampler = { shouldSample: () => ({ decision: spansRecorded ? 2 : 0 }), toString: () => 'test' };
    const sampledTracer = new BasicTracerProvider({ sampler }).getTracer('test');
    const statement = analyzeStatement('SELECT id FROM items WHERE id = $1', 'postgresql');
    let captured = 0;
    for (let i = 0; i < runs; i++) {
      const site = sites.executionSite(statement.text, capturesFor, 'auto', undefined);
      if (site instanceof StackCapture) captured++;
      const { query } = t.start(start({ tracer: sampledTracer, statement, site }));
      t.finish(query);
    }
    return captured;
  }

  it('captures a hot shape until its site is confirmed, then one run in 64, whether its spans are sampled or not', () => {
    // three to confirm, then one in 64 re-checked
    expect(capturesFor(true, 640)).toBeLessThanOrEqual(3 + 10);
    expect(capturesFor(false, 640)).toBeLessThanOrEqual(3 + 10);
  });
});

describe('QueryTracker: redundant reads in a request', () => {
  const byId = analyzeStatement('SELECT * FROM users WHERE id = $1', 'postgresql');
  const loop = internSite('/app/routes/articles.js', 20, 5, 'list');
  const hazardsOf = (code: string) =>
    exporter
      .getFinishedSpans()
      .flatMap((s) => s.events)
      .filter((e) => e.attributes?.[HAZARD.CODE] === code);

  it('reports an N+1 once, when the N-th concurrent run starts, with its line, count and time so far', () => {
    const t = tracker();
    const scope = requestScope({ method: 'GET', url: '/articles' });
    // Promise.all: every run starts before any finishes, and a sequential pair finishes first
    const first = [1, 2].map((id) => t.start(start({ scope, statement: byId, site: loop, parameters: [id] })).query);
    first.forEach((q) => t.finish(q));
    const running = [3, 4, 5, 6, 7].map((id) =>
      t.start(start({ scope, statement: byId, site: loop, parameters: [id] })),
    );
    running.forEach(({ query }) => t.finish(query));
    const [event] = hazardsOf('n_plus_one');
    expect(hazardsOf('n_plus_one')).toHaveLength(1);
    expect(event.attributes).toMatchObject({ [HAZARD.FILE]: loop.file, [HAZARD.LINE]: 20, [HAZARD.COUNT]: 5 });
    expect(event.attributes?.[HAZARD.MESSAGE]).toMatch(
      /^SELECT users ran 5 times from \/app\/routes\/articles\.js:20:5 in request GET \/articles on .*, with 5 different values; 2 finished in [\d.]+ ms: a potential N\+1 \(a query per row\); fetch the rows in one query\.$/,
    );
    expect(scope.queries).toBe(7);
  });

  it('stays silent outside a request, for writes, and for one batched query', () => {
    const t = tracker();
    for (let id = 0; id < 10; id++) t.finish(t.start(start({ statement: byId, site: loop, parameters: [id] })).query);
    const scope = requestScope({ method: 'GET', url: '/articles' });
    const insert = analyzeStatement('INSERT INTO users (id) VALUES ($1)', 'postgresql');
    for (let id = 0; id < 10; id++)
      t.finish(t.start(start({ scope, statement: insert, site: loop, parameters: [id] })).query);
    const batch = analyzeStatement('SELECT * FROM users WHERE id = ANY($1)', 'postgresql');
    t.finish(t.start(start({ scope, statement: batch, site: loop, parameters: [[1, 2, 3, 4, 5, 6]] })).query);
    expect(hazardsOf('n_plus_one')).toHaveLength(0);
  });

  it('fails the N-th run in strict mode, with a lower threshold', () => {
    const t = tracker(['n_plus_one'], 2);
    const scope = requestScope({ method: 'GET', url: '/articles' });
    expect(t.start(start({ scope, statement: byId, site: loop, parameters: [1] })).rejection).toBeUndefined();
    const { rejection } = t.start(start({ scope, statement: byId, site: loop, parameters: [2] }));
    expect(rejection).toBeInstanceOf(QueryTrailHazardError);
    expect(rejection?.message).toMatch(
      /^querytrail n_plus_one: SELECT users ran 2 times from \/app\/routes\/articles\.js:20:5/,
    );
  });

  it('reports a duplicate on the second identical read, and none after a write to its table', () => {
    const t = tracker();
    const scope = requestScope({ method: 'GET', url: '/articles' });
    const other = internSite('/app/routes/articles.js', 31, 9, 'show');
    t.finish(t.start(start({ scope, statement: byId, site: loop, parameters: [7] })).query);
    t.finish(t.start(start({ scope, statement: byId, site: other, parameters: [7] })).query);
    const [event] = hazardsOf('duplicate_query');
    expect(event.attributes?.[HAZARD.LINE]).toBe(31);
    expect(event.attributes?.[HAZARD.MESSAGE]).toBe(
      'SELECT users at /app/routes/articles.js:31:9 reads again what /app/routes/articles.js:20:5 already read in ' +
        'request GET /articles: the same statement with the same values, and no write to users in between; reuse ' +
        'the first result (pass it along, or keep it for the request).',
    );
    exporter.reset();
    const update = analyzeStatement('UPDATE users SET name = $1 WHERE id = $2', 'postgresql');
    t.finish(t.start(start({ scope, statement: update, site: other, parameters: ['x', 7] })).query);
    t.finish(t.start(start({ scope, statement: byId, site: other, parameters: [7] })).query);
    expect(hazardsOf('duplicate_query')).toHaveLength(0);
  });

  it("puts the request's query count and time on its span, and on the queries-per-request histogram", async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 60_000,
    });
    const meterProvider = new MeterProvider({ readers: [reader] });
    const t = tracker();
    t.useMeter(meterProvider.getMeter('test'));
    const requestSpan = tracer.startSpan('GET /articles');
    const scope = requestScope({ method: 'GET', url: '/articles', route: { path: '/articles' } }, requestSpan);
    for (const id of [1, 2, 3])
      t.finish(t.start(start({ scope, statement: byId, site: loop, parameters: [id] })).query);
    t.scopeEnded(scope);
    requestSpan.end();
    const span = exporter.getFinishedSpans().find((s) => s.name === 'GET /articles')!;
    expect(span.attributes[ATTR.SCOPE_QUERIES]).toBe(3);
    expect(span.attributes[ATTR.SCOPE_QUERY_TIME_MS]).toEqual(expect.any(Number));
    const { resourceMetrics } = await reader.collect();
    const histogram = resourceMetrics.scopeMetrics[0].metrics.find(
      (m) => m.descriptor.name === REQUEST_QUERIES_HISTOGRAM,
    )!;
    expect(histogram.dataPoints).toEqual([
      expect.objectContaining({
        attributes: { route: 'GET /articles' },
        value: expect.objectContaining({ count: 1, sum: 3 }),
      }),
    ]);
  });
});
