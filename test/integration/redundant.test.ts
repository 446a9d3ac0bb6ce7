// Redundant reads in a request, for every library, against the real PostgreSQL: N+1 (sequential and
// concurrent), duplicates, and what is neither (a batch, a re-read after a write, one loop over two shards).
import * as path from 'node:path';
import { attrs, OtlpReceiver } from '../support/otlp-receiver';
import {
  AGENT_ESM,
  ExportedSpan,
  FIXTURES,
  FixtureRun,
  lineOf,
  ormFixtureEnv,
  runFixture,
  spansInRoute,
} from '../support/run-fixture';

type Expected = [code: string, line: string][];
interface Library {
  name: string;
  fixture: string;
  nodeArgs?: string[];
  /** Words of the library's own fix in the n_plus_one message. */
  advice: string;
  /** Routes beyond the shared ones, or shared ones the library answers otherwise, and their hazards. */
  routes?: Record<string, Expected>;
}

const SHARED: Record<string, Expected> = {
  '/loop': [['n_plus_one', 'author']],
  '/fan-out': [['n_plus_one', 'author']],
  '/batch': [],
  '/twice': [['duplicate_query', 'author']],
  '/reread': [],
  '/shards': [],
};
const LIBRARIES: Library[] = [
  {
    name: 'pg',
    fixture: 'pg.js',
    advice: '`= ANY($1)`',
    routes: { '/dataloader': [], '/elsewhere': [['n_plus_one', 'elsewhere']] },
  },
  { name: 'knex', fixture: 'knex.js', advice: '`whereIn`', routes: { '/follow': [['read_after_write', 'followed']] } },
  { name: 'drizzle', fixture: 'drizzle.js', advice: '`inArray`' },
  { name: 'kysely', fixture: 'kysely.mjs', nodeArgs: ['--import', AGENT_ESM], advice: "`where(column, 'in', ids)`" },
  {
    name: 'sequelize',
    fixture: 'sequelize.js',
    advice: '`include`',
    routes: { '/lazy': [['n_plus_one', 'lazy']], '/follow': [['read_after_write', 'followed']] },
  },
  { name: 'typeorm', fixture: 'typeorm.js', advice: '`relations`', routes: { '/lazy': [['n_plus_one', 'lazy']] } },
  {
    name: 'prisma',
    fixture: 'prisma.js',
    advice: '`findMany({ where: { id: { in: ids } } })`',
    // prisma batches the concurrent findUniques into one query; findFirst it never batches
    routes: { '/fan-out': [], '/first-fan-out': [['n_plus_one', 'first']] },
  },
];

const hazardEvents = (spans: ExportedSpan[]) =>
  spans.flatMap((s) => s.events.filter((e) => e.name === 'querytrail.hazard').map((e) => e.attributes));

describe.each(LIBRARIES)('redundant reads with $name', (library) => {
  const fixture = path.join(FIXTURES, 'redundant', library.fixture);
  const routes = { ...SHARED, ...library.routes };
  let run: FixtureRun;
  const receiver = new OtlpReceiver();

  beforeAll(async () => {
    const endpoint = await receiver.start();
    run = await runFixture(path.join('redundant', library.fixture), {
      env: {
        ...ormFixtureEnv(),
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_METRICS_EXPORTER: 'otlp',
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
      },
      nodeArgs: library.nodeArgs,
      args: Object.keys(routes),
      timeoutMs: 60_000,
    });
    await receiver.stop();
  }, 70_000);

  it('answers every route', () => {
    expect(
      run.stdout
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(' ').slice(0, 2).join(' ')),
    ).toEqual(Object.keys(routes).map((route) => `${route} 200`));
  });

  it.each(Object.entries(routes))('%s: %j', (route, expected) => {
    const found = hazardEvents(spansInRoute(run.spans, `GET ${route}`)).map((e) => [
      e['querytrail.hazard.code'],
      e['querytrail.hazard.file'],
      e['querytrail.hazard.line'],
    ]);
    expect(found).toEqual(expected.map(([code, line]) => [code, fixture, lineOf(fixture, line)]));
  });

  it('names the count, the time and the fix in its terms', () => {
    const [nPlusOne] = hazardEvents(spansInRoute(run.spans, 'GET /loop'));
    expect(nPlusOne['querytrail.hazard.count']).toBe(5);
    expect(nPlusOne['querytrail.hazard.message']).toMatch(
      new RegExp(
        `^SELECT (public\\.)?authors ran 5 times from ${fixture}:${lineOf(fixture, 'author')}:\\d+ in request GET /loop`,
      ),
    );
    expect(nPlusOne['querytrail.hazard.message']).toContain(library.advice);
  });

  it("puts the request's query count and time on its span, and on the queries-per-request histogram", () => {
    const server = receiver
      .spans()
      .map((s) => attrs(s.attributes))
      .find((a) => a['http.route'] === '/loop');
    // the articles, an author each, and what the library ran on new connections: every query span of the request
    const queries = spansInRoute(run.spans, 'GET /loop').length;
    expect(queries).toBeGreaterThanOrEqual(7);
    expect(server?.['querytrail.request.queries']).toBe(queries);
    expect(server?.['querytrail.request.query_time_ms']).toEqual(expect.any(Number));
    const loop = receiver
      .metricPoints('querytrail.request.queries')
      .find((p) => attrs(p.attributes).route === 'GET /loop');
    expect(loop).toMatchObject({ count: '1', sum: queries });
  });

  it('fails the second lookup of the loop in strict mode, and not the batch', async () => {
    const strict = await runFixture(path.join('redundant', library.fixture), {
      env: { ...ormFixtureEnv(), QUERYTRAIL_STRICT: 'n_plus_one' },
      nodeArgs: library.nodeArgs,
      args: ['/loop', '/batch'],
      timeoutMs: 60_000,
    });
    const [loop, batch] = strict.stdout.split('\n');
    expect(loop).toMatch(/^\/loop 500 \{"name":"\w+","code":"n_plus_one"\}$/); // as the library passed it on
    expect(batch).toMatch(/^\/batch 200 /);
    const failed = spansInRoute(strict.spans, 'GET /loop').filter((s) => s.status.code === 'ERROR');
    expect(failed).toHaveLength(1);
    expect(failed[0].status.message).toMatch(/^querytrail n_plus_one: SELECT (public\.)?authors ran 2 times/);
  }, 70_000);
});
