// npm run soak: one million queries through the agent (an init-time knex base cloned in every request, and
// raw pg), 10 per request, 4 requests at a time; the heap after a full GC every 100 000 queries must stay
// flat (less than 5 MB of growth from 100 000 to the end). Then the same with the OTLP collector unreachable
// (a port that accepts and never answers): memory stays bounded, and the dropped spans are counted.
// QT_SOAK_QUERIES sets the count (default 1 000 000); QT_BENCH_URL the server (else the test topology's).
const { spawn } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');

const QUERIES = Number(process.env.QT_SOAK_QUERIES ?? 1_000_000);
const PER_REQUEST = 10;
const CHECK_EVERY = QUERIES / 10;
const MAX_GROWTH_MB = 5;
const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

function get(port, path) {
  return new Promise((resolve, reject) =>
    http
      .get({ host: '127.0.0.1', port, path, agent }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`${path}: ${res.statusCode}`))));
      })
      .on('error', reject),
  );
}

/** A collector: `answer` true takes every export (200), false accepts connections and never answers. */
function collector(answer) {
  const held = [];
  const server = answer
    ? http.createServer((req, res) => req.resume().on('end', () => res.end()))
    : net.createServer((socket) => held.push(socket));
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () => {
          held.forEach((s) => s.destroy());
          server.close();
        },
      }),
    ),
  );
}

function freePort() {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Runs the app for `queries`; `metricsPort`: metrics on a Prometheus endpoint there, read at the end. */
async function soak(url, endpoint, label, queries, metricsPort) {
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      '--require',
      path.join(__dirname, '..', 'dist', 'src', 'agent.js'),
      path.join(__dirname, 'soak-app.js'),
    ],
    {
      env: {
        ...process.env,
        QT_BENCH_URL: url,
        OTEL_TRACES_EXPORTER: 'otlp',
        OTEL_METRICS_EXPORTER: metricsPort ? 'prometheus' : 'otlp',
        OTEL_EXPORTER_PROMETHEUS_PORT: String(metricsPort ?? ''),
        OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        OTEL_METRIC_EXPORT_INTERVAL: '5000',
        QUERYTRAIL_CONSOLE: 'off',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise((resolve) => child.stdout.once('data', (d) => resolve(JSON.parse(d).port)));
  console.log(`\n${label}`);
  console.log('  queries     heap used MB   rss MB');
  const heaps = [];
  let sent = 0;
  for (let checkpoint = CHECK_EVERY; checkpoint <= queries; checkpoint += CHECK_EVERY) {
    const target = checkpoint;
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        while (sent < target) {
          sent += PER_REQUEST;
          await get(port, '/r');
        }
      }),
    );
    const memory = JSON.parse(await get(port, '/heap'));
    heaps.push(memory.heapUsed);
    console.log(
      `  ${String(checkpoint).padStart(9)} ${(memory.heapUsed / 2 ** 20).toFixed(1).padStart(14)} ${(memory.rss / 2 ** 20).toFixed(1).padStart(8)}`,
    );
  }
  if (metricsPort) {
    const scrape = await get(metricsPort, '/metrics');
    const dropped = /^querytrail_telemetry_dropped_total\{[^}]*signal="spans"[^}]*\} (\d+)/m.exec(scrape)?.[1] ?? '0';
    console.log(
      `  spans dropped and counted (querytrail_telemetry_dropped_total): ${dropped}, for ${sent} queries and their requests`,
    );
  }
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const growth = (heaps[heaps.length - 1] - heaps[0]) / 2 ** 20;
  console.log(
    `  heap growth from ${CHECK_EVERY} to ${queries} queries: ${growth.toFixed(2)} MB (limit ${MAX_GROWTH_MB} MB)`,
  );
  return growth;
}

async function main() {
  let url = process.env.QT_BENCH_URL;
  let stop = async () => {};
  if (!url) {
    const { startTopology } = await import('../test/support/topology.mjs');
    const started = await startTopology();
    url = started.topology.primary;
    stop = started.stop;
  }
  const healthy = await collector(true);
  const blackHole = await collector(false);
  try {
    const growth = await soak(url, healthy.url, `${QUERIES} queries, collector answering`, QUERIES);
    const downGrowth = await soak(
      url,
      blackHole.url,
      `${QUERIES / 2} queries, collector never answering (metrics scraped instead)`,
      QUERIES / 2,
      await freePort(),
    );
    const ok = growth < MAX_GROWTH_MB && downGrowth < MAX_GROWTH_MB;
    console.log(
      `\n${ok ? 'flat' : 'NOT FLAT'}: ${growth.toFixed(2)} MB and ${downGrowth.toFixed(2)} MB of heap growth`,
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    healthy.close();
    blackHole.close();
    await stop();
  }
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
