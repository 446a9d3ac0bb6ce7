import * as path from 'node:path';
import * as semver from 'semver';
import {
  implied,
  FIXTURES,
  hazardEvent as event,
  hazardsOf,
  installedVersion,
  lineOf,
  autoCaptureEnv,
  runFixture,
  spansInRoute,
  topology,
  operationOf,
} from '../support/run-fixture';

const FIXTURE = path.join(FIXTURES, 'kysely-app.mjs');
/** The app is an ES module (kysely 0.29 ships only ESM), started as such apps are. */
const ESM = ['--import', 'querytrail/agent'];
const KYSELY_VERSION = installedVersion('kysely');
const line = (name: string) => lineOf(FIXTURE, name);

describe('kysely: the seed scenario', () => {
  it('names the init-built data source and the foreign sub-query, with the frozen cut-off', async () => {
    const run = await runFixture('kysely-app.mjs', { env: autoCaptureEnv(), nodeArgs: ESM, args: ['/seed'] });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('/seed 200 [1,2,3]\n'); // the analytics sub-query ran on qt_app
    const [span] = spansInRoute(run.spans, 'GET /seed');
    expect(implied(span)).toMatchObject({
      'querytrail.library': 'kysely',
      'querytrail.construction.file': FIXTURE,
      'querytrail.construction.line': line('published'),
      'querytrail.construction.phase': 'init',
      'querytrail.execution.phase': 'request',
      'db.namespace': 'qt_app', // bound where it ran: the binding's location is not repeated
      'querytrail.parts.namespaces': ['qt_app', 'qt_analytics'],
      'code.file.path': FIXTURE, // the line that awaited .execute(), from V8's async frames
      'code.line.number': line('seed'),
    });
    expect(hazardsOf(span)).toEqual(['cross_database_query', 'init_query_in_request', 'frozen_parameter']);
    expect(event(span, 'cross_database_query')).toMatchObject({
      'querytrail.hazard.part.file': FIXTURE,
      'querytrail.hazard.part.line': line('analytics-ids'),
      'querytrail.hazard.part.namespace': 'qt_analytics',
      'querytrail.hazard.line': line('published'),
    });
    expect(event(span, 'init_query_in_request')['querytrail.hazard.line']).toBe(line('published'));
    expect(event(span, 'frozen_parameter')['querytrail.hazard.line']).toBe(line('published'));
  });

  it('finds foreign sub-queries in CTEs, sql templates, streamed queries and selectFrom(subquery)', async () => {
    const run = await runFixture('kysely-app.mjs', {
      env: autoCaptureEnv(),
      nodeArgs: ESM,
      args: ['/cte', '/raw', '/stream', '/from-subquery'],
    });
    expect(run.stdout).toBe('/cte 200 [1,2,3]\n/raw 200 3\n/stream 200 [3,4,100]\n/from-subquery 200 [1,2,3]\n');
    for (const [route, partLine, partNamespace] of [
      ['GET /cte', line('analytics-ids'), 'qt_analytics'],
      ['GET /raw', line('analytics-ids'), 'qt_analytics'],
      ['GET /stream', line('stream-part'), 'qt_app'],
      ['GET /from-subquery', line('analytics-ids'), 'qt_analytics'],
    ] as const) {
      const [span] = spansInRoute(run.spans, route);
      expect(hazardsOf(span)).toEqual(['cross_database_query']);
      expect(event(span, 'cross_database_query')).toMatchObject({
        'querytrail.hazard.part.line': partLine,
        'querytrail.hazard.part.namespace': partNamespace,
      });
    }
  });

  it('finds nothing wrong in same-database sub-queries, expression sub-queries and transactions', async () => {
    const run = await runFixture('kysely-app.mjs', {
      env: autoCaptureEnv(),
      nodeArgs: ESM,
      args: ['/same-db', '/expression', '/transaction'],
    });
    expect(run.stdout).toBe('/same-db 200 [1,2]\n/expression 200 [1,2]\n/transaction 200 3\n');
    const spans = ['GET /same-db', 'GET /expression', 'GET /transaction'].flatMap((route) =>
      spansInRoute(run.spans, route),
    );
    expect(spans.map(operationOf)).toEqual(['SELECT', 'SELECT', 'BEGIN', 'SELECT', 'COMMIT']);
    for (const span of spans) expect(hazardsOf(span)).toEqual([]);
    expect(run.stderr).toBe('');
  });

  it('flags a builder cached by one request and run by another', async () => {
    const run = await runFixture('kysely-app.mjs', {
      env: autoCaptureEnv(),
      nodeArgs: ESM,
      args: ['/cached', '/cached'],
    });
    expect(run.stdout).toBe('/cached 200 [2]\n/cached 200 [2]\n');
    const [first, second] = spansInRoute(run.spans, 'GET /cached');
    expect(hazardsOf(first)).toEqual([]);
    expect(hazardsOf(second)).toEqual(['cross_request_reuse']);
    expect(event(second, 'cross_request_reuse')['querytrail.hazard.line']).toBe(line('cached'));
  });

  it('in strict mode, rejects the cross-database query before it reaches the server', async () => {
    const run = await runFixture('kysely-app.mjs', {
      env: { ...autoCaptureEnv(), QUERYTRAIL_STRICT: 'cross_database_query' },
      nodeArgs: ESM,
      args: ['/seed', '/same-db'],
    });
    expect(run.stdout).toBe(
      '/seed 500 {"name":"QueryTrailHazardError","code":"cross_database_query"}\n/same-db 200 [1,2]\n',
    );
    const [span] = spansInRoute(run.spans, 'GET /seed');
    expect(span.attributes['error.type']).toBe('QueryTrailHazardError');
    expect(span.attributes['db.response.status_code']).toBeUndefined(); // the server never answered it
  });
});

