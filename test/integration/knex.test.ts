import * as path from 'node:path';
import {
  implied,
  FIXTURES,
  hazardEvent as event,
  hazardsOf,
  lineOf,
  autoCaptureEnv,
  ormFixtureEnv,
  runFixture,
  spansInRoute,
  operationOf,
} from '../support/run-fixture';

const FIXTURE = path.join(FIXTURES, 'knex-app.js');
const line = (name: string) => lineOf(FIXTURE, name);

describe('knex: the seed scenario', () => {
  it('names the init-built data source and the foreign sub-query, with the frozen cut-off', async () => {
    const run = await runFixture('knex-app.js', { env: autoCaptureEnv(), args: ['/seed'] });
    expect(run.code).toBe(0);
    // knex compiled the analytics sub-query into SQL for qt_app: ids of qt_app, not analytics' [3]
    expect(run.stdout).toBe('/seed 200 [1,2,3]\n');
    const [span] = spansInRoute(run.spans, 'GET /seed');
    expect(implied(span)).toMatchObject({
      'querytrail.library': 'knex',
      'querytrail.construction.file': FIXTURE,
      'querytrail.construction.line': line('seed'),
      'querytrail.execution.phase': 'request', // built in that phase too: no construction.phase
      'db.namespace': 'qt_app', // bound where it ran: the binding's location is not repeated
      'querytrail.parts.namespaces': ['qt_app', 'qt_analytics'],
    });
    expect(span.attributes).not.toHaveProperty(['querytrail.construction.phase']);
    // knex sends it after its own awaits: the line that awaited the builder, from V8's async frames
    expect(span.attributes).toMatchObject({ 'code.file.path': FIXTURE, 'code.line.number': line('seed') });
    // derived from the init-time base: its origin, on the span itself
    expect(implied(span)).toMatchObject({
      'querytrail.origin.file': FIXTURE,
      'querytrail.origin.line': line('published'),
      'querytrail.origin.phase': 'init',
    });
    expect(Number(span.attributes['querytrail.origin.age_ms'])).toBeGreaterThan(0);
    expect(hazardsOf(span)).toEqual(['cross_database_query', 'init_query_in_request', 'frozen_parameter']);

    const cross = event(span, 'cross_database_query');
    expect(cross['querytrail.hazard.severity']).toBe('error');
    expect(cross['querytrail.hazard.part.file']).toBe(FIXTURE);
    expect(cross['querytrail.hazard.part.line']).toBe(line('seed'));
    expect(cross['querytrail.hazard.part.namespace']).toBe('qt_analytics');
    expect(cross['querytrail.hazard.message']).toMatch(
      /^The knex query built in a request at .*knex-app\.js:\d+:\d+ \(bound to 127\.0\.0\.1:5432\/qt_app\) embeds a sub-query built at .*knex-app\.js:\d+:\d+ for .*\/qt_analytics, but it is all sent to .*\/qt_app/,
    );

    const init = event(span, 'init_query_in_request');
    expect(init['querytrail.hazard.line']).toBe(line('published'));
    expect(init['querytrail.hazard.message']).toMatch(
      /^The knex query built at init at .*knex-app\.js:\d+:\d+ \(derived from it in a request at .*knex-app\.js:\d+:\d+\) runs in request GET \/seed, [\d.]+ s after it was built/,
    );

    const frozen = event(span, 'frozen_parameter');
    expect(frozen['querytrail.hazard.line']).toBe(line('published'));
    expect(Number(frozen['querytrail.hazard.stale_ms'])).toBeGreaterThan(0);

    // readable warnings name the lines to change
    expect(run.stderr).toMatch(new RegExp(`querytrail error: cross_database_query[\\s\\S]*> +${line('seed')} \\|`));
    expect(run.stderr).toMatch(
      new RegExp(`querytrail warning: init_query_in_request[\\s\\S]*> +${line('published')} \\| const published`),
    );
  });

  it('finds nothing wrong in same-database sub-queries and transactions', async () => {
    const run = await runFixture('knex-app.js', { env: autoCaptureEnv(), args: ['/same-db', '/transaction'] });
    expect(run.stdout).toBe('/same-db 200 [1,2]\n/transaction 200 3\n');
    const spans = [...spansInRoute(run.spans, 'GET /same-db'), ...spansInRoute(run.spans, 'GET /transaction')];
    expect(spans.map(operationOf)).toEqual(['SELECT', 'BEGIN', 'SELECT', 'COMMIT']);
    for (const span of spans) expect(hazardsOf(span)).toEqual([]);
    expect(run.stderr).toBe('');
    // the query built inside a transaction and the one it embeds are bound to the same database
    expect(spans[2].attributes['querytrail.parts.namespaces']).toBeUndefined();
  });

  it('says that knex re-bound an embedded raw to the outer database for good', async () => {
    const run = await runFixture('knex-app.js', { env: autoCaptureEnv(), args: ['/raw'] });
    expect(run.stdout).toBe('/raw 200 {"embedded":[1,2,3],"alone":[1,2,3]}\n');
    const [embedded, alone] = spansInRoute(run.spans, 'GET /raw');
    expect(event(embedded, 'cross_database_query')['querytrail.hazard.message']).toMatch(
      /embeds a raw fragment built at .*knex-app\.js:\d+:\d+ for .*qt_analytics.* Knex has also re-bound that raw fragment to .*qt_app for good: run alone later, it queries .*qt_app\./,
    );
    // run alone, the raw built for qt_analytics now runs on qt_app, and the span shows both
    expect(alone.attributes['querytrail.bound.namespace']).toBe('qt_analytics');
    expect(alone.attributes['db.namespace']).toBe('qt_app');
  });

  it('flags a query object cached across requests', async () => {
    const run = await runFixture('knex-app.js', { env: autoCaptureEnv(), args: ['/cached', '/cached'] });
    const [first, second] = spansInRoute(run.spans, 'GET /cached');
    expect(hazardsOf(first)).toEqual([]);
    expect(hazardsOf(second)).toEqual(['cross_request_reuse']);
    expect(event(second, 'cross_request_reuse')['querytrail.hazard.line']).toBe(line('cached'));
  });

  it('in strict mode, rejects the cross-database query before it reaches the server', async () => {
    const run = await runFixture('knex-app.js', {
      env: { ...autoCaptureEnv(), QUERYTRAIL_STRICT: 'cross_database_query' },
      args: ['/seed', '/same-db'],
    });
    expect(run.stdout).toBe(
      '/seed 500 {"name":"QueryTrailHazardError","code":"cross_database_query"}\n/same-db 200 [1,2]\n',
    );
    const [span] = spansInRoute(run.spans, 'GET /seed');
    expect(span.attributes['error.type']).toBe('QueryTrailHazardError');
    expect(span.attributes['db.response.status_code']).toBeUndefined(); // the server never answered it
  });

  it('by default (lean), detects on the first occurrence, names where it ran, and the request-built part from the next', async () => {
    const run = await runFixture('knex-app.js', { env: ormFixtureEnv(), args: ['/seed', '/seed'] });
    expect(run.stdout).toBe('/seed 200 [1,2,3]\n/seed 200 [1,2,3]\n');
    const [first, second] = spansInRoute(run.spans, 'GET /seed');
    for (const span of [first, second]) {
      expect(hazardsOf(span)).toEqual(['cross_database_query', 'init_query_in_request', 'frozen_parameter']);
      expect(event(span, 'init_query_in_request')['querytrail.hazard.line']).toBe(line('published')); // init constructions are always recorded
    }
    expect(event(first, 'cross_database_query')['querytrail.hazard.part.line']).toBeUndefined();
    expect(event(first, 'cross_database_query')['querytrail.hazard.message']).toContain(
      'a site not recorded (QUERYTRAIL_CAPTURE)',
    );
    expect(event(second, 'cross_database_query')['querytrail.hazard.part.line']).toBe(line('seed'));
    // where it ran is named from the first: V8's async frames at the driver
    expect(first.attributes).toMatchObject({ 'code.file.path': FIXTURE, 'code.line.number': line('seed') });
    expect(first.attributes['querytrail.construction.line']).toBeUndefined();
  });

  it('carries the trail into .stream() runs', async () => {
    const run = await runFixture('knex-app.js', { env: autoCaptureEnv(), args: ['/stream'] });
    expect(run.stdout).toBe('/stream 200 [1,2,3]\n');
    const [span] = spansInRoute(run.spans, 'GET /stream');
    // the clone is built where it runs; its lineage root, with the frozen cut-off, at init
    expect(span.attributes).toMatchObject({
      'querytrail.library': 'knex',
      'querytrail.construction.line': line('stream'),
      'code.line.number': line('stream'),
      'querytrail.origin.line': line('published'),
      'db.namespace': 'qt_app', // bound where it ran: the binding's location is not repeated
    });
    expect(hazardsOf(span)).toEqual(['init_query_in_request', 'frozen_parameter']);
    expect(event(span, 'init_query_in_request')['querytrail.hazard.line']).toBe(line('published'));
    expect(event(span, 'frozen_parameter')['querytrail.hazard.line']).toBe(line('published'));
  });

  it('runs init-time queries without a hazard', async () => {
    const run = await runFixture('knex-app.js', { env: autoCaptureEnv(), args: [] });
    const init = run.spans.find((s) => String(s.attributes['db.query.text']).includes('at_init'))!;
    expect(init.attributes).toMatchObject({
      'querytrail.library': 'knex',
      'querytrail.execution.phase': 'init',
      'querytrail.construction.line': line('at-init'),
      'code.line.number': line('at-init'),
    });
    expect(hazardsOf(init)).toEqual([]);
  });
});
