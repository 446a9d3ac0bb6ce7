// querytrail/testing in a user's real jest and vitest projects that drive the app in-process with
// supertest: the test with an N+1 fails with querytrail's message, the clean one passes.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FIXTURES, lineOf, ROOT, topology } from '../support/run-fixture';

const PROJECTS = path.join(FIXTURES, 'in-process');
const APP = path.join(PROJECTS, 'app.js');

interface TestOutcome {
  title: string;
  passed: boolean;
  messages: string[];
}

/** Runs a runner's CLI in the project's directory; reads its JSON report. */
function runProject(runner: 'jest' | 'vitest', args: string[]): Promise<TestOutcome[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-in-process-'));
  const report = path.join(dir, 'report.json');
  const cwd = path.join(PROJECTS, runner);
  const bin = path.join(ROOT, 'node_modules', '.bin', runner);
  const env: NodeJS.ProcessEnv = { ...process.env, QT_PRIMARY: topology().primary, NO_COLOR: '1' };
  delete env.JEST_WORKER_ID;
  return new Promise((resolve, reject) => {
    execFile(bin, [...args, '--outputFile', report], { cwd, env, timeout: 90_000 }, (error, stdout, stderr) => {
      if (!fs.existsSync(report)) return reject(new Error(`${runner} wrote no report: ${error}\n${stdout}\n${stderr}`));
      const results = JSON.parse(fs.readFileSync(report, 'utf8')) as {
        testResults: { assertionResults: { title: string; status: string; failureMessages: string[] }[] }[];
      };
      fs.rmSync(dir, { recursive: true, force: true });
      resolve(
        results.testResults
          .flatMap((file) => file.assertionResults)
          .map((t) => ({ title: t.title, passed: t.status === 'passed', messages: t.failureMessages })),
      );
    });
  });
}

const RUNS: [string, () => Promise<TestOutcome[]>, RegExp][] = [
  // jest: its own module registry, which --require hooks never see; the default threshold (5)
  ['jest', () => runProject('jest', ['--config', 'jest.config.js', '--json']), /SELECT authors ran 5 times/],
  // vitest: workers started without --require; strict mode fails the second lookup (threshold 2)
  ['vitest', () => runProject('vitest', ['run', '--config', 'vitest.config.mjs', '--reporter=json']), /ran 2 times/],
];

describe.each(RUNS)('querytrail/testing under %s', (_runner, run, count) => {
  let outcomes: TestOutcome[];
  beforeAll(async () => {
    outcomes = await run();
  }, 100_000);

  it('passes the test without a hazard', () => {
    expect(outcomes.find((t) => t.title.includes('in one query'))).toMatchObject({ passed: true });
  });

  it("fails the test with an N+1, with querytrail's message naming the line of the loop", () => {
    const failed = outcomes.find((t) => t.title.includes('looking up each author'))!;
    expect(failed.passed).toBe(false);
    const message = failed.messages.join('\n');
    expect(message).toContain('querytrail found 1 hazard');
    expect(message).toMatch(count);
    expect(message).toContain(`from ${APP}:${lineOf(APP, 'lookup')}:`);
    expect(message).toContain('load them with their parent through `include`');
  });
});
