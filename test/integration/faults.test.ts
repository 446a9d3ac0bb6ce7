import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { AGENT, FIXTURES, ROOT, runFixture, topology } from '../support/run-fixture';

describe('an export file that cannot be written', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-faults-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['a missing directory', path.join(dir, 'missing', 'spans.jsonl'), 'ENOENT'],
    ['a directory', dir, 'EISDIR'],
    ['a full disk', '/dev/full', 'ENOSPC'],
  ])('(%s) is said once, and the app runs exactly as without the agent', async (_what, file, code) => {
    const env = { QT_PRIMARY: topology().primary };
    const bare = await runFixture('pg-api.js', { env, nodeArgs: [] });
    const traced = await runFixture('pg-api.js', { env: { ...env, QUERYTRAIL_EXPORT_FILE: file } });
    expect(traced.code).toBe(bare.code);
    expect(traced.stdout).toBe(bare.stdout);
    expect(traced.stderr).toBe(
      `querytrail: cannot write QUERYTRAIL_EXPORT_FILE="${file}" (${code}); spans are not written to it\n`,
    );
  });
});

describe("the server's error text", () => {
  it('is not exported unless parameter values are opted in: the status says the SQLSTATE', async () => {
    const env = { QT_PRIMARY: topology().primary };
    const run = await runFixture('pg-errors.js', { env });
    expect(run.stdout).toBe('22P02\n22P02\n42601\n');
    expect(run.spans.map((s) => s.status)).toEqual([
      { code: 'ERROR', message: 'error (SQLSTATE 22P02)' },
      { code: 'ERROR', message: 'error (SQLSTATE 22P02)' },
      { code: 'ERROR', message: 'error (SQLSTATE 42601)' },
    ]);
    expect(JSON.stringify(run.spans)).not.toContain('canary');
    const optedIn = await runFixture('pg-errors.js', { env: { ...env, QUERYTRAIL_RECORD_PARAMETERS: 'true' } });
    expect(optedIn.spans[0].status.message).toContain('canary-bound-value');
  });
});

