import { startTopology } from './topology.mjs';

// Integration tests need the built agent and the servers; unit tests need neither, but one run does both.
export default async function globalSetup() {
  const { topology, stop } = await startTopology();
  globalThis.__querytrailTopology = stop;
  process.env.QT_TEST_TOPOLOGY = JSON.stringify(topology);
  process.stderr.write(
    `\nquerytrail tests: primary from ${topology.primarySource}; replication pair: embedded primary + hot standby\n`,
  );
}
