import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { ROOT } from '../support/run-fixture';

describe('npm run demo', () => {
  it('prints the query spans and the write sent to the replica, with the line to change', () => {
    const run = spawnSync(process.execPath, [path.join(ROOT, 'examples', 'demo', 'run.js')], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(run.status).toBe(0);
    const output = run.stdout + run.stderr;
    expect(output).toContain('GET /orders/1 → 200 [{"id":1,"name":"alpha"}]');
    expect(output).toMatch(/POST \/orders → 500 \{"error":"cannot execute INSERT in a read-only transaction"\}/);
    expect(output).toMatch(
      /querytrail span: SELECT items [\d.]+ms ran on main_ro \(replica\) built at .*examples\/demo\/app\.js:12 \(request\)/,
    );
    expect(output).toMatch(
      /querytrail error: write_on_replica\n {2}INSERT items at .*examples\/demo\/app\.js:17:\d+ was sent to main_ro, a replica \(in_hot_standby=on\)/,
    );
    expect(output).toMatch(/> +17 \| +await replica\.query\('INSERT/);
    expect(output).toContain('in:    request POST /orders');
  });
});