describe('bad settings', () => {
  const start = (env: Record<string, string>) => {
    const child = spawnSync(process.execPath, ['--require', AGENT, '-e', 'console.log("app ran")'], {
      env: { ...process.env, OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none', ...env },
      encoding: 'utf8',
    });
    return { status: child.status, stdout: child.stdout, lines: child.stderr.split('\n').filter(Boolean) };
  };

  it.each([
    [
      { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: 'not-a-url' },
      'querytrail: OTEL_EXPORTER_OTLP_ENDPOINT="not-a-url" is not an http(s) URL; traces cannot be exported',
    ],
    [
      { OTEL_METRICS_EXPORTER: 'prometheus', OTEL_EXPORTER_PROMETHEUS_PORT: '99999' },
      'querytrail: OTEL_EXPORTER_PROMETHEUS_PORT="99999" is not valid; accepted: a whole number from 1 to 65535; using 9464',
    ],
    [
      { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' },
      'querytrail: OTEL_EXPORTER_OTLP_PROTOCOL="grpc" is not supported; accepted: http/protobuf; using http/protobuf',
    ],
    [
      { OTEL_LOG_LEVEL: 'loud' },
      'querytrail: OTEL_LOG_LEVEL="loud" is not valid; accepted: NONE, ERROR, WARN, INFO, DEBUG, VERBOSE, ALL; using INFO',
    ],
    [
      { OTEL_RESOURCE_ATTRIBUTES: 'service.version=1,broken' },
      'querytrail: OTEL_RESOURCE_ATTRIBUTES has entries that are not key=value: "broken"',
    ],
    [
      { OTEL_TRACES_EXPORTER: 'console,bogus' },
      'querytrail: OTEL_TRACES_EXPORTER="console,bogus" names unknown bogus; accepted: otlp, console, none; using console',
    ],
  ])('%j: one line, the valid part kept, the app runs', (env, line) => {
    const run = start(env);
    expect(run.status).toBe(0);
    expect(run.stdout).toBe('app ran\n');
    expect(run.lines).toEqual([line]);
  });
});

describe('a collector that is down', () => {
  let blackHole: net.Server;
  let blackHolePort: number;
  const held = new Set<net.Socket>();
  beforeAll(async () => {
    // accepts connections and never answers
    blackHole = net.createServer((socket) => held.add(socket));
    await new Promise<void>((r) => blackHole.listen(0, '127.0.0.1', r));
    blackHolePort = (blackHole.address() as net.AddressInfo).port;
  });
  afterAll(() => {
    for (const socket of held) socket.destroy();
    return new Promise((r) => blackHole.close(r));
  });

  const timed = async (options: Parameters<typeof runFixture>[1]) => {
    const started = Date.now();
    const run = await runFixture('busy-app.js', options);
    return { run, ms: Date.now() - started };
  };

  it.each([
    ['closed', () => 'http://127.0.0.1:9'],
    ['black-holed', () => `http://127.0.0.1:${blackHolePort}`],
  ])('(%s) delays neither exit nor SIGTERM beyond the flush bound, and says so', async (_what, endpoint) => {
    const env = { QT_PRIMARY: topology().primary };
    const collector = {
      ...env,
      OTEL_TRACES_EXPORTER: 'otlp',
      OTEL_METRICS_EXPORTER: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: endpoint(),
      OTEL_METRIC_EXPORT_INTERVAL: '300',
      QUERYTRAIL_SHUTDOWN_TIMEOUT_MS: '1000',
    };
    const bare = await timed({ env, nodeArgs: [] });
    const traced = await timed({ env: collector });
    expect(traced.run.code).toBe(bare.run.code);
    expect(traced.run.stdout).toBe(bare.run.stdout);
    expect(traced.run.stderr).toMatch(
      /querytrail: (the OTLP collector did not take|telemetry was not flushed within 1000 ms)/,
    );
    // the bound (1 s) plus start-up and slack: without it, 15-60 s (the exporters' timeouts and retries)
    expect(traced.ms - bare.ms).toBeLessThan(5000);

    // SIGTERM with queries in flight: the app's own behaviour (killed by the signal), within the bound
    const sigterm = await timed({
      env: { ...collector, BUSY_MS: '60000' },
      onReady: (child) => setTimeout(() => child.kill('SIGTERM'), 300),
    });
    expect(sigterm.run.signal).toBe('SIGTERM');
    expect(sigterm.ms).toBeLessThan(6000);
  });
});

describe('exporters and span processors that throw', () => {
  it('leave the app exactly as it is without querytrail', async () => {
    const env = { QT_PRIMARY: topology().primary };
    const bare = await runFixture('throwing-exporters.js', {
      env: { ...env, QT_WITHOUT_QUERYTRAIL: '1' },
      nodeArgs: [],
    });
    const traced = await runFixture('throwing-exporters.js', { env, nodeArgs: [] });
    expect(bare.stdout).toBe('[{"name":"alpha"}]\n[{"id":1},{"id":2},{"id":3}]\nrejected 42P01\n');
    expect([traced.code, traced.stdout]).toEqual([bare.code, bare.stdout]);
  });
});

describe('a library whose internals changed (a knex whose patched files hold other shapes)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-changed-'));
  beforeAll(() => {
    // the app and its own node_modules: the changed knex, and the real pg
    const source = path.join(FIXTURES, 'changed-internals');
    fs.cpSync(path.join(source, 'knex'), path.join(dir, 'node_modules', 'knex'), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules', 'pg'), path.join(dir, 'node_modules', 'pg'));
    fs.copyFileSync(path.join(source, 'app.js'), path.join(dir, 'app.js'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('still loads and runs exactly as without the agent; its pg queries are still traced', () => {
    const exportFile = path.join(dir, 'spans.jsonl');
    const run = (nodeArgs: string[]) =>
      spawnSync(process.execPath, [...nodeArgs, path.join(dir, 'app.js')], {
        env: {
          ...process.env,
          QT_PRIMARY: topology().primary,
          OTEL_TRACES_EXPORTER: 'none',
          OTEL_METRICS_EXPORTER: 'none',
          QUERYTRAIL_EXPORT_FILE: exportFile,
        },
        encoding: 'utf8',
      });
    const bare = run([]);
    const traced = run(['--require', AGENT]);
    expect(bare.stdout).toBe('["beta"]\n[1,2,3]\n');
    expect([traced.status, traced.stdout, traced.stderr]).toEqual([bare.status, bare.stdout, bare.stderr]);
    const spans = fs
      .readFileSync(exportFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(spans.map((s) => s.attributes['querytrail.library'])).toEqual(['pg', 'pg']);
  });
});
