import * as path from 'node:path';
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

const FIXTURE = path.join(FIXTURES, 'typeorm-app.js');
const line = (name: string) => lineOf(FIXTURE, name);
const port = (url: string) => Number(new URL(url).port);
const typeormQueries = (spans: ExportedSpan[]) => spans.filter((s) => s.attributes['querytrail.library'] === 'typeorm');

describe('typeorm with replication: where each query really ran', () => {
  it("reports the query runner's pool and the server's own word on where it ran", async () => {
    const run = await runFixture('typeorm-app.js', { env: ormFixtureEnv(), args: ['/routed'] });
    // the app asked each pool's server itself: the slave's is in recovery, the master's is not
    expect(JSON.parse(run.stdout.replace('/routed 200 ', ''))).toEqual({
      read: [1],
      builder: [1],
      master: [1],
      slaveInRecovery: true,
      masterInRecovery: false,
    });
    const [find, builder, master, slaveProbe, masterProbe] = typeormQueries(spansInRoute(run.spans, 'GET /routed'));
    const standby = port(topology().pair.standby);
    const primary = port(topology().pair.primary);
    expectRanOn([find, builder, slaveProbe], 'slave', standby, 'replica');
    expectRanOn([master, masterProbe], 'master', primary, 'primary');
    expect(implied(find)).toMatchObject({
      'querytrail.construction.file': FIXTURE,
      'querytrail.construction.line': line('find'),
      'code.line.number': line('find'),
    });
    expect(implied(builder)).toMatchObject({
      'querytrail.construction.line': line('builder'),
      'code.line.number': line('builder'),
    });
    expect(implied(slaveProbe)).toMatchObject({ 'querytrail.construction.line': line('probe') });
    for (const span of run.spans) expect(hazardsOf(span)).toEqual([]);
  });

  it('flags the write paths typeorm sends to a slave, before the 25006 comes back', async () => {
    const run = await runFixture('typeorm-app.js', { env: ormFixtureEnv(), args: ['/cte-write', '/slave-write'] });
    expect(run.stdout).toBe(
      '/cte-write 500 {"name":"QueryFailedError","code":"25006"}\n/slave-write 500 {"name":"QueryFailedError","code":"25006"}\n',
    );
    for (const [route, writeLine] of [
      ['GET /cte-write', line('cte-write')],
      ['GET /slave-write', line('slave-write')],
    ] as const) {
      const [span] = typeormQueries(spansInRoute(run.spans, route));
      expect(implied(span)).toMatchObject({
        'querytrail.bound.pool': 'slave',
        'querytrail.ran.role': 'replica',
        'error.type': '25006',
      });
      expect(hazardsOf(span)).toEqual(['write_on_replica']);
      expect(event(span, 'write_on_replica')['querytrail.hazard.line']).toBe(writeLine);
    }
  });

  it('flags a read from a slave of a table the request just wrote on the master, and not through a master runner', async () => {
    const run = await runFixture('typeorm-app.js', { env: ormFixtureEnv(), args: ['/order', '/order-master'] });
    expect(run.stdout).toBe('/order 200 1\n/order-master 200 1\n');
    const [write, read] = typeormQueries(spansInRoute(run.spans, 'GET /order'));
    expect(implied(write)).toMatchObject({ 'querytrail.bound.pool': 'master', 'querytrail.ran.role': 'primary' });
    expect(hazardsOf(write)).toEqual([]);
    expect(hazardsOf(read)).toEqual(['read_after_write']);
    expect(event(read, 'read_after_write')).toMatchObject({
      'querytrail.hazard.line': line('read-after-update'),
      'querytrail.hazard.write.line': line('update'),
      'querytrail.hazard.table': 'items',
    });
    expect(event(read, 'read_after_write')['querytrail.hazard.message']).toContain("createQueryRunner('master')");
    for (const span of spansInRoute(run.spans, 'GET /order-master')) expect(hazardsOf(span)).toEqual([]);
  });

  it('flags a write to another database while a transaction is open, and nothing in a one-database transaction', async () => {
    const run = await runFixture('typeorm-app.js', { env: ormFixtureEnv(), args: ['/transfer', '/same-transaction'] });
    expect(run.stdout).toBe('/transfer 200 "done"\n/same-transaction 200 1\n');
    const transfer = typeormQueries(spansInRoute(run.spans, 'GET /transfer'));
    // the transaction's own statements carry the line that started it
    expect(transfer.map((s) => [operationOf(s), implied(s)['querytrail.construction.line']])).toEqual([
      ['START', line('transaction')],
      ['UPDATE', line('transfer-update')],
      ['UPDATE', line('analytics-write')],
      ['COMMIT', line('transaction')],
    ]);
    const flagged = transfer.filter((s) => hazardsOf(s).length > 0);
    expect(flagged).toHaveLength(1);
    expect(implied(flagged[0])).toMatchObject({
      'db.namespace': 'qt_analytics',
      'db.query.summary': expect.stringMatching(/^UPDATE\b/),
    });
    expect(event(flagged[0], 'cross_database_transaction')).toMatchObject({
      'querytrail.hazard.line': line('analytics-write'),
      'querytrail.hazard.transaction.line': line('transaction'),
      'querytrail.hazard.transaction.namespace': 'qt_app',
    });
    for (const span of spansInRoute(run.spans, 'GET /same-transaction')) expect(hazardsOf(span)).toEqual([]);
  });

  it('flags a sub-query or CTE built on another DataSource, and not one built on the same', async () => {
    const run = await runFixture('typeorm-app.js', {
      env: ormFixtureEnv(),
      args: ['/from-subquery', '/cte-foreign', '/join-foreign', '/same-subquery'],
    });
    // every part read qt_app's items (1, 2, 3), not qt_analytics' (3, 4, 100)
    expect(run.stdout).toBe(
      '/from-subquery 200 [1,2,3]\n/cte-foreign 200 [1,2,3]\n/join-foreign 200 [1,2,3]\n/same-subquery 200 [1,2,3]\n',
    );
    for (const [route, outer, part] of [
      ['GET /from-subquery', 'from-subquery', 'part'],
      ['GET /cte-foreign', 'cte-foreign', 'cte-part'],
      ['GET /join-foreign', 'join-foreign', 'part'],
    ] as const) {
      const [span] = typeormQueries(spansInRoute(run.spans, route));
      expect(hazardsOf(span)).toEqual(['cross_database_query']);
      expect(span.attributes['querytrail.parts.namespaces']).toEqual(['qt_app', 'qt_analytics']);
      expect(event(span, 'cross_database_query')).toMatchObject({
        'querytrail.hazard.line': line(outer),
        'querytrail.hazard.part.line': line(part),
        'querytrail.hazard.part.namespace': 'qt_analytics',
      });
      expect(event(span, 'cross_database_query')['querytrail.hazard.message']).toContain(
        `typeorm-app.js:${line(part)}:`,
      );
    }
    for (const span of spansInRoute(run.spans, 'GET /same-subquery')) expect(hazardsOf(span)).toEqual([]);
  });

  it('flags a builder made at module load, before initialize(), run in a request with its boot-time date', async () => {
    const run = await runFixture('typeorm-app.js', { env: ormFixtureEnv(), args: ['/published', '/raw'] });
    expect(run.stdout).toBe('/published 200 [1,2,3]\n/raw 200 3\n');
    const [span] = typeormQueries(spansInRoute(run.spans, 'GET /published'));
    expect(implied(span)).toMatchObject({
      'querytrail.construction.phase': 'init',
      'querytrail.construction.line': line('published'),
      'code.line.number': line('published-run'),
    });
    expect(hazardsOf(span)).toEqual(['init_query_in_request', 'frozen_parameter']);
    expect(event(span, 'init_query_in_request')['querytrail.hazard.line']).toBe(line('published'));
    const [raw] = typeormQueries(spansInRoute(run.spans, 'GET /raw'));
    expect(implied(raw)).toMatchObject({
      'querytrail.construction.line': line('raw'),
      'code.line.number': line('raw'),
      'querytrail.construction.phase': 'request',
    });
    expect(hazardsOf(raw)).toEqual([]);
  });

  it('flags a request-time clone of the init-time builder, naming the line that built the original', async () => {
    const run = await runFixture('typeorm-app.js', { env: ormFixtureEnv(), args: ['/cached'] });
    expect(run.stdout).toBe('/cached 200 [2,3]\n');
    const [span] = typeormQueries(spansInRoute(run.spans, 'GET /cached'));
    expect(implied(span)).toMatchObject({
      'querytrail.construction.line': line('published'),
      'code.line.number': line('cached'),
    });
    expect(hazardsOf(span)).toEqual(['init_query_in_request', 'frozen_parameter']);
  });
});

