// The tracker in process: one span per query, the contract's attributes, hazards as events, strict mode.
import { metrics, ROOT_CONTEXT } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR, HAZARD, HAZARD_EVENT } from '../../src/attributes';
import { internSite } from '../../src/callsite';
import { DatabaseRegistry, ServerFacts } from '../../src/database';
import { QueryStart, QueryTracker } from '../../src/query-tracker';
import { HazardPipeline, QueryTrailHazardError } from '../../src/report';
import { requestScope } from '../../src/scope';
import { embed } from '../../src/seam';
import { SiteCapture } from '../../src/site-capture';
import { analyzeStatement } from '../../src/statement';
import { makeTrail, profile } from '../support/trails';

const exporter = new InMemorySpanExporter();
const tracer = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }).getTracer('test');
const databases = new DatabaseRegistry();
const app = databases.ref('postgresql', 'db1', 5432, 'app');
const analytics = databases.ref('postgresql', 'db1', 5432, 'analytics');
const runSite = internSite('/app/routes/items.js', 12, 5, 'list');

function tracker(strict: string[] = []) {
  const pipeline = new HazardPipeline(undefined, new Set(strict as never[]));
  const t = new QueryTracker(new SiteCapture(), pipeline);
  t.useMeter(metrics.getMeter('test'));
  return t;
}

function start(overrides: Partial<QueryStart>): QueryStart {
  const server = new ServerFacts(app);
  server.setRole('primary', 'in_hot_standby=off');
  return {
    tracer,
    driver: profile('pg'),
    ctx: ROOT_CONTEXT,
    scope: undefined,
    trail: undefined,
    site: runSite,
    statement: analyzeStatement('SELECT id FROM items WHERE id = $1', 'postgresql'),
    server,
    parameters: [1],
    recordParameters: false,
    capture: 'auto',
    ...overrides,
  };
}

afterEach(() => exporter.reset());

describe('QueryTracker', () => {
  it('ends one CLIENT span per raw query, whose construction site is where it ran', () => {
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
      [ATTR.CONSTRUCTION_LINE]: 12,
      [ATTR.CONSTRUCTION_PHASE]: 'init',
      [ATTR.RAN_ROLE]: 'primary',
    });
    expect(span.attributes).not.toHaveProperty(`${ATTR.DB_QUERY_PARAMETER_PREFIX}0`);
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
      [ATTR.CONSTRUCTION_LINE]: 11,
      [ATTR.ORIGIN_FILE]: '/app/data.js',
      [ATTR.ORIGIN_LINE]: 3,
      [ATTR.ORIGIN_PHASE]: 'init',
      [ATTR.EXECUTION_PHASE]: 'request',
    });
    expect(span.attributes[ATTR.ORIGIN_AGE_MS]).toEqual(expect.any(Number));
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
