import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { spawnSync } from 'node:child_process';
import * as semver from 'semver';
import {
  AGENT,
  AGENT_ESM,
  FIXTURES,
  hazardsOf,
  installedVersion,
  lineOf,
  ROOT,
  runFixture,
  topology,
  urlParts,
  implied,
  operationOf,
} from '../support/run-fixture';
import { StripParameterProxy } from '../support/strip-parameter-proxy';

const pair = () => ({ QT_PRIMARY: topology().pair.primary, QT_STANDBY: topology().pair.standby });

describe('pg: where each query ran, by the server’s own word', () => {
  it('says primary on the primary and replica on the standby, and flags the write sent to the standby', async () => {
    const run = await runFixture('pg-roles.js', { env: pair() });
    expect(run.code).toBe(0);
    const seen = JSON.parse(run.stdout);
    expect(seen.primary.in_recovery).toBe(false);
    expect(seen.standby.in_recovery).toBe(true);
    const serverPorts = { primary: seen.primary.port, standby: seen.standby.port };
    expect(seen.insert).toEqual({ name: 'error', code: '25006' });

    const byPort = (port: number) => run.spans.filter((s) => s.attributes['server.port'] === port);
    expect(byPort(serverPorts.primary).length).toBe(2);
    expect(byPort(serverPorts.standby).length).toBe(3);
    for (const span of byPort(serverPorts.primary)) expect(span.attributes['querytrail.ran.role']).toBe('primary');
    for (const span of byPort(serverPorts.standby)) expect(span.attributes['querytrail.ran.role']).toBe('replica');

    const insert = run.spans.find((s) => operationOf(s) === 'INSERT')!;
    expect(insert.attributes['error.type']).toBe('25006');
    expect(insert.attributes['db.response.status_code']).toBe('25006');
    expect(insert.status.code).toBe('ERROR');
    expect(hazardsOf(insert)).toEqual(['write_on_replica']);
    const event = insert.events[0].attributes;
    expect(event['querytrail.hazard.severity']).toBe('error');
    expect(event['querytrail.hazard.message']).toMatch(
      /INSERT items at .*pg-roles\.js:\d+:\d+ was sent to .*a replica \(in_hot_standby=on\)/,
    );
    expect(event['querytrail.hazard.line']).toBe(lineOf('pg-roles.js', 'standby-insert'));
    // the readable warning names the line and shows it
    expect(run.stderr).toMatch(/querytrail error: write_on_replica/);
    expect(run.stderr).toMatch(/> +15 \| +await standby\.query/);
    // no other span carries a hazard
    expect(run.spans.filter((s) => s !== insert && hazardsOf(s).length)).toEqual([]);
  });

  it('in strict mode, rejects the write before it reaches the standby', async () => {
    const run = await runFixture('pg-roles.js', { env: { ...pair(), QUERYTRAIL_STRICT: 'write_on_replica' } });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).insert).toEqual({ name: 'QueryTrailHazardError', code: 'write_on_replica' });
    const insert = run.spans.find((s) => operationOf(s) === 'INSERT')!;
    expect(insert.attributes['error.type']).toBe('QueryTrailHazardError');
    expect(hazardsOf(insert)).toEqual(['write_on_replica']);
  });

  it('flags a database declared primary that answers as a replica (bound_ran_mismatch)', async () => {
    const standby = new URL(topology().pair.standby);
    const primary = new URL(topology().pair.primary);
    const databases = `main=postgres://127.0.0.1:${primary.port}/qt_app?role=primary,reports=postgres://127.0.0.1:${standby.port}/qt_app?role=primary`;
    const run = await runFixture('pg-roles.js', { env: { ...pair(), QUERYTRAIL_DATABASES: databases } });
    expect(run.code).toBe(0);
    const onStandby = run.spans.filter((s) => s.attributes['server.port'] === Number(standby.port));
    expect(onStandby.length).toBe(3);
    for (const span of onStandby) {
      expect(span.attributes['querytrail.ran.alias']).toBe('reports');
      expect(span.attributes['querytrail.bound.role']).toBe('primary');
      expect(hazardsOf(span)).toContain('bound_ran_mismatch');
    }
    const onPrimary = run.spans.filter((s) => s.attributes['server.port'] === Number(primary.port));
    for (const span of onPrimary) {
      expect(span.attributes['querytrail.ran.alias']).toBe('main');
      expect(hazardsOf(span)).toEqual([]);
    }
    const mismatch = onStandby[0].events.find((e) => e.attributes['querytrail.hazard.code'] === 'bound_ran_mismatch')!;
    expect(mismatch.attributes['querytrail.hazard.message']).toMatch(
      /ran on reports, declared primary in QUERYTRAIL_DATABASES, but the server says it is a replica/,
    );
    // one readable warning per site: the standby ran queries from lines 10, 12 and 15
    expect(run.stderr.match(/warning: bound_ran_mismatch/g)?.length).toBe(3);
  });
});

