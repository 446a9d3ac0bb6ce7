import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { checkSupportedVersion } from '../../src/versions';
import { AGENT } from '../support/run-fixture';

/** An app whose node_modules holds stand-ins of the libraries at the given versions. */
function appWith(modules: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-versions-'));
  for (const [name, version] of Object.entries(modules)) {
    const moduleDir = path.join(dir, 'node_modules', name);
    fs.mkdirSync(moduleDir, { recursive: true });
    fs.writeFileSync(path.join(moduleDir, 'package.json'), JSON.stringify({ name, version, main: 'index.js' }));
    fs.writeFileSync(path.join(moduleDir, 'index.js'), 'module.exports = {};\n');
  }
  fs.writeFileSync(
    path.join(dir, 'app.js'),
    `${Object.keys(modules)
      .map((m) => `require('${m}');`)
      .join('\n')}\n`,
  );
  return dir;
}

function run(dir: string): { status: number | null; stderr: string } {
  const env = { ...process.env, OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none' };
  const child = spawnSync(process.execPath, ['--require', AGENT, 'app.js'], { cwd: dir, env, encoding: 'utf8' });
  return { status: child.status, stderr: child.stderr };
}

describe('a library version outside the supported ranges', () => {
  it('is reported once at start-up, naming the library, its version, the ranges and what still works', () => {
    const dir = appWith({ knex: '1.0.7', pg: '7.18.2', kysely: '0.27.6' });
    try {
      const { status, stderr } = run(dir);
      expect(status).toBe(0);
      expect(stderr.trim().split('\n').sort()).toEqual([
        'querytrail: knex 1.0.7 is not supported (supported: >=2.4.0 <4); ' +
          'its queries are still traced as driver (pg) spans, without provenance',
        'querytrail: kysely 0.27.6 is not supported (supported: >=0.28.0 <0.30); ' +
          'its queries are still traced as driver (pg) spans, without provenance',
        'querytrail: pg 7.18.2 is not supported (supported: >=8.0.0 <9); its queries are not traced',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says nothing about supported versions', () => {
    const dir = appWith({ knex: '2.5.1', typeorm: '0.3.17', 'drizzle-orm': '0.29.0' });
    try {
      expect(run(dir)).toEqual({ status: 0, stderr: '' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is said once per library and version', () => {
    const lines: string[] = [];
    for (let i = 0; i < 3; i++) checkSupportedVersion('lib', '1.0.0', ['>=2'], 'x', (line) => lines.push(line));
    checkSupportedVersion('lib', '2.1.0', ['>=2'], 'x', (line) => lines.push(line));
    expect(lines).toEqual(['querytrail: lib 1.0.0 is not supported (supported: >=2); x']);
  });
});
