import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { OtlpReceiver } from '../support/otlp-receiver';
import { hazardsOf, ormFixtureEnv, runFixture } from '../support/run-fixture';

describe('secrets canary', () => {
  it('no parameter, literal, error-provoking value or password reaches any exporter, warning or log', async () => {
    const canary = `cnry${Math.floor(Math.random() * 1e9)}`;
    const receiver = new OtlpReceiver();
    const endpoint = await receiver.start();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-canary-'));
    const scrapeFile = path.join(dir, 'scrape.txt');
    try {
      const run = await runFixture('canary-app.js', {
        env: {
          ...ormFixtureEnv(),
          CANARY: canary,
          CANARY_SCRAPE_FILE: scrapeFile,
          OTEL_TRACES_EXPORTER: 'otlp,console',
          OTEL_METRICS_EXPORTER: 'otlp,prometheus',
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
          OTEL_EXPORTER_PROMETHEUS_PORT: String(20000 + Math.floor(Math.random() * 20000)),
          OTEL_LOG_LEVEL: 'debug',
          QUERYTRAIL_CONSOLE: 'spans',
        },
        timeoutMs: 60_000,
      });
      expect(run.code).toBe(0);
      // not vacuous: every library's queries were traced, a warning with a code frame was printed, all exported
      const libraries = new Set(run.spans.map((s) => s.attributes['querytrail.library']));
      expect([...libraries].sort()).toEqual(['drizzle', 'knex', 'kysely', 'pg', 'prisma', 'sequelize', 'typeorm']);
      expect(run.spans.some((s) => hazardsOf(s).includes('cross_database_query'))).toBe(true);
      expect(run.stderr).toMatch(/querytrail error: cross_database_query[\s\S]*> +\d+ \|/);
      expect(run.stderr).toContain('postgres://app:***@db:5432/app'); // the frame's credential, masked
      expect(receiver.spans().length).toBeGreaterThan(10);
      const scrape = fs.readFileSync(scrapeFile, 'utf8');
      expect(scrape).toContain('querytrail_hazards');

      const exported = {
        stdout: run.stdout,
        stderr: run.stderr,
        jsonl: JSON.stringify(run.spans),
        otlpBytes: Buffer.concat(receiver.bodies).toString('latin1'),
        otlpDecoded: JSON.stringify([receiver.traces, receiver.metrics]),
        prometheus: scrape,
      };
      for (const [where, text] of Object.entries(exported))
        expect({ where, leaks: text.includes(canary) }).toEqual({ where, leaks: false });
    } finally {
      await receiver.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