describe('pg: servers that do not report in_hot_standby (PostgreSQL < 14, some proxies)', () => {
  it("asks pg_is_in_recovery() on a connection of its own, never the app's, and still flags the write", async () => {
    const standby = new URL(topology().pair.standby);
    const proxy = new StripParameterProxy({ host: '127.0.0.1', port: Number(standby.port) }, 'in_hot_standby');
    const proxyPort = await proxy.start();
    try {
      standby.port = String(proxyPort);
      const run = await runFixture('pg-roles.js', { env: { ...pair(), QT_STANDBY: standby.href } });
      expect(run.code).toBe(0);
      const seen = JSON.parse(run.stdout);
      expect(seen.standby.in_recovery).toBe(true);
      const viaProxy = run.spans.filter((s) => s.attributes['server.port'] === proxyPort);
      // the probe is not a span of its own: exactly the app's three queries
      expect(viaProxy.map(operationOf)).toEqual(['SELECT', 'SELECT', 'INSERT']);
      for (const span of viaProxy) expect(span.attributes['querytrail.ran.role']).toBe('replica');
      const insert = viaProxy[2];
      expect(insert.attributes['error.type']).toBe('25006');
      expect(hazardsOf(insert)).toEqual(['write_on_replica']);
      expect(insert.events[0].attributes['querytrail.hazard.message']).toContain(
        'a replica (pg_is_in_recovery()=true)',
      );
    } finally {
      await proxy.stop();
    }
  });
});

