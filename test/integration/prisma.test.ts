import * as path from 'node:path';
import { attrs, OtlpReceiver } from '../support/otlp-receiver';
import {
  ExportedSpan,
  FIXTURES,
  hazardEvent as event,
  expectRanOn,
  hazardsOf,
  lineOf,
  ormFixtureEnv,
  runFixture,
  spansInRoute,
  topology,
  implied,
  operationOf,
} from '../support/run-fixture';

// The client is generated offline by `npm test` (npm run generate:prisma) from test/fixtures/prisma/schema.prisma.
const FIXTURE = path.join(FIXTURES, 'prisma-app.js');
const line = (name: string) => lineOf(FIXTURE, name);
const port = (url: string) => Number(new URL(url).port);
const prismaQueries = (spans: ExportedSpan[]) => spans.filter((s) => s.attributes['querytrail.library'] === 'prisma');

describe('prisma 7 with @prisma/adapter-pg and read replicas: where each query really ran', () => {
  it("reports the client's pool (primary or replica) and the server's own word on where it ran", async () => {
    const run = await runFixture('prisma-app.js', { env: ormFixtureEnv(), args: ['/routed'] });
    // the app asked each client's server itself: the replica's is in recovery, the primary's is not
    expect(JSON.parse(run.stdout.replace('/routed 200 ', ''))).toEqual({
      read: [1],
      primary: [1],
      replicaInRecovery: true,
      primaryInRecovery: false,
    });
    const [read, primary, replicaProbe, primaryProbe] = prismaQueries(spansInRoute(run.spans, 'GET /routed'));
    const standby = port(topology().pair.standby);
    const pairPrimary = port(topology().pair.primary);
    expectRanOn([read, replicaProbe], 'replica', standby, 'replica');
    expectRanOn([primary, primaryProbe], 'primary', pairPrimary, 'primary');
    // the extension re-issues the read on the replica client: it keeps the line of the app's call
    expect(implied(read)).toMatchObject({
      'querytrail.construction.file': FIXTURE,
      'querytrail.construction.line': line('read'),
      'code.line.number': line('read'),
    });
    expect(implied(replicaProbe)).toMatchObject({ 'querytrail.construction.line': line('probe') });
    for (const span of run.spans) expect(hazardsOf(span)).toEqual([]);
  });

  it('names each model call of a route at its own line once their lines are learned (capture lean)', async () => {
    const run = await runFixture('prisma-app.js', { env: ormFixtureEnv(), args: ['/two-calls'] });
    expect(run.stdout).toContain('/two-calls 200 12');
    const queries = prismaQueries(spansInRoute(run.spans, 'GET /two-calls'));
    expect(queries).toHaveLength(12);
    for (const [i, span] of queries.entries()) {
      const expected = line(i % 2 === 0 ? 'two-calls-unique' : 'two-calls-many');
      expect([i, span.attributes['code.line.number']]).toEqual([i, expected]);
    }
  });

  it('flags a create sent through $replica(), before the 25006 comes back', async () => {
    const run = await runFixture('prisma-app.js', { env: ormFixtureEnv(), args: ['/replica-write'] });
    // prisma 7.0 lets the adapter's error through; later 7.x wrap it in a PrismaClientKnownRequestError
    expect(run.stdout).toMatch(/^\/replica-write 500 \{"name":"(PrismaClientKnownRequestError|DriverAdapterError)"/);
    const [span] = prismaQueries(spansInRoute(run.spans, 'GET /replica-write'));
    expect(implied(span)).toMatchObject({
      'db.query.summary': expect.stringMatching(/^INSERT\b/),
      'querytrail.bound.pool': 'replica',
      'querytrail.ran.role': 'replica',
      'error.type': '25006',
    });
    expect(hazardsOf(span)).toEqual(['write_on_replica']);
    expect(event(span, 'write_on_replica')).toMatchObject({
      'querytrail.hazard.file': FIXTURE,
      'querytrail.hazard.line': line('replica-write'),
    });
  });

  it('flags a read from the replica of a table the request just wrote on the primary, and not through $primary()', async () => {
    const run = await runFixture('prisma-app.js', { env: ormFixtureEnv(), args: ['/order', '/order-primary'] });
    expect(run.stdout).toBe('/order 200 1\n/order-primary 200 1\n');
    const [write, read] = prismaQueries(spansInRoute(run.spans, 'GET /order'));
    expect(implied(write)).toMatchObject({ 'querytrail.bound.pool': 'primary', 'querytrail.ran.role': 'primary' });
    expect(hazardsOf(write)).toEqual([]);
    expect(hazardsOf(read)).toEqual(['read_after_write']);
    expect(event(read, 'read_after_write')).toMatchObject({
      'querytrail.hazard.line': line('read-after-update'),
      'querytrail.hazard.write.line': line('update'),
      'querytrail.hazard.table': 'public.items', // as prisma writes it
    });
    expect(event(read, 'read_after_write')['querytrail.hazard.message']).toContain('read through `$primary()`');
    for (const span of spansInRoute(run.spans, 'GET /order-primary')) expect(hazardsOf(span)).toEqual([]);
  });

  it("flags another client's query given to $transaction([...]), and nothing in one-database transactions", async () => {
    const run = await runFixture('prisma-app.js', { env: ormFixtureEnv(), args: ['/transfer', '/same-transaction'] });
    expect(run.stdout).toBe('/transfer 200 "done"\n/same-transaction 200 [1,1]\n');
    const flagged = prismaQueries(spansInRoute(run.spans, 'GET /transfer')).filter((s) => hazardsOf(s).length > 0);
    expect(flagged).toHaveLength(1);
    expect(implied(flagged[0])).toMatchObject({
      'db.namespace': 'qt_analytics',
      'db.query.summary': expect.stringMatching(/^UPDATE\b/),
      'querytrail.construction.line': line('transfer-foreign'),
    });
    expect(event(flagged[0], 'cross_database_transaction')).toMatchObject({
      'querytrail.hazard.transaction.line': line('transfer'),
      'querytrail.hazard.transaction.namespace': 'qt_app',
    });
    expect(event(flagged[0], 'cross_database_transaction')['querytrail.hazard.message']).toContain(
      'outside that transaction',
    );
    const same = prismaQueries(spansInRoute(run.spans, 'GET /same-transaction'));
    // batch and interactive transactions: BEGIN … COMMIT on qt_app, carrying the $transaction lines
    expect(same.map((s) => [operationOf(s), implied(s)['querytrail.construction.line']])).toEqual([
      ['BEGIN', line('batch')],
      ['UPDATE', line('batch')],
      ['SELECT', line('batch')],
      ['COMMIT', line('batch')],
      ['BEGIN', line('interactive')],
      ['SELECT', line('interactive')],
      ['COMMIT', line('interactive')],
    ]);
    for (const span of same) expect(hazardsOf(span)).toEqual([]);
  });

  it("flags another database's client awaited inside an interactive transaction's callback", async () => {
    const run = await runFixture('prisma-app.js', { env: ormFixtureEnv(), args: ['/interactive-foreign'] });
    expect(run.stdout).toBe('/interactive-foreign 200 2\n');
    const spans = prismaQueries(spansInRoute(run.spans, 'GET /interactive-foreign'));
    expect(spans.map((s) => [s.attributes['db.namespace'], operationOf(s), hazardsOf(s)])).toEqual([
      ['qt_app', 'BEGIN', []],
      ['qt_app', 'SELECT', []],
      ['qt_analytics', 'UPDATE', ['cross_database_transaction']],
      ['qt_app', 'COMMIT', []],
    ]);
    const update = spans[2];
    expect(implied(update)['querytrail.construction.line']).toBe(line('foreign-work'));
    expect(event(update, 'cross_database_transaction')).toMatchObject({
      'querytrail.hazard.transaction.line': line('interactive-foreign'),
      'querytrail.hazard.transaction.namespace': 'qt_app',
    });
  });

  it('flags a promise made at module load and first awaited in a request, then its memoised result in the next one', async () => {
    const receiver = new OtlpReceiver();
    const endpoint = await receiver.start();
    try {
      const run = await runFixture('prisma-app.js', {
        env: {
          ...ormFixtureEnv(),
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_METRICS_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        },
        args: ['/published', '/published'],
      });
      expect(run.stdout).toBe('/published 200 [1,2,3]\n/published 200 [1,2,3]\n');
      // the first request runs it: one query, with the boot-time date
      const queries = prismaQueries(run.spans).filter((s) => s.attributes['querytrail.route'] === 'GET /published');
      expect(queries).toHaveLength(1);
      expect(implied(queries[0])).toMatchObject({
        'querytrail.construction.phase': 'init',
        'querytrail.construction.line': line('published'),
        'code.line.number': line('published-await'),
      });
      expect(hazardsOf(queries[0])).toEqual(['init_query_in_request', 'frozen_parameter']);
      // the second gets the kept rows without a query: the hazard goes on its request's span, and is counted
      const notQueries = receiver.spans().filter((span) => span.scope !== 'querytrail-pg');
      const memoised = notQueries.flatMap((span) =>
        (span.events ?? []).map((e: { attributes: unknown[] }) => ({
          span: span.name,
          ...attrs(e.attributes as never),
        })),
      );
      expect(memoised).toHaveLength(1);
      expect(memoised[0].span).toBe('request handler'); // express's span for the route handler: active where the app awaits
      expect(memoised[0]).toMatchObject({
        'querytrail.hazard.code': 'init_query_in_request',
        'querytrail.hazard.memoised': true,
        'querytrail.hazard.line': line('published'),
      });
      expect(memoised[0]['querytrail.hazard.message']).toMatch(
        /is awaited in request GET \/published, but it already ran: it sends no query/,
      );
      const counted = receiver
        .metricPoints('querytrail.hazards')
        .map((p) => [attrs(p.attributes).code, Number(p.asDouble ?? p.asInt)]);
      // one pipeline, one counter: the query's hazard in the first request and the memoised await in the
      // second are two counts of the same series (same code, database and route)
      expect(counted).toEqual(
        expect.arrayContaining([
          ['init_query_in_request', 2],
          ['frozen_parameter', 1],
        ]),
      );
      expect(counted).toHaveLength(2);
    } finally {
      await receiver.stop();
    }
  });

  it('flags a promise awaited at boot whose result every request gets', async () => {
    const run = await runFixture('prisma-app.js', {
      env: ormFixtureEnv(),
      args: ['/count', '/count-caught', '/count-settled'],
    });
    expect(run.stdout).toBe('/count 200 3\n/count-caught 200 3\n/count-settled 200 3\n');
    const [boot] = prismaQueries(run.spans);
    expect(implied(boot)).toMatchObject({
      'querytrail.construction.line': line('item-count'),
      'querytrail.execution.phase': 'init',
      'code.line.number': line('boot-await'),
    });
    expect(prismaQueries(run.spans)).toHaveLength(1);
    expect(run.stderr).toMatch(
      /The prisma query built at init at \S+prisma-app\.js:\d+:\d+ is awaited in request GET \/count, but it already ran: it sends no query and returns the rows it read from \S+qt_app at init/,
    );
  });

  it('in strict mode, rejects the await of a memoised result instead of returning it', async () => {
    const run = await runFixture('prisma-app.js', {
      env: { ...ormFixtureEnv(), QUERYTRAIL_STRICT: 'init_query_in_request' },
      args: ['/count', '/count-caught', '/count-settled'],
    });
    const rejected = '500 {"name":"QueryTrailHazardError","code":"init_query_in_request"}';
    // the rejection goes to the app's own handlers: its .catch gets the error, .finally passes it on
    expect(run.stdout).toBe(
      `/count ${rejected}\n/count-caught 200 "QueryTrailHazardError"\n/count-settled ${rejected}\n`,
    );
  });
});
