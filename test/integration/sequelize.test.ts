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
} from '../support/run-fixture';

const FIXTURE = path.join(FIXTURES, 'sequelize-app.js');
const line = (name: string) => lineOf(FIXTURE, name);
const port = (url: string) => Number(new URL(url).port);
const modelQueries = (spans: ExportedSpan[]) => spans.filter((s) => s.attributes['querytrail.library'] === 'sequelize');

describe('sequelize with replication: where each query really ran', () => {
  it("reports the pool sequelize picked and the server's own word on where it ran", async () => {
    const run = await runFixture('sequelize-app.js', { env: ormFixtureEnv(), args: ['/routed'] });
    // the app asked each pool's server itself: the read pool's is in recovery, the write pool's is not
    expect(JSON.parse(run.stdout.replace('/routed 200 ', ''))).toEqual({
      read: [1],
      master: [1],
      readPoolInRecovery: true,
      writePoolInRecovery: false,
    });
    const [read, master, readProbe, writeProbe] = modelQueries(spansInRoute(run.spans, 'GET /routed'));
    const standby = port(topology().pair.standby);
    const primary = port(topology().pair.primary);
    expectRanOn([read, readProbe], 'read', standby, 'replica');
    expectRanOn([master, writeProbe], 'write', primary, 'primary');
    expect(implied(read)).toMatchObject({
      'querytrail.construction.file': FIXTURE,
      'querytrail.construction.line': line('replicated-read'),
      'code.line.number': line('replicated-read'),
    });
    for (const span of run.spans) expect(hazardsOf(span)).toEqual([]);
  });

  it('flags the write paths sequelize sends to the read pool, before the 25006 comes back', async () => {
    const run = await runFixture('sequelize-app.js', { env: ormFixtureEnv(), args: ['/lock', '/select-typed-update'] });
    expect(run.stdout).toBe(
      '/lock 500 {"name":"SequelizeDatabaseError","code":"25006"}\n/select-typed-update 500 {"name":"SequelizeDatabaseError","code":"25006"}\n',
    );
    for (const [route, writeLine] of [
      ['GET /lock', line('lock')],
      ['GET /select-typed-update', line('select-typed-update')],
    ] as const) {
      const [span] = modelQueries(spansInRoute(run.spans, route));
      expect(implied(span)).toMatchObject({
        'querytrail.bound.pool': 'read',
        'querytrail.ran.role': 'replica',
        'error.type': '25006',
      });
      expect(hazardsOf(span)).toEqual(['write_on_replica']);
      expect(event(span, 'write_on_replica')['querytrail.hazard.line']).toBe(writeLine);
    }
  });

  it('flags a read from the replica of a table the request just wrote on the primary, and not with useMaster', async () => {
    const run = await runFixture('sequelize-app.js', { env: ormFixtureEnv(), args: ['/order', '/order-master'] });
    expect(run.stdout).toBe('/order 200 1\n/order-master 200 1\n');
    const [write, read] = modelQueries(spansInRoute(run.spans, 'GET /order'));
    expect(hazardsOf(write)).toEqual([]);
    expect(hazardsOf(read)).toEqual(['read_after_write']);
    expect(event(read, 'read_after_write')).toMatchObject({
      'querytrail.hazard.line': line('read-after-update'),
      'querytrail.hazard.write.line': line('update'),
      'querytrail.hazard.table': 'items',
    });
    expect(event(read, 'read_after_write')['querytrail.hazard.message']).toContain('pass `useMaster: true`');
    for (const span of spansInRoute(run.spans, 'GET /order-master')) expect(hazardsOf(span)).toEqual([]);
  });

  it('flags a write to another database while a transaction is open, and nothing in a one-database transaction', async () => {
    const run = await runFixture('sequelize-app.js', {
      env: ormFixtureEnv(),
      args: ['/transfer', '/same-transaction'],
    });
    expect(run.stdout).toBe('/transfer 200 "done"\n/same-transaction 200 1\n');
    const flagged = modelQueries(spansInRoute(run.spans, 'GET /transfer')).filter((s) => hazardsOf(s).length > 0);
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

  it('flags an include of a model from another Sequelize instance', async () => {
    const run = await runFixture('sequelize-app.js', { env: ormFixtureEnv(), args: ['/include'] });
    // the include joined qt_app's own items, not qt_analytics'
    expect(run.stdout).toBe('/include 200 [[1,"alpha"],[2,"beta"],[3,"gamma"]]\n');
    const [span] = modelQueries(spansInRoute(run.spans, 'GET /include'));
    expect(hazardsOf(span)).toEqual(['cross_database_query']);
    expect(event(span, 'cross_database_query')).toMatchObject({
      'querytrail.hazard.part.namespace': 'qt_analytics',
      'querytrail.hazard.line': line('include'),
    });
    expect(event(span, 'cross_database_query')['querytrail.hazard.message']).toContain('include of Item');
  });

  it('flags a call started at module load whose promise a request awaits: it ran at boot, the request gets those rows', async () => {
    const run = await runFixture('sequelize-app.js', { env: ormFixtureEnv(), args: ['/boot-count', '/boot-count'] });
    expect(run.stdout).toBe('/boot-count 200 3\n/boot-count 200 3\n');
    // one query, at init; none in the requests
    const counts = modelQueries(run.spans).filter(
      (s) => implied(s)['querytrail.construction.line'] === line('boot-count'),
    );
    expect(counts.map((s) => s.attributes['querytrail.execution.phase'])).toEqual(['init']);
    expect(run.stderr).toMatch(
      /The sequelize query built at init at \S+sequelize-app\.js:\d+:\d+ is awaited in request GET \/boot-count, but it already ran: it sends no query and returns the rows it read from \S+qt_app at init/,
    );
  });

  it('in strict mode, rejects that await instead of returning the boot-time rows', async () => {
    const run = await runFixture('sequelize-app.js', {
      env: { ...ormFixtureEnv(), QUERYTRAIL_STRICT: 'init_query_in_request' },
      args: ['/boot-count'],
    });
    expect(run.stdout).toBe('/boot-count 500 {"name":"QueryTrailHazardError","code":"init_query_in_request"}\n');
  });
});