describe('typeorm: a call made at boot, awaited in a request', () => {
  it('flags the await: typeorm ran it at boot, the request gets those rows without a query', async () => {
    const run = await runFixture('typeorm-app.js', { env: ormFixtureEnv(), args: ['/boot-count', '/boot-count'] });
    expect(run.stdout).toBe('/boot-count 200 3\n/boot-count 200 3\n');
    const counts = typeormQueries(run.spans).filter(
      (s) => implied(s)['querytrail.construction.line'] === line('boot-count'),
    );
    expect(counts.map((s) => s.attributes['querytrail.execution.phase'])).toEqual(['init']);
    expect(run.stderr).toMatch(
      /The typeorm query built at init at \S+typeorm-app\.js:\d+:\d+ is awaited in request GET \/boot-count, but it already ran: it sends no query/,
    );
  });
});

describe('typeorm: an ESM app', () => {
  it('is instrumented when started with --import querytrail/agent (typeorm/index.mjs wraps the CommonJS build)', async () => {
    const run = await runFixture('typeorm-esm.mjs', {
      env: ormFixtureEnv(),
      nodeArgs: ['--import', 'querytrail/agent'],
    });
    expect(run.code).toBe(0);
    // whereExists ran qt_analytics' builder on qt_app, which has no row 100
    expect(run.stdout).toBe('[]\n');
    const [span] = typeormQueries(run.spans).filter(
      (s) => implied(s)['querytrail.construction.line'] === lineOf('typeorm-esm.mjs', 'query'),
    );
    expect(implied(span)).toMatchObject({
      'querytrail.construction.file': path.join(FIXTURES, 'typeorm-esm.mjs'),
      'db.namespace': 'qt_app', // bound where it ran: the binding's location is not repeated
    });
    expect(hazardsOf(span)).toEqual(['cross_database_query']);
  });
});
