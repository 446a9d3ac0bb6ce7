import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// bench/instructions.js's reading of callgrind dumps (plain JavaScript, as the benches are)
const { instructionsOf, totalOf } = require('../../bench/callgrind.js') as {
  instructionsOf(dump: string): { execution: number; gc: number; compiler: number };
  totalOf(dump: string): number | undefined;
};

describe('bench/callgrind.js', () => {
  it("splits self costs by the function that ran them; calls' inclusive costs left out", () => {
    const dump = [
      'version: 1',
      'creator: callgrind-3.19.0',
      'events: Ir',
      'fl=(1) /app/main.c',
      'fn=(1) main',
      '0 100',
      '+2 50',
      'cfn=(2) v8::internal::Heap::CollectGarbage(v8::internal::AllocationSpace)',
      'calls=1 0',
      '+1 1000',
      'fn=(2)',
      '0 300',
      'fn=(3) v8::internal::compiler::PipelineImpl::OptimizeGraph(v8::internal::compiler::Linkage*)',
      '-1 70',
      '* 5',
      'fn=(1)',
      '+3 7',
      'totals: 532',
    ].join('\n');
    expect(instructionsOf(dump)).toEqual({ execution: 157, gc: 300, compiler: 75 });
    expect(totalOf(dump)).toBe(532);
  });

  const valgrind = (() => {
    try {
      execFileSync('valgrind', ['--version']);
      return true;
    } catch {
      return false;
    }
  })();
  // valgrind is on every machine this project runs on (the instruction bench needs it); say so where it is not
  (valgrind ? it : it.skip)("reads a real callgrind dump whole: its parts add up to callgrind's own total", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'querytrail-callgrind-test-'));
    try {
      const out = path.join(dir, 'callgrind.out');
      execFileSync('valgrind', ['--tool=callgrind', '--quiet', `--callgrind-out-file=${out}`, 'ls', dir], {
        stdio: 'ignore',
      });
      const dump = fs.readFileSync(out, 'utf8');
      const { execution, gc, compiler } = instructionsOf(dump);
      expect(execution).toBeGreaterThan(10_000);
      expect(gc + compiler).toBe(0);
      expect(execution).toBe(totalOf(dump));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