describe('pg: every API, one span each, and the app sees exactly what it sees without the agent', () => {
  it('keeps results and errors identical', async () => {
    const env = { QT_PRIMARY: topology().primary };
    const [bare, traced] = await Promise.all([
      runFixture('pg-api.js', { env, nodeArgs: [] }),
      runFixture('pg-api.js', { env }),
    ]);
    expect(bare.code).toBe(0);
    expect(traced.code).toBe(0);
    expect(traced.stdout).toBe(bare.stdout);
    expect(bare.spans).toEqual([]);
    const labels = JSON.parse(traced.stdout).map((r: { label: string }) => r.label);
    expect(labels).toEqual([
      'promise',
      'pool callback',
      'client callback',
      'prepared 1',
      'prepared 2',
      'query object',
      'cursor',
      'stream',
      'promise error',
      'callback error',
      'submittable error',
      'thrown',
    ]);
  });

  it('a query that waited for a busy pool is traced in its own context, not the one that released the client', async () => {
    const run = await runFixture('pg-busy-pool.js', { env: { QT_PRIMARY: topology().primary } });
    expect(run.stdout.trim()).toBe('done');
    const queries = run.spans.filter((s) => s.kind === 'CLIENT');
    expect(queries).toHaveLength(6);
    // each job's queries are children of its own span
    const parentsOf = (text: string) =>
      new Set(queries.filter((s) => s.attributes['db.query.text'] === text).map((s) => s.parentSpanId));
    const [a, b] = [parentsOf('SELECT ? AS a'), parentsOf('SELECT ? AS b')];
    expect([a.size, b.size]).toEqual([1, 1]);
    expect([...a][0]).toBeDefined();
    expect([...a][0]).not.toBe([...b][0]);
  });

  it('records one CLIENT span per query with the contract attributes', async () => {
    const run = await runFixture('pg-api.js', { env: { QT_PRIMARY: topology().primary } });
    const { port, database } = urlParts(topology().primary);
    // 11 queries (the thrown call never became one); the role probe is not a span
    expect(run.spans.map((s) => s.attributes['db.query.text'])).toEqual([
      'SELECT name FROM items WHERE id <= $1 ORDER BY id',
      'SELECT count(*)::int AS n FROM items',
      'SELECT $1::text AS echo',
      'SELECT name FROM items WHERE id = $1',
      'SELECT name FROM items WHERE id = $1',
      'SELECT id FROM items ORDER BY id',
      'SELECT id FROM items ORDER BY id',
      'SELECT name FROM items ORDER BY id',
      'SELECT * FROM no_such_table',
      'SELEC ?',
      'SELECT ?/?',
    ]);
    for (const span of run.spans) {
      expect(span.kind).toBe('CLIENT');
      expect(implied(span)).toMatchObject({
        'db.system.name': 'postgresql',
        'db.namespace': database,
        'server.port': port,
        'querytrail.library': 'pg',
        'querytrail.ran.role': 'primary',
        'querytrail.execution.phase': 'init',
        'code.file.path': path.join(FIXTURES, 'pg-api.js'),
      });
      // built where and when it ran: no construction site, phase nor age of its own
      for (const said of ['querytrail.construction.phase', 'querytrail.construction.age_ms', 'db.operation.name']) {
        expect(span.attributes).not.toHaveProperty([said]);
      }
      expect(implied(span)['querytrail.construction.line']).toBe(span.attributes['code.line.number']);
    }
    const lines = run.spans.map((s) => s.attributes['code.line.number']);
    const tagged = ['promise', 'pool-callback', 'client-callback', 'prepared', 'prepared', 'query-object', 'cursor'];
    tagged.push('stream', 'promise-error', 'callback-error', 'submittable-error');
    expect(lines).toEqual(tagged.map((name) => lineOf('pg-api.js', name)));
    expect(run.spans[0].name).toBe('SELECT items');
    expect(run.spans[8].attributes['error.type']).toBe('42P01');
    expect(run.spans[9].attributes['error.type']).toBe('42601');
    expect(run.spans[10].attributes['error.type']).toBe('22012');
    // the cursor's span lasts until it is closed, after two reads
    expect(run.spans[6].status.code).toBe('UNSET');
    // parameter values are not recorded unless asked
    expect(Object.keys(run.spans[0].attributes).some((k) => k.startsWith('db.query.parameter'))).toBe(false);
  });

  it('records a span per new connection only when QUERYTRAIL_CONNECT_SPANS=true', async () => {
    const without = await runFixture('pg-roles.js', { env: pair() });
    expect(without.spans.filter((s) => s.name === 'connect')).toEqual([]);
    const run = await runFixture('pg-roles.js', { env: { ...pair(), QUERYTRAIL_CONNECT_SPANS: 'true' } });
    const connects = run.spans.filter((s) => s.name === 'connect');
    expect(connects.length).toBeGreaterThanOrEqual(2); // at least one per pool
    expect(new Set(connects.map((s) => s.attributes['server.port']))).toEqual(
      new Set([urlParts(topology().pair.primary).port, urlParts(topology().pair.standby).port]),
    );
    for (const span of connects) expect(span.kind).toBe('CLIENT');
  });

  it('records parameter values only when QUERYTRAIL_RECORD_PARAMETERS=true', async () => {
    const run = await runFixture('pg-api.js', {
      env: { QT_PRIMARY: topology().primary, QUERYTRAIL_RECORD_PARAMETERS: 'true' },
    });
    expect(run.spans[0].attributes['db.query.parameter.0']).toBe('2');
  });
});

