// The Grafana dashboard and the Prometheus alert rules, checked against what the agent really exports and
// by a real Prometheus (Debian's `prometheus` package: `prometheus` and `promtool`).
import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { dashboardJson, DASHBOARD_FILE } from '../../dashboards/generate';
import { PANEL_QUERIES, querytrailDashboard } from '../../dashboards/querytrail';
import { ROOT, runFixture, topology } from '../support/run-fixture';

const ALERTS = path.join(ROOT, 'alerts');
const installed = (command: string) => {
  try {
    execFileSync(command, ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const withPrometheus = installed('promtool') && installed('prometheus');
if (!withPrometheus) {
  process.stderr.write(
    '\nquerytrail tests: SKIPPING the Prometheus tests: `promtool` and `prometheus` are not installed ' +
      '(apt-get install prometheus; .ci/run installs it)\n',
  );
}
const describeWithPrometheus = withPrometheus ? describe : describe.skip;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function run(command: string, args: string[], cwd = ROOT): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(command, args, { cwd }, (error, stdout, stderr) =>
      error
        ? reject(new Error(`${command} ${args.join(' ')}: ${error.message}\n${stdout}${stderr}`))
        : resolve(stdout + stderr),
    ),
  );
}

/** The dashboard's PromQL with Grafana's variables given values, as Grafana sends it. */
function concrete(expr: string): string {
  return expr.replace(/\$__rate_interval|\$__range/g, '5m').replace(/\$service|\$route/g, '.*');
}

/** The metric names an expression reads: every selector in these has braces (labels are never followed by one). */
function metricNames(expr: string): string[] {
  return [...new Set(expr.match(/\b(?:querytrail|db_client)_\w+(?=\{)/g) ?? [])];
}

/** Runs the Prometheus fixture app with the agent's scrape endpoint on `port`; `whileReady` runs, then SIGTERM. */
async function withApp<T>(port: number, whileReady: () => Promise<T>): Promise<T> {
  let result: T | undefined;
  let failure: unknown;
  const { pair, primary } = topology();
  const run = await runFixture('prometheus-app.js', {
    env: {
      QT_PRIMARY: primary,
      QT_STANDBY: pair.standby,
      OTEL_METRICS_EXPORTER: 'prometheus',
      OTEL_EXPORTER_PROMETHEUS_HOST: '127.0.0.1',
      OTEL_EXPORTER_PROMETHEUS_PORT: String(port),
    },
    timeoutMs: 120_000,
    onReady: (child: ChildProcess) => {
      whileReady()
        .then((r) => (result = r))
        .catch((err) => (failure = err))
        .finally(() => child.kill('SIGTERM'));
    },
  });
  if (failure) throw failure;
  if (result === undefined) throw new Error(`the app did not get ready:\n${run.stdout}\n${run.stderr}`);
  return result;
}

describe('the Grafana dashboard', () => {
  it('is committed as dashboards/querytrail.ts generates it (npm run dashboard)', () => {
    expect(fs.readFileSync(DASHBOARD_FILE, 'utf8')).toBe(dashboardJson());
  });

  it('has template variables for the datasource, the service and the route, and the panels of the brief', () => {
    const dashboard = querytrailDashboard();
    expect(dashboard.templating.list?.map((v) => v.name)).toEqual(['datasource', 'service', 'route']);
    expect(Object.keys(PANEL_QUERIES)).toEqual(
      expect.arrayContaining([
        'Hazards by code and route',
        'Queries by construction phase',
        'Queries by the role the server reported',
        'Query duration by role (p95)',
        'Queries per request by route',
        'Writes sent to replicas',
        'Bound ≠ ran',
        'N+1 and duplicate queries by route',
      ]),
    );
  });
});

describeWithPrometheus('the dashboard and the alert rules, with promtool and a real Prometheus', () => {
  let scrape: string;

  beforeAll(async () => {
    const port = await freePort();
    scrape = await withApp(port, async () => {
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      return response.text();
    });
  }, 130_000);

  it('every panel query is valid PromQL (checked by promtool as recording rules)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-promql-'));
    const rules = Object.values(PANEL_QUERIES)
      .flat()
      .map((expr, i) => `      - record: querytrail:panel_${i}\n        expr: ${JSON.stringify(concrete(expr))}`);
    fs.writeFileSync(path.join(dir, 'panels.yml'), `groups:\n  - name: panels\n    rules:\n${rules.join('\n')}\n`);
    expect(await run('promtool', ['check', 'rules', path.join(dir, 'panels.yml')])).toContain(
      `SUCCESS: ${rules.length} rules found`,
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('reads only metrics and labels the agent really exports (its Prometheus endpoint, scraped)', () => {
    const exported = new Set(scrape.match(/^[a-z_]+(?=[{ ])/gm));
    const used = new Set(Object.values(PANEL_QUERIES).flat().flatMap(metricNames));
    expect(used.size).toBeGreaterThanOrEqual(4);
    used.add('db_client_operation_duration_count'); // the service variable's
    used.add('querytrail_request_queries_count'); // the route variable's
    for (const name of used) expect([name, exported.has(name)]).toEqual([name, true]);
    for (const label of ['code', 'route', 'db_namespace', 'querytrail_ran_role', 'querytrail_construction_phase']) {
      expect(scrape).toMatch(new RegExp(`[{,]${label}="`));
    }
    expect(scrape).toMatch(/querytrail_hazards_total\{[^}]*code="write_on_replica"/);
    expect(scrape).toMatch(/querytrail_hazards_total\{[^}]*code="n_plus_one"[^}]*route="GET \/articles"/);
    expect(scrape).toMatch(/querytrail_request_queries_count\{[^}]*route="GET \/articles"[^}]*\} 1/);
  });

  it('the alert rules pass promtool check and their unit tests (each alert firing and not firing)', async () => {
    expect(await run('promtool', ['check', 'rules', 'querytrail.rules.yml'], ALERTS)).toContain(
      'SUCCESS: 7 rules found',
    );
    expect(await run('promtool', ['test', 'rules', 'querytrail.rules.test.yml'], ALERTS)).toContain('SUCCESS');
  });

  it('every alert has a runbook in docs/runbooks', () => {
    const rules = fs.readFileSync(path.join(ALERTS, 'querytrail.rules.yml'), 'utf8');
    const alerts = [...rules.matchAll(/- alert: (\w+)/g)].map((m) => m[1]);
    const runbooks = [...rules.matchAll(/runbook_url: \S+\/blob\/main\/(docs\/runbooks\/\w+\.md)/g)].map((m) => m[1]);
    expect(runbooks).toEqual(alerts.map((a) => `docs/runbooks/${a}.md`));
    for (const runbook of runbooks) expect(fs.existsSync(path.join(ROOT, runbook))).toBe(true);
  });

  it('a real Prometheus scrapes the app, loads the rules and fires QuerytrailWriteOnReplica', async () => {
    const [appPort, prometheusPort] = [await freePort(), await freePort()];
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-prometheus-'));
    fs.writeFileSync(
      path.join(dir, 'prometheus.yml'),
      [
        'global: { scrape_interval: 1s, evaluation_interval: 1s }',
        `rule_files: [${JSON.stringify(path.join(ALERTS, 'querytrail.rules.yml'))}]`,
        'scrape_configs:',
        `  - job_name: shop`,
        `    static_configs: [{ targets: ['127.0.0.1:${appPort}'] }]`,
      ].join('\n'),
    );
    let prometheus: ChildProcess | undefined;
    let log = '';
    try {
      const firing = await withApp(appPort, async () => {
        prometheus = spawn('prometheus', [
          `--config.file=${path.join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${path.join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${prometheusPort}`,
        ]);
        prometheus.stderr?.on('data', (d) => (log += d));
        for (const until = Date.now() + 60_000; Date.now() < until;) {
          await new Promise((r) => setTimeout(r, 500));
          const alerts = await fetch(`http://127.0.0.1:${prometheusPort}/api/v1/alerts`)
            .then((r) => r.json() as Promise<{ data: { alerts: { labels: Record<string, string>; state: string }[] } }>)
            .catch(() => undefined);
          const found = alerts?.data.alerts.find((a) => a.labels.alertname === 'QuerytrailWriteOnReplica');
          if (found?.state === 'firing') return found;
        }
        throw new Error(`QuerytrailWriteOnReplica did not fire within 60 s\n${log}`);
      });
      expect(firing.labels).toMatchObject({
        alertname: 'QuerytrailWriteOnReplica',
        severity: 'critical',
        job: 'shop',
        db_namespace: 'qt_app',
        route: 'POST /orders/:id',
      });
    } finally {
      if (prometheus?.exitCode === null) {
        const exited = new Promise((r) => prometheus!.once('exit', r));
        prometheus.kill();
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 130_000);
});
