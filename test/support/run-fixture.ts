import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const ROOT = path.resolve(__dirname, '..', '..');
export const AGENT = path.join(ROOT, 'dist', 'src', 'agent.js');
export const AGENT_ESM = path.join(ROOT, 'dist', 'src', 'agent.mjs');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');

export interface Topology {
  primary: string;
  /** Same server as `primary`, database qt_analytics (overlapping `items`). */
  analytics: string;
  primarySource: string;
  pair: { primary: string; standby: string };
}

export function topology(): Topology {
  const raw = process.env.QT_TEST_TOPOLOGY;
  if (!raw) throw new Error('QT_TEST_TOPOLOGY is not set: run through jest (test/support/global-setup.mjs)');
  return JSON.parse(raw);
}

/** The variables the ORM fixtures read: both databases on the primary, and the replication pair. */
export function ormFixtureEnv(): Record<string, string> {
  const { primary, analytics, pair } = topology();
  return { QT_PRIMARY: primary, QT_ANALYTICS: analytics, QT_PAIR_PRIMARY: pair.primary, QT_STANDBY: pair.standby };
}

/**
 * The fixture env under QUERYTRAIL_CAPTURE=auto: every query object captured where it is built, so first
 * warnings name every site. The default (lean) leaves knex and kysely builders made in requests uncaptured
 * until a hazard lacked their site; tests of what a first warning names use this.
 */
export function autoCaptureEnv(): Record<string, string> {
  return { ...ormFixtureEnv(), QUERYTRAIL_CAPTURE: 'auto' };
}

export interface ExportedSpan {
  name: string;
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  kind: string;
  durationMs: number;
  status: { code: string; message?: string };
  attributes: Record<string, unknown>;
  events: { name: string; attributes: Record<string, unknown> }[];
}

export interface FixtureRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  spans: ExportedSpan[];
}

export interface FixtureOptions {
  env?: Record<string, string | undefined>;
  /** Node flags before the fixture; default: --require the built agent. */
  nodeArgs?: string[];
  args?: string[];
  /** Called with the child once it printed `ready` on stdout. */
  onReady?: (child: import('node:child_process').ChildProcess) => void;
  timeoutMs?: number;
}

/** Runs a fixture as users run their app, with the agent preloaded, and reads the exported spans. */
export function runFixture(fixture: string, options: FixtureOptions = {}): Promise<FixtureRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-run-'));
  const exportFile = path.join(dir, 'spans.jsonl');
  const env: Record<string, string | undefined> = {
    ...process.env,
    OTEL_TRACES_EXPORTER: 'none',
    OTEL_METRICS_EXPORTER: 'none',
    QUERYTRAIL_EXPORT_FILE: exportFile,
    ...options.env,
  };
  for (const key of Object.keys(env)) if (env[key] === undefined) delete env[key];
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? ['--require', AGENT]), path.join(FIXTURES, fixture), ...(options.args ?? [])],
    { env: env as NodeJS.ProcessEnv, cwd: ROOT },
  );
  let stdout = '';
  let stderr = '';
  let readySeen = false;
  child.stdout.on('data', (d) => {
    stdout += d;
    if (!readySeen && options.onReady && /^ready$/m.test(stdout)) {
      readySeen = true;
      options.onReady(child);
    }
  });
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fixture ${fixture} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, options.timeoutMs ?? 30_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const spans = fs.existsSync(exportFile)
        ? fs
            .readFileSync(exportFile, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as ExportedSpan)
        : [];
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code, signal, stdout, stderr, spans });
    });
  });
}

/**
 * A span's attributes with its construction and origin sites and its construction phase filled in where they
 * are not sent (the compact contract: a query built where it ran says its site once, in `code.*`; a site's
 * file and function are left out when they are the nearer site's — `code.*` for the construction site, the
 * construction site for the origin; built in the phase it ran in, its phase once, in
 * `querytrail.execution.phase`).
 */
export function implied(span: ExportedSpan): Record<string, unknown> {
  const a = { ...span.attributes };
  a['querytrail.construction.phase'] ??= a['querytrail.execution.phase'];
  fillSite(a, 'querytrail.construction', [
    'code.file.path',
    'code.line.number',
    'code.column.number',
    'code.function.name',
  ]);
  if (a['querytrail.origin.line'] !== undefined) {
    fillSite(
      a,
      'querytrail.origin',
      ['file', 'line', 'column', 'function'].map((k) => `querytrail.construction.${k}`),
    );
  }
  return a;
}

function fillSite(a: Record<string, unknown>, prefix: string, nearer: string[]): void {
  ['file', 'line', 'column', 'function'].forEach((k, i) => {
    if (a[`${prefix}.${k}`] === undefined && a[nearer[i]] !== undefined) a[`${prefix}.${k}`] = a[nearer[i]];
  });
}

/** The statement's first operation: the first word of `db.query.summary` (`db.operation.name` is not sent). */
export function operationOf(span: ExportedSpan): string {
  return String(span.attributes['db.query.summary']).split(' ')[0];
}

export function spansInRoute(spans: ExportedSpan[], route: string): ExportedSpan[] {
  return spans.filter((s) => s.attributes['querytrail.route'] === route);
}

/** The attributes of a span's hazard event with this code. */
export function hazardEvent(span: ExportedSpan, code: string): Record<string, unknown> {
  return span.events.find((e) => e.attributes['querytrail.hazard.code'] === code)!.attributes;
}

export function hazardsOf(span: ExportedSpan): string[] {
  return span.events
    .filter((e) => e.name === 'querytrail.hazard')
    .map((e) => String(e.attributes['querytrail.hazard.code']));
}

export function urlParts(url: string): { port: number; database: string } {
  const u = new URL(url);
  return { port: Number(u.port || 5432), database: u.pathname.slice(1) };
}

/**
 * The line of a fixture tagged `// @line:name`: tests look lines up by name instead of pinning numbers,
 * so fixtures can be edited and reformatted.
 */
export function lineOf(fixture: string, name: string): number {
  const file = path.isAbsolute(fixture) ? fixture : path.join(FIXTURES, fixture);
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const found = lines.findIndex((line) => new RegExp(`@line:${name}(?![\\w-])`).test(line));
  if (found < 0) throw new Error(`no line tagged @line:${name} in ${file}`);
  return found + 1;
}

/** Each span went through the ORM's `pool`, was bound to the server at `port` and ran there, which said `role`. */
export function expectRanOn(spans: ExportedSpan[], pool: string, port: number, role: 'primary' | 'replica'): void {
  for (const span of spans) {
    expect(span.attributes).toMatchObject({
      'querytrail.bound.pool': pool,
      'server.port': port,
      'querytrail.ran.role': role,
    });
  }
}

/** The version of a library installed in the project (its exports map may not expose package.json). */
export function installedVersion(name: string): string {
  return JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
}
