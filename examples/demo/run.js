// npm run demo: an embedded PostgreSQL primary, its streaming hot standby and a second database, then
// examples/demo/app.js under `node --require querytrail/agent`: each hazard is printed once, with the code
// to change, then a summary of the requests, their queries and their hazards.
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const colour = process.stdout.isTTY === true && !process.env.NO_COLOR;
const bold = (text) => (colour ? `\u001b[1m${text}\u001b[22m` : text);
const dim = (text) => (colour ? `\u001b[2m${text}\u001b[22m` : text);

/** One row per request: its route, its queries, their time and the hazards they raised. */
function summary(spans) {
  const byRoute = new Map();
  for (const span of spans) {
    const route = span.attributes['querytrail.route'];
    if (route === undefined) continue;
    const row = byRoute.get(route) ?? { route, queries: 0, ms: 0, hazards: [] };
    row.queries++;
    row.ms += span.durationMs;
    for (const event of span.events) {
      if (event.name === 'querytrail.hazard') row.hazards.push(event.attributes['querytrail.hazard.code']);
    }
    byRoute.set(route, row);
  }
  const rows = [...byRoute.values()].map((r) => [
    r.route,
    String(r.queries),
    `${r.ms.toFixed(1)} ms`,
    [...new Set(r.hazards)].join(', ') || '—',
  ]);
  const head = ['request', 'queries', 'time', 'hazards'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) =>
    cells
      .map((c, i) => (i === 1 || i === 2 ? c.padStart(widths[i]) : i < cells.length - 1 ? c.padEnd(widths[i]) : c))
      .join('  ');
  const total = new Set(spans.flatMap((s) => s.events.map((e) => e.attributes['querytrail.hazard.code'])));
  return [
    bold(line(head)),
    dim(widths.map((w) => '─'.repeat(w)).join('  ')),
    ...rows.map(line),
    '',
    `${rows.length} requests, ${spans.length} queries, ${total.size} kinds of hazard.`,
  ].join('\n');
}

async function main() {
  console.log('Starting an embedded PostgreSQL primary, a streaming hot standby and a second database...');
  const { startTopology } = await import('../../test/support/topology.mjs');
  const { topology, stop } = await startTopology({ embeddedOnly: true });
  const exportFile = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'querytrail-demo-')), 'spans.jsonl');
  try {
    const [primary, standby, analytics] = [topology.pair.primary, topology.pair.standby, topology.analytics].map(
      (url) => new URL(url),
    );
    const env = {
      ...process.env,
      QT_PRIMARY: topology.pair.primary,
      QT_STANDBY: topology.pair.standby,
      QT_ANALYTICS: topology.analytics,
      QUERYTRAIL_EXPORT_FILE: exportFile,
      // every query object captured where it is built, so each first warning names every site (the default,
      // lean, captures knex and kysely builders made in requests only after a hazard lacked their site)
      QUERYTRAIL_CAPTURE: process.env.QUERYTRAIL_CAPTURE ?? 'auto',
      QUERYTRAIL_DATABASES: [
        `main=postgres://127.0.0.1:${primary.port}/qt_app?role=primary`,
        `main_ro=postgres://127.0.0.1:${standby.port}/qt_app?role=replica`,
        `analytics=postgres://127.0.0.1:${analytics.port}/qt_analytics?role=primary`,
      ].join(','),
      OTEL_TRACES_EXPORTER: process.env.OTEL_TRACES_EXPORTER ?? 'none',
      OTEL_METRICS_EXPORTER: process.env.OTEL_METRICS_EXPORTER ?? 'none',
    };
    console.log(`\n$ QUERYTRAIL_CAPTURE=auto node --require querytrail/agent examples/demo/app.js\n`);
    const agent = require.resolve('querytrail/agent');
    const run = spawnSync(process.execPath, ['--require', agent, path.join(__dirname, 'app.js')], {
      env,
      stdio: 'inherit',
    });
    const spans = fs.existsSync(exportFile)
      ? fs
          .readFileSync(exportFile, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l))
      : [];
    console.log(`\n${summary(spans)}`);
    if (run.status !== 0) process.exitCode = run.status ?? 1;
  } finally {
    fs.rmSync(path.dirname(exportFile), { recursive: true, force: true });
    await stop();
  }
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
