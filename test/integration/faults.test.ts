import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runFixture, topology } from '../support/run-fixture';

describe('an export file that cannot be written', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-faults-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['a missing directory', path.join(dir, 'missing', 'spans.jsonl'), 'ENOENT'],
    ['a directory', dir, 'EISDIR'],
    ['a full disk', '/dev/full', 'ENOSPC'],
  ])('(%s) is said once, and the app runs exactly as without the agent', async (_what, file, code) => {
    const env = { QT_PRIMARY: topology().primary };
    const bare = await runFixture('pg-api.js', { env, nodeArgs: [] });
    const traced = await runFixture('pg-api.js', { env: { ...env, QUERYTRAIL_EXPORT_FILE: file } });
    expect(traced.code).toBe(bare.code);
    expect(traced.stdout).toBe(bare.stdout);
    expect(traced.stderr).toBe(
      `querytrail: cannot write QUERYTRAIL_EXPORT_FILE="${file}" (${code}); spans are not written to it\n`,
    );
  });
});

describe("the server's error text", () => {
  it('is not exported unless parameter values are opted in: the status says the SQLSTATE', async () => {
    const env = { QT_PRIMARY: topology().primary };
    const run = await runFixture('pg-errors.js', { env });
    expect(run.stdout).toBe('22P02\n22P02\n42601\n');
    expect(run.spans.map((s) => s.status)).toEqual([
      { code: 'ERROR', message: 'error (SQLSTATE 22P02)' },
      { code: 'ERROR', message: 'error (SQLSTATE 22P02)' },
      { code: 'ERROR', message: 'error (SQLSTATE 42601)' },
    ]);
    expect(JSON.stringify(run.spans)).not.toContain('canary');
    const optedIn = await runFixture('pg-errors.js', { env: { ...env, QUERYTRAIL_RECORD_PARAMETERS: 'true' } });
    expect(optedIn.spans[0].status.message).toContain('canary-bound-value');
  });
});
