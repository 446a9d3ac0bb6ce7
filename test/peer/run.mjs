// npm run test:peer -- <node-postgres git directory>: node-postgres's own test suite (unit and integration),
// run once bare and once under `node --require querytrail/agent`, against the pg installed here; every test
// file must end the same way both times (its exit status: a file is one process of several tests, which
// exits non-zero on the first failure). The repository is not on npm: give a clone or a bare mirror; the
// commit tagged for the installed version is used (else HEAD, said so). Uses the PostgreSQL at
// PGHOST/PGPORT (default 127.0.0.1:5432, user postgres), in a database `pg_peer` it creates.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGENT = path.join(ROOT, 'dist', 'src', 'agent.js');
const repo = process.argv[2] ?? process.env.QT_PEER_PG_REPO;
if (!repo) {
  console.log('test:peer needs a node-postgres repository: npm run test:peer -- <path> (or QT_PEER_PG_REPO)');
  process.exit(2);
}
const gitDir = statSync(path.join(repo, '.git'), { throwIfNoEntry: false }) ? path.join(repo, '.git') : repo;
const git = (...args) => execFileSync('git', [`--git-dir=${gitDir}`, ...args], { encoding: 'utf8' }).trim();
const pgDir = path.dirname(path.dirname(path.join(ROOT, 'node_modules', 'pg', 'lib', 'index.js')));
const { version } = JSON.parse(readFileSync(path.join(ROOT, 'node_modules', 'pg', 'package.json'), 'utf8'));
const tag = `pg@${version}`;
const commit = git('tag', '--list', tag) ? tag : 'HEAD';
console.log(
  `node-postgres tests at ${commit === 'HEAD' ? `HEAD (${git('rev-parse', '--short', 'HEAD')}; no tag ${tag})` : tag}, against pg ${version} installed here`,
);

// the suite's files, with its `lib` pointing at the installed pg: the agent patches that one
const work = mkdtempSync(path.join(tmpdir(), 'qt-peer-'));
execFileSync('sh', [
  '-c',
  `git --git-dir="${gitDir}" archive ${commit} packages/pg/test packages/pg/package.json | tar -x -C "${work}"`,
]);
const pgPackage = path.join(work, 'packages', 'pg');
symlinkSync(path.join(pgDir, 'lib'), path.join(pgPackage, 'lib'));
execFileSync('chmod', ['600', path.join(pgPackage, 'test', 'unit', 'client', 'pgpass.file')]);
// the suite's own helpers (its devDependencies that run on Node: not the Cloudflare worker tooling)
const { devDependencies } = JSON.parse(readFileSync(path.join(pgPackage, 'package.json'), 'utf8'));
const helpers = ['async', 'bluebird', 'co', 'pg-copy-streams'].map((name) => `${name}@${devDependencies[name]}`);
execFileSync(
  'npm',
  ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', pgPackage, ...helpers],
  {
    stdio: 'ignore',
  },
);

const env = {
  ...process.env,
  PGHOST: process.env.PGHOST ?? '127.0.0.1',
  PGPORT: process.env.PGPORT ?? '5432',
  PGUSER: process.env.PGUSER ?? 'postgres',
  PGDATABASE: 'pg_peer',
  OTEL_TRACES_EXPORTER: 'none',
  OTEL_METRICS_EXPORTER: 'none',
};
spawnSync(
  'psql',
  ['-h', env.PGHOST, '-p', env.PGPORT, '-U', env.PGUSER, '-d', 'postgres', '-qc', 'CREATE DATABASE pg_peer'],
  {
    stdio: 'ignore',
  },
);

const files = (dir) =>
  readdirSync(dir, { recursive: true })
    .filter((f) => f.endsWith('-tests.js') && !f.includes('native'))
    .map((f) => path.join(dir, f))
    .sort();
const tests = [...files(path.join(pgPackage, 'test', 'unit')), ...files(path.join(pgPackage, 'test', 'integration'))];
const run = (file, nodeArgs) =>
  spawnSync(process.execPath, [...nodeArgs, file, 'postgres://'], {
    cwd: pgPackage,
    env,
    encoding: 'utf8',
    timeout: 60_000,
  }).status;

let same = 0;
let passedBare = 0;
let passedTraced = 0;
const differ = [];
for (const file of tests) {
  const bare = run(file, []);
  const traced = run(file, ['--require', AGENT]);
  if (bare === 0) passedBare++;
  if (traced === 0) passedTraced++;
  if (bare === traced) same++;
  else differ.push(`${path.relative(pgPackage, file)}: bare ${bare}, under the agent ${traced}`);
}
rmSync(work, { recursive: true, force: true });
for (const line of differ) console.log(`DIFFERENT ${line}`);
console.log(
  `${tests.length} test files: ${same} ended the same way bare and under the agent; ` +
    `passed bare ${passedBare}, under the agent ${passedTraced}`,
);
process.exit(differ.length ? 1 : 0);
