import * as http from 'node:http';
import { attrs, OtlpReceiver } from '../support/otlp-receiver';
import { runFixture, topology } from '../support/run-fixture';

const pair = () => ({ QT_PRIMARY: topology().pair.primary, QT_STANDBY: topology().pair.standby });

function scrape(port: number): Promise<string> {
  return new Promise((resolve, reject) =>
    http
      .get({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve(body));
      })
      .on('error', reject),
  );
}

describe('standard exporters', () => {
  it('sends traces and metrics over OTLP/HTTP protobuf, flushed when the app gets SIGTERM', async () => {
    const receiver = new OtlpReceiver();
    const endpoint = await receiver.start();
    try {
      const run = await runFixture('long-running.js', {
        env: {
          ...pair(),
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_METRICS_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
          OTEL_SERVICE_NAME: 'qt-otlp-test',
          OTEL_METRIC_EXPORT_INTERVAL: '600000',
        },
        onReady: (child) => child.kill('SIGTERM'),
      });
      expect(run.signal).toBe('SIGTERM'); // the app's own behaviour on SIGTERM is kept
      const spans = receiver.spans();
      const server = spans.find((s) => s.kind === 2 && s.scope === '@opentelemetry/instrumentation-http')!;
      expect(server).toBeDefined();
      const queries = spans.filter((s) => s.scope === 'querytrail-pg');
      expect(queries.length).toBe(2);
      for (const q of queries) {
        expect(q.kind).toBe(3); // CLIENT on the wire
        expect(q.traceId).toBe(server.traceId);
        expect(attrs(q.attributes)['querytrail.execution.phase']).toBe('request');
      }
      expect(attrs(queries[0].resource.attributes)['service.name']).toBe('qt-otlp-test');
      const update = queries.find((q) => String(attrs(q.attributes)['db.query.summary']).startsWith('UPDATE'))!;
      expect(update.events.map((e: { name: string }) => e.name)).toEqual(['querytrail.hazard']);
      expect(attrs(update.attributes)['querytrail.ran.role']).toBe('replica');

      const hazards = receiver.metricPoints('querytrail.hazards');
      expect(hazards.map((p) => attrs(p.attributes))).toEqual([{ code: 'write_on_replica', 'db.namespace': 'qt_app' }]);
      expect(Number(hazards[0].asDouble ?? hazards[0].asInt)).toBe(1);
      const durations = receiver.metricPoints('db.client.operation.duration').map((p) => attrs(p.attributes));
      expect(durations).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            'querytrail.ran.role': 'replica',
            'db.operation.name': 'UPDATE',
            'error.type': '25006',
            'querytrail.construction.phase': 'request',
          }),
          expect.objectContaining({ 'querytrail.ran.role': 'primary', 'db.operation.name': 'SELECT' }),
        ]),
      );
    } finally {
      await receiver.stop();
    }
  });

  it('flushes on a normal exit', async () => {
    const receiver = new OtlpReceiver();
    const endpoint = await receiver.start();
    try {
      const run = await runFixture('pg-roles.js', {
        env: {
          ...pair(),
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_METRICS_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        },
      });
      expect(run.code).toBe(0);
      expect(receiver.spans().filter((s) => s.scope === 'querytrail-pg').length).toBe(5);
      expect(receiver.metricPoints('querytrail.hazards').length).toBe(1);
    } finally {
      await receiver.stop();
    }
  });

  it('exports spans in batches of 128, or of OTEL_BSP_MAX_EXPORT_BATCH_SIZE', async () => {
    const batches = async (env: Record<string, string>) => {
      const receiver = new OtlpReceiver();
      const endpoint = await receiver.start();
      try {
        const run = await runFixture('busy-app.js', {
          env: {
            ...pair(),
            OTEL_TRACES_EXPORTER: 'otlp',
            OTEL_METRICS_EXPORTER: 'none',
            OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
            ...env,
          },
        });
        expect(run.code).toBe(0);
        expect(receiver.spans().filter((s) => s.scope === 'querytrail-pg').length).toBe(600);
        return receiver.spansPerRequest();
      } finally {
        await receiver.stop();
      }
    };
    // full batches while the app runs, the rest in the flush at exit
    expect(Math.max(...(await batches({ BUSY_QUERIES: '600' })))).toBe(128);
    expect(Math.max(...(await batches({ BUSY_QUERIES: '600', OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '512' })))).toBe(512);
  });

  it.each([
    ['delta', 1],
    ['cumulative', 2],
  ])(
    'exports the duration histogram with %s temporality, every query counted once',
    async (preference, temporality) => {
      const receiver = new OtlpReceiver();
      const OTEL_EXPORTER_OTLP_ENDPOINT = await receiver.start();
      try {
        const env = { BUSY_QUERIES: '600', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'otlp' };
        const temporalityEnv = { OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE: preference };
        const exportEnv = { OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_METRIC_EXPORT_INTERVAL: '100' };
        const run = await runFixture('busy-app.js', { env: { ...pair(), ...env, ...temporalityEnv, ...exportEnv } });
        expect(run.code).toBe(0);
        const histograms = receiver.metricsNamed('db.client.operation.duration');
        expect(histograms.length).toBeGreaterThan(1); // exported while the app ran, and at exit
        for (const h of histograms) expect(h.histogram.aggregationTemporality).toBe(temporality);
        const selects = (h: (typeof histograms)[number]): { count: string }[] =>
          h.histogram.dataPoints.filter(
            (p: { attributes: [] }) => attrs(p.attributes)['db.operation.name'] === 'SELECT',
          );
        const counts = histograms.map((h) => selects(h).reduce((n, p) => n + Number(p.count), 0));
        // delta points add up to the queries; a cumulative point's last value is all of them
        const total = preference === 'delta' ? counts.reduce((a, b) => a + b, 0) : counts[counts.length - 1];
        expect(total).toBe(600);
      } finally {
        await receiver.stop();
      }
    },
  );

  it('serves a Prometheus scrape endpoint with OTEL_METRICS_EXPORTER=prometheus', async () => {
    const port = 19464 + Math.floor(Math.random() * 500);
    let metrics = '';
    const run = await runFixture('long-running.js', {
      env: { ...pair(), OTEL_METRICS_EXPORTER: 'prometheus', OTEL_EXPORTER_PROMETHEUS_PORT: String(port) },
      onReady: (child) =>
        void scrape(port)
          .then((body) => (metrics = body))
          .finally(() => child.kill('SIGTERM')),
    });
    expect(run.signal).toBe('SIGTERM');
    expect(metrics).toMatch(/querytrail_hazards_total\{[^}]*code="write_on_replica"[^}]*\} 1/);
    expect(metrics).toMatch(/db_client_operation_duration_bucket\{[^}]*querytrail_ran_role="replica"/);
    expect(metrics.match(/^# TYPE db_client_operation_duration/gm)).toHaveLength(1);
  });
});