describe('kysely-replication: routed at execution', () => {
  it('reports the server each query really ran on, and a FOR UPDATE routed to the replica', async () => {
    const run = await runFixture('kysely-app.mjs', {
      env: autoCaptureEnv(),
      nodeArgs: ESM,
      args: ['/routed', '/lock'],
    });
    expect(run.stdout).toBe('/routed 200 [1]\n/lock 500 {"name":"error","code":"25006"}\n');
    const primaryPort = Number(new URL(topology().pair.primary).port);
    const standbyPort = Number(new URL(topology().pair.standby).port);
    const [routed] = spansInRoute(run.spans, 'GET /routed');
    // bound to the instance's primary dialect; kysely-replication sent the select to the standby
    expect(routed.attributes).toMatchObject({
      'querytrail.bound.port': primaryPort, // bound elsewhere than it ran: said
      'server.port': standbyPort,
      'querytrail.ran.role': 'replica',
      'querytrail.construction.line': line('routed'),
    });
    expect(hazardsOf(routed)).toEqual([]);
    const [lock] = spansInRoute(run.spans, 'GET /lock');
    expect(hazardsOf(lock)).toEqual(['write_on_replica']);
    expect(event(lock, 'write_on_replica')['querytrail.hazard.message']).toMatch(
      /^SELECT items at .*kysely-app\.mjs:\d+:\d+ was sent to 127\.0\.0\.1:\d+\/qt_app, a replica \(in_hot_standby=on\)/,
    );
    expect(lock.attributes['error.type']).toBe('25006');
  });
});

describe('kysely: a CommonJS app', () => {
  const cjs = path.join(FIXTURES, 'kysely-cjs.js');
  if (semver.lt(KYSELY_VERSION, '0.29.0')) {
    it('is instrumented through the CommonJS build', async () => {
      const run = await runFixture('kysely-cjs.js', { env: autoCaptureEnv() });
      expect(run.code).toBe(0);
      expect(run.stdout).toBe('[1,2,3]\n');
      expect(run.spans.length).toBe(1);
      expect(implied(run.spans[0])).toMatchObject({
        'querytrail.library': 'kysely',
        'querytrail.construction.file': cjs,
        'querytrail.construction.line': lineOf(cjs, 'query'),
        'code.line.number': lineOf(cjs, 'query'),
        'db.namespace': 'qt_app', // bound where it ran: the binding's location is not repeated
      });
      expect(hazardsOf(run.spans[0])).toEqual(['cross_database_query']);
    });
  } else {
    it(`says that kysely ${KYSELY_VERSION}, an ES module loaded with require(), is not instrumented`, async () => {
      const run = await runFixture('kysely-cjs.js', { env: autoCaptureEnv() });
      expect(run.code).toBe(0);
      expect(run.stdout).toBe('[1,2,3]\n');
      expect(run.stderr).toContain(
        `querytrail: kysely ${KYSELY_VERSION} is an ES module loaded with require(), which querytrail cannot patch`,
      );
      expect(run.spans.map((span) => span.attributes['querytrail.library'])).toEqual(['pg']);
    });
  }
});
