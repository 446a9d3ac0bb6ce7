import * as path from 'node:path';
import {
  implied,
  FIXTURES,
  hazardEvent as event,
  hazardsOf,
  lineOf,
  ormFixtureEnv,
  runFixture,
  spansInRoute,
  topology,
  operationOf,
} from '../support/run-fixture';

const FIXTURE = path.join(FIXTURES, 'drizzle-app.js');
const line = (name: string) => lineOf(FIXTURE, name);

function hasResultCache(): boolean {
  try {
    require.resolve('drizzle-orm/cache/core');
    return true;
  } catch {
    return false;
  }
}

describe('drizzle-orm: the seed scenario', () => {
  it('names the init-built data source and the foreign sub-query, with the frozen cut-off', async () => {
    const run = await runFixture('drizzle-app.js', { env: ormFixtureEnv(), args: ['/seed'] });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('/seed 200 [1,2,3]\n'); // the analytics sub-query ran on qt_app
    const [span] = spansInRoute(run.spans, 'GET /seed');
    expect(implied(span)).toMatchObject({
      'querytrail.library': 'drizzle',
      'querytrail.construction.file': FIXTURE,
      'querytrail.construction.line': line('published'),
      'querytrail.construction.phase': 'init',
      'querytrail.execution.phase': 'request',
      'db.namespace': 'qt_app', // bound where it ran: the binding's location is not repeated
      'querytrail.parts.namespaces': ['qt_app', 'qt_analytics'],
    });
    // run after drizzle's own awaits: the line that awaited the builder, from V8's async frames
    expect(span.attributes).toMatchObject({ 'code.file.path': FIXTURE, 'code.line.number': line('seed') });
    expect(hazardsOf(span)).toEqual(['cross_database_query', 'init_query_in_request', 'frozen_parameter']);
    const cross = event(span, 'cross_database_query');
    expect(cross).toMatchObject({
      'querytrail.hazard.part.file': FIXTURE,
      'querytrail.hazard.part.line': line('seed-part'),
      'querytrail.hazard.part.namespace': 'qt_analytics',
      'querytrail.hazard.line': line('published'),
    });
    expect(event(span, 'init_query_in_request')['querytrail.hazard.line']).toBe(line('published'));
    expect(event(span, 'frozen_parameter')['querytrail.hazard.line']).toBe(line('published'));
  });

  it('finds foreign parts in $with CTEs and sql templates', async () => {
    // /execute first: its part is found as drizzle compiles it, before any builder's SQL is kept (the CTE's)
    const run = await runFixture('drizzle-app.js', { env: ormFixtureEnv(), args: ['/execute', '/cte'] });
    expect(run.stdout).toBe('/execute 200 3\n/cte 200 [1,2,3]\n');
    for (const route of ['GET /cte', 'GET /execute']) {
      const [span] = spansInRoute(run.spans, route);
      expect(hazardsOf(span)).toEqual(['cross_database_query']);
      const name = route === 'GET /cte' ? 'cte' : 'execute';
      expect(event(span, 'cross_database_query')['querytrail.hazard.part.line']).toBe(line(`${name}-part`));
      expect(span.attributes['code.line.number']).toBe(line(name));
    }
  });

  it('finds nothing wrong in same-database sub-queries and transactions', async () => {
    const run = await runFixture('drizzle-app.js', { env: ormFixtureEnv(), args: ['/same-db', '/transaction'] });
    expect(run.stdout).toBe('/same-db 200 [1,2]\n/transaction 200 3\n');
    const spans = [...spansInRoute(run.spans, 'GET /same-db'), ...spansInRoute(run.spans, 'GET /transaction')];
    expect(spans.map(operationOf)).toEqual(['SELECT', 'BEGIN', 'SELECT', 'COMMIT']);
    for (const span of spans) expect(hazardsOf(span)).toEqual([]);
    expect(run.stderr).toBe('');
  });

  it('traces relational queries (db.query.*) built at init', async () => {
    const run = await runFixture('drizzle-app.js', { env: ormFixtureEnv(), args: ['/relational'] });
    expect(run.stdout).toBe('/relational 200 1\n');
    const [span] = spansInRoute(run.spans, 'GET /relational');
    expect(span.attributes).toMatchObject({
      'querytrail.library': 'drizzle',
      'querytrail.construction.line': line('first-item'),
      'code.line.number': line('relational'),
      'querytrail.construction.phase': 'init',
      'db.namespace': 'qt_app', // bound where it ran: the binding's location is not repeated
    });
    expect(hazardsOf(span)).toEqual(['init_query_in_request', 'frozen_parameter']);
  });

  // drizzle < 0.44 (npm run test:versions) has no result cache: skipped there, not passed
  (hasResultCache() ? it : it.skip)('traces a query drizzle sends after looking in its result cache', async () => {
    const run = await runFixture('drizzle-app.js', { env: ormFixtureEnv(), args: ['/cached'] });
    expect(run.stdout).toBe('/cached 200 [1,2]\n');
    const [span] = spansInRoute(run.spans, 'GET /cached');
    expect(span.attributes).toMatchObject({ 'querytrail.library': 'drizzle', 'code.line.number': line('cached') });
  });

  it('shows a module-level withReplicas select pinned to the replica it picked at construction', async () => {
    const run = await runFixture('drizzle-app.js', { env: ormFixtureEnv(), args: ['/pinned', '/lock'] });
    // newer drizzle releases wrap the driver's error (name `Error`); older ones pass pg's own (`error`)
    expect(run.stdout).toMatch(/^\/pinned 200 1\n\/lock 500 \{"name":"(Error|error)","code":"25006"\}\n$/);
    const standbyPort = Number(new URL(topology().pair.standby).port);
    const [pinned] = spansInRoute(run.spans, 'GET /pinned');
    expect(pinned.attributes).toMatchObject({
      'server.port': standbyPort, // bound where it ran
      'querytrail.ran.role': 'replica',
      'querytrail.construction.line': line('pinned'),
      'code.line.number': line('pinned-await'),
    });
    expect(event(pinned, 'init_query_in_request')['querytrail.hazard.message']).toMatch(
      /drizzle-app\.js:\d+:\d+ runs in request GET \/pinned, .* bound to 127\.0\.0\.1:\d+\/qt_app since then/,
    );
    const [lock] = spansInRoute(run.spans, 'GET /lock');
    expect(hazardsOf(lock)).toEqual(['write_on_replica']);
    expect(lock.attributes['error.type']).toBe('25006');
  });
});

describe('drizzle-orm: the ESM build', () => {
  it('is instrumented in an ESM app started with --import querytrail/agent', async () => {
    const run = await runFixture('drizzle-esm.mjs', {
      env: ormFixtureEnv(),
      nodeArgs: ['--import', 'querytrail/agent'],
    });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('[1,2,3]\n');
    expect(run.spans.length).toBe(1);
    expect(implied(run.spans[0])).toMatchObject({
      'querytrail.library': 'drizzle',
      'querytrail.construction.file': path.join(FIXTURES, 'drizzle-esm.mjs'),
      'querytrail.construction.line': lineOf('drizzle-esm.mjs', 'query'),
      'code.line.number': lineOf('drizzle-esm.mjs', 'query'),
    });
    expect(hazardsOf(run.spans[0])).toEqual(['cross_database_query']);
  });
});