describe('agent entry', () => {
  it('prints no warnings with QUERYTRAIL_CONSOLE=off, and still records the hazard', async () => {
    const run = await runFixture('pg-roles.js', { env: { ...pair(), QUERYTRAIL_CONSOLE: 'off' } });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.spans.flatMap(hazardsOf)).toEqual(['write_on_replica']);
  });

  it('starts once when loaded twice', async () => {
    const run = await runFixture('agent-twice.js', { env: { QT_PRIMARY: topology().primary } });
    expect(run.code).toBe(0);
    expect(run.spans.length).toBe(1);
  });

  it('is switched off by QUERYTRAIL_ENABLED=false, and then loads nothing but the switch', async () => {
    const run = await runFixture('agent-twice.js', {
      env: { QT_PRIMARY: topology().primary, QUERYTRAIL_ENABLED: 'false' },
    });
    expect(run.code).toBe(0);
    expect(run.spans).toEqual([]);
    for (const flag of ['--require', '--import']) {
      const agent = flag === '--require' ? AGENT : AGENT_ESM;
      const listModules = 'console.log(JSON.stringify(Object.keys(require.cache)))';
      const env = { ...process.env, QUERYTRAIL_ENABLED: 'false' };
      const child = spawnSync(process.execPath, [flag, agent, '-e', listModules], { env, encoding: 'utf8' });
      const loaded = (JSON.parse(child.stdout) as string[]).map((file) => path.relative(ROOT, file));
      expect(loaded.filter((file) => !file.startsWith(path.join('dist', 'src', 'agent')))).toEqual([
        path.join('dist', 'src', 'kill-switch.js'),
      ]);
    }
  });

  it('reports a bad setting in one line and keeps the default', async () => {
    const run = await runFixture('agent-twice.js', {
      env: { QT_PRIMARY: topology().primary, QUERYTRAIL_CAPTURE: 'sometimes', QUERYTRAIL_DATABASES: 'main' },
    });
    expect(run.code).toBe(0);
    expect(run.stderr).toContain(
      'querytrail: QUERYTRAIL_CAPTURE="sometimes" is not valid; accepted: auto, lean, all, off; using the default\n',
    );
    expect(run.stderr).toMatch(
      /querytrail: QUERYTRAIL_DATABASES: "main" is not alias=url; that entry is ignored \(expected alias=postgres:\/\/host:port\/database\?role=primary\|replica, comma-separated\)\n/,
    );
    expect(run.spans.length).toBe(1);
    expect(run.spans[0].attributes['code.line.number']).toBe(6);
  });

  // pg ships an ESM entry from 8.15 on; an ESM app importing an older pg loads its CommonJS files where
  // neither hook sees them (docs/compatibility.md)
  const pgHasEsmEntry = semver.gte(installedVersion('pg'), '8.15.0');
  it(`${pgHasEsmEntry ? 'instruments' : 'cannot instrument'} an ESM app started with --import querytrail/agent`, async () => {
    const run = await runFixture('esm-app.mjs', {
      env: { QT_PRIMARY: topology().primary },
      nodeArgs: ['--import', 'querytrail/agent'],
    });
    expect(run.code).toBe(0);
    if (!pgHasEsmEntry) {
      expect(run.spans).toEqual([]);
      return;
    }
    expect(run.spans.length).toBe(1);
    expect(run.spans[0].attributes['code.file.path']).toBe(path.join(FIXTURES, 'esm-app.mjs'));
    expect(run.spans[0].attributes['code.line.number']).toBe(lineOf('esm-app.mjs', 'query'));
  });

  it.each([
    ['ts-node', ['-r', 'ts-node/register']],
    ['tsx', ['--require', 'tsx/cjs']],
  ])('names the real .ts line of an app %s compiles in memory', async (_loader, loaderArgs) => {
    const source = path.join(FIXTURES, 'ts-app', 'app.ts');
    const run = await runFixture(path.join('ts-app', 'app.ts'), {
      env: { QT_PRIMARY: topology().primary, TS_NODE_TRANSPILE_ONLY: '1' },
      nodeArgs: ['--require', AGENT, ...loaderArgs],
    });
    expect(run.code).toBe(0);
    expect(run.spans.map((span) => span.attributes)).toEqual([
      expect.objectContaining({ 'code.file.path': source, 'code.line.number': lineOf(source, 'query') }),
    ]);
  });

  it('names the TypeScript source of a compiled app through its source map', async () => {
    const source = path.join(FIXTURES, 'ts-app', 'app.ts');
    const outDir = path.join(FIXTURES, '.build', 'ts-app');
    fs.mkdirSync(outDir, { recursive: true });
    const program = ts.createProgram([source], {
      outDir,
      sourceMap: true,
      module: ts.ModuleKind.CommonJS,
      target: ts.ScriptTarget.ES2022,
      esModuleInterop: true,
      skipLibCheck: true,
    });
    program.emit();
    const run = await runFixture(path.join('.build', 'ts-app', 'app.js'), { env: { QT_PRIMARY: topology().primary } });
    expect(run.code).toBe(0);
    expect(run.spans.length).toBe(1);
    expect(implied(run.spans[0])).toMatchObject({
      'code.file.path': source,
      'code.line.number': lineOf(source, 'query'),
      'code.function.name': 'loadItems',
      'querytrail.construction.file': source,
    });
  });
});
