// npm run demo tells every incident querytrail exists for, on its own embedded primary, standby and second
// database: each hazard once, with the line to change and its code, then a summary of the requests.
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { ROOT } from '../support/run-fixture';

const APP = path.join(ROOT, 'examples', 'demo', 'app.js');
// the demo's source stays free of test markers: it is what users read
const loopLine =
  fs
    .readFileSync(APP, 'utf8')
    .split('\n')
    .findIndex((l) => l.includes('// a query per row')) + 1;
const INCIDENTS: [code: string, request: string][] = [
  ['cross_database_query', 'GET /items/promoted'], // knex: an init-time sub-query of another database
  ['cross_database_query', 'GET /items/pinned'], // drizzle: a withReplicas select pinned to the standby at init
  ['init_query_in_request', 'GET /items/published'],
  ['frozen_parameter', 'GET /items/published'], // the cut-off date frozen at import
  ['cross_database_query', 'GET /items/everywhere'], // kysely: a sub-query of the second shard
  ['write_on_replica', 'POST /items/:id/touch'],
  ['read_after_write', 'POST /authors/:id/follow'],
  ['cross_database_transaction', 'POST /reports/transfer'],
  ['n_plus_one', 'GET /articles'],
  ['duplicate_query', 'GET /articles'],
];

describe('npm run demo', () => {
  let output: string;
  beforeAll(() => {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'examples', 'demo', 'run.js')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 90_000,
    });
    expect(run.status).toBe(0);
    output = run.stdout + run.stderr;
  }, 100_000);

  it.each(INCIDENTS)('prints %s in %s once, with its line and code frame', (code, request) => {
    const warnings = output
      .split(/^(?=querytrail (?:error|warning): )/m)
      .filter((w) => w.includes(`in:    request ${request}\n`));
    const [warning, ...more] = warnings.filter(
      (w) => w.startsWith(`querytrail error: ${code}\n`) || w.startsWith(`querytrail warning: ${code}\n`),
    );
    expect(more).toEqual([]);
    expect(warning).toMatch(new RegExp(`${APP.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:\\d+:\\d+`));
    expect(warning).toMatch(/^ {4}> +\d+ \| /m); // the code frame points at the line
  });

  it('answers every request, the write on the replica with the server’s refusal', () => {
    expect(output).toContain('POST /items/1/touch → 500 {"error":"cannot execute UPDATE in a read-only transaction"}');
    // read from the standby right after the write: whether replication caught up is the race the hazard is about
    expect(output).toMatch(/^POST \/authors\/1\/follow → 200 \{"following":(true|false)\}$/m);
    expect(output.match(/^(GET|POST) \S+ → \d{3} /gm)).toHaveLength(8);
  });

  it('names the loop of the N+1 and the fix in sequelize terms', () => {
    expect(output).toMatch(
      new RegExp(`SELECT authors ran 5 times from \\S+app\\.js:${loopLine}:\\d+ in request GET /articles`),
    );
    expect(output).toContain('load them with their parent through `include`');
  });

  it('ends with a summary of the requests, their queries and hazards, without colour when piped', () => {
    expect(output).toMatch(/^request +queries +time +hazards$/m);
    expect(output).toMatch(/^GET \/articles +\d+ +[\d.]+ ms +n_plus_one, duplicate_query$/m);
    expect(output).toMatch(/^8 requests, \d+ queries, 8 kinds of hazard\.$/m);
    expect(output).not.toContain('\u001b[');
  });
});
