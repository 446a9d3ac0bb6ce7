// npm run demo: an embedded PostgreSQL primary and hot standby, then examples/demo/app.js under
// `node --require querytrail/agent`, printing each query span and the hazard it finds.
const { spawnSync } = require('node:child_process');
const path = require('node:path');

async function main() {
  console.log('Starting an embedded PostgreSQL primary and a streaming hot standby...');
  const { startTopology } = await import('../../test/support/topology.mjs');
  const { topology, stop } = await startTopology();
  const primary = new URL(topology.pair.primary);
  const standby = new URL(topology.pair.standby);
  try {
    const env = {
      ...process.env,
      QT_PRIMARY: topology.pair.primary,
      QT_STANDBY: topology.pair.standby,
      QUERYTRAIL_CONSOLE: 'spans',
      QUERYTRAIL_DATABASES: `main=postgres://127.0.0.1:${primary.port}/qt_app?role=primary,main_ro=postgres://127.0.0.1:${standby.port}/qt_app?role=replica`,
      OTEL_TRACES_EXPORTER: process.env.OTEL_TRACES_EXPORTER ?? 'none',
      OTEL_METRICS_EXPORTER: process.env.OTEL_METRICS_EXPORTER ?? 'none',
    };
    console.log(`$ node --require querytrail/agent examples/demo/app.js\n`);
    const agent = require.resolve('querytrail/agent');
    spawnSync(process.execPath, ['--require', agent, path.join(__dirname, 'app.js')], { env, stdio: 'inherit' });
  } finally {
    await stop();
  }
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
