import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CallSite, internSite, isApplicationFile, resolveSite, SiteRef, StackCapture } from '../../src/callsite';
import type { CapturePolicy } from '../../src/config';
import { SiteCapture } from '../../src/site-capture';
import { analyzeKeywords, analyzeStatement, loadPostgresParser } from '../../src/statement';
import { lexSql } from '../../src/sql-lexer';

/** A SiteCapture whose every call uses one policy, as one instrumentation's calls do. */
function withPolicy(policy: CapturePolicy) {
  const sites = new SiteCapture();
  return {
    executionSite: (shape: string, below: Function, scope?: unknown) =>
      sites.executionSite(shape, below, policy, scope),
    constructionSite: (below: Function, phase: 'init' | 'request' | 'job') =>
      sites.constructionSite(below, phase, policy, undefined),
    eagerCallSite: (below: Function, phase: 'init' | 'request' | 'job', receiver?: object) =>
      sites.constructionSite(below, phase, policy, { receiver, scopeKey: undefined }),
    constructionForSpan: (shape: string, ref: StackCapture) =>
      sites.objectSite('construction', 'knex', shape, ref, undefined),
    completionSite: (shape: string, below: Function) => sites.completionSite(shape, below, policy, undefined),
    learn: (shape: string, ref: SiteRef | undefined, site: CallSite | undefined, scope?: unknown) =>
      sites.learn(shape, ref, site, scope),
    captureNextTime: (shape: string) => sites.hazardFired(shape, undefined, undefined, false, undefined),
    captureConstructionsForAWhile: () =>
      sites.hazardFired(
        '',
        undefined,
        { site: undefined, parent: undefined, parts: undefined } as never,
        true,
        undefined,
      ),
  };
}

function captureHere(): StackCapture {
  return new StackCapture(captureHere);
}

describe('call sites', () => {
  // Line numbers here are ts-jest's transpiled ones; the integration tests check exact lines.
  it('resolves a capture to the first application frame, lazily, once', () => {
    const capture = captureHere();
    const site = capture.resolve()!;
    expect(site.file).toBe(__filename);
    expect(capture.resolve()).toBe(site);
    expect(site.codeAttributes).toMatchObject({ 'code.file.path': __filename, 'code.line.number': site.line });
  });

  it('interns sites: the same position is the same object', () => {
    expect(internSite('/app/a.js', 3, 7, 'f')).toBe(internSite('/app/a.js', 3, 7, 'f'));
    expect(resolveSite(internSite('/app/a.js', 3, 7))).toBe(internSite('/app/a.js', 3, 7));
  });

  it('skips node internals, dependencies and querytrail itself', () => {
    expect(isApplicationFile('node:internal/process/task_queues')).toBe(false);
    expect(isApplicationFile('/srv/app/node_modules/pg/lib/client.js')).toBe(false);
    expect(isApplicationFile(path.resolve(__dirname, '../../dist/src/agent.js'))).toBe(false);
    expect(isApplicationFile(path.resolve(__dirname, '../../src/callsite.ts'))).toBe(false);
    expect(isApplicationFile(path.resolve(__dirname, '../../examples/demo/app.js'))).toBe(true);
    expect(isApplicationFile('/srv/app/server.js')).toBe(true);
  });

  it('maps a compiled file through its inline source map', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-map-'));
    const file = path.join(dir, 'out.js');
    // out.js line 1 col 1 comes from src/app.ts line 10 col 5
    const map = { version: 3, sources: ['src/app.ts'], names: [], mappings: 'AASI' };
    fs.writeFileSync(
      file,
      `run();\n//# sourceMappingURL=data:application/json;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}\n`,
    );
    const site = internSite(file, 1, 1, 'run');
    expect(site).toMatchObject({ file: path.join(dir, 'src', 'app.ts'), line: 10, column: 5, function: 'run' });
    fs.rmSync(dir, { recursive: true });
  });
});

describe('an installed stack formatter (jest maps positions of code it compiled)', () => {
  it('maps a position through it once: the same position later is the same site, without asking again', () => {
    const previous = Error.prepareStackTrace;
    let asked = 0;
    // a formatter that moves every position 100 lines down, as a transform's source map would
    Error.prepareStackTrace = (_err, frames) => {
      asked++;
      const frame = frames[0];
      return `Error\n    at ${frame.getFileName()}:${(frame.getLineNumber() ?? 0) + 100}:${frame.getColumnNumber()}`;
    };
    try {
      const sites = [0, 1].map(() => captureHere().resolve()); // one position, two captures
      expect(sites[0]).toBe(sites[1]);
      expect(sites[0]?.line).toBeGreaterThan(100);
      expect(asked).toBe(1);
    } finally {
      Error.prepareStackTrace = previous;
    }
  });
});

describe('capture depth', () => {
  // A dependency (under node_modules) that runs `fn` `depth` frames below its caller, as an ORM does.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-depth-'));
  const orm = path.join(dir, 'node_modules', 'orm', 'index.js');
  fs.mkdirSync(path.dirname(orm), { recursive: true });
  fs.writeFileSync(
    orm,
    'exports.call = function call(depth, fn) { return depth === 0 ? fn() : [call(depth - 1, fn)][0]; };',
  );
  const { call } = require(orm) as { call: (depth: number, fn: () => StackCapture) => StackCapture };
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('takes as many frames as the application frame lay below, and the whole depth after one was cut short', () => {
    const patched = (): StackCapture => new StackCapture(patched); // the patched ORM function
    const file = (capture: StackCapture) => capture.resolve()?.file;
    const learning = Array.from({ length: 3 }, () => call(2, patched)); // 40 frames each
    expect(learning.map(file)).toEqual([__filename, __filename, __filename]);
    // learned: 3 ORM frames and a margin of 4; a path 20 frames deep is cut short once, then taken whole
    expect(file(call(20, patched))).toBeUndefined();
    expect(file(call(20, patched))).toBe(__filename);
    expect(file(call(2, patched))).toBe(__filename);
  });
});

describe('SiteCapture: the auto capture policy', () => {
  const site = internSite('/app/a.js', 1, 1);
  const other = internSite('/app/b.js', 2, 2);
  const capture = () => new StackCapture(capture);

  it('captures until a shape was confirmed at one site, then re-checks it on its 64th run', () => {
    const sites = withPolicy('auto');
    for (let i = 0; i < 3; i++) {
      const ref = sites.executionSite('SELECT ?', captureHere);
      expect(ref).toBeInstanceOf(StackCapture);
      sites.learn('SELECT ?', ref, site);
    }
    const refs = Array.from({ length: 64 }, () => sites.executionSite('SELECT ?', captureHere));
    expect(refs.slice(0, 63).every((r) => r === site)).toBe(true);
    expect(refs[63]).toBeInstanceOf(StackCapture);
  });

  it('each re-check that names the learned site doubles the runs to the next one, up to 1 024', () => {
    const sites = withPolicy('auto');
    for (let i = 0; i < 3; i++) sites.learn('SELECT ?', captureHere(), site);
    /** The runs up to and including the next re-check, which is told `seen`. */
    const runsToRecheck = (seen: CallSite) => {
      for (let run = 1; run <= 4096; run++) {
        const ref = sites.executionSite('SELECT ?', captureHere);
        if (ref instanceof StackCapture) {
          sites.learn('SELECT ?', ref, seen);
          return run;
        }
        expect(ref).toBe(site);
      }
      return Infinity;
    };
    expect(Array.from({ length: 7 }, () => runsToRecheck(site))).toEqual([64, 128, 256, 512, 1024, 1024, 1024]);
    // a re-check that names another line: captured every time from then on
    expect(runsToRecheck(other)).toBe(1024);
    for (let i = 0; i < 10; i++) expect(sites.executionSite('SELECT ?', captureHere)).toBeInstanceOf(StackCapture);
  });

  it('learns apart per route or job: a site confirmed in one is not used for the same statement in another', () => {
    const sites = withPolicy('auto');
    const loopRoute = { path: '/loop' };
    for (let i = 0; i < 3; i++) sites.learn('SELECT ?', capture(), site, loopRoute);
    expect(sites.executionSite('SELECT ?', captureHere, loopRoute)).toBe(site);
    expect(sites.executionSite('SELECT ?', captureHere, { path: '/lazy' })).toBeInstanceOf(StackCapture);
    expect(sites.executionSite('SELECT ?', captureHere, 'nightly job')).toBeInstanceOf(StackCapture);
  });

  it('past 1 000 routes or jobs, the rest share one table (dynamic job names cannot grow it without bound)', () => {
    const sites = withPolicy('auto');
    for (let job = 0; job < 1000; job++) sites.learn('SELECT ?', capture(), site, `import ${job}`);
    // the 1 001st and later job names learn into the table of no scope, which they then share
    for (let i = 0; i < 3; i++) sites.learn('SELECT ?', capture(), site, 'import 1000');
    expect(sites.executionSite('SELECT ?', captureHere, 'import 1001')).toBe(site);
    expect(sites.executionSite('SELECT ?', captureHere, undefined)).toBe(site);
  });

  it('always captures a shape seen at two sites', () => {
    const sites = withPolicy('auto');
    sites.learn('SELECT ?', capture(), site);
    sites.learn('SELECT ?', capture(), other);
    for (let i = 0; i < 100; i++) expect(sites.executionSite('SELECT ?', captureHere)).toBeInstanceOf(StackCapture);
  });

  it('captures next time after a hazard fired without a site', () => {
    const sites = withPolicy('auto');
    for (let i = 0; i < 3; i++) sites.learn('X', capture(), site);
    expect(sites.executionSite('X', captureHere)).toBe(site);
    sites.captureNextTime('X');
    expect(sites.executionSite('X', captureHere)).toBeInstanceOf(StackCapture);
  });

  it('constructions: captured at init always; under lean, in requests only for a while after a hazard lacked a site', () => {
    expect(withPolicy('auto').constructionSite(captureHere, 'request')).toBeInstanceOf(StackCapture);
    const lean = withPolicy('lean');
    expect(lean.constructionSite(captureHere, 'init')).toBeInstanceOf(StackCapture);
    expect(lean.constructionSite(captureHere, 'request')).toBeUndefined();
    expect(lean.constructionSite(captureHere, 'job')).toBeUndefined();
    // a call that runs what it builds: the capture is where it runs
    expect(lean.eagerCallSite(captureHere, 'request')).toBeInstanceOf(StackCapture);
    lean.captureConstructionsForAWhile();
    expect(lean.constructionSite(captureHere, 'request')).toBeInstanceOf(StackCapture);
    expect(withPolicy('off').constructionSite(captureHere, 'init')).toBeUndefined();
  });

  it('under lean, an eager call’s line is learned per receiver: captured until confirmed, then re-checked on its 64th call', () => {
    const lean = withPolicy('lean');
    const model = {};
    const call = (): SiteRef | undefined => lean.eagerCallSite(call, 'request', model); // the patched method
    // resolved where they are taken: no span needs to format them (prisma sends batched calls under one trail)
    const learning = Array.from({ length: 3 }, call);
    expect(learning.every((ref) => ref instanceof StackCapture && ref.isResolved)).toBe(true);
    const site = resolveSite(learning[0]);
    expect(site?.file).toBe(__filename);
    const later = Array.from({ length: 63 }, call);
    expect(later.every((ref) => ref === site)).toBe(true);
    // the re-check is the 64th call: this one, from a second line, has the call captured every time from then on
    const recheck = call();
    expect(recheck).toBeInstanceOf(StackCapture);
    expect(resolveSite(recheck)?.line).not.toBe(site?.line);
    expect(Array.from({ length: 10 }, call).every((ref) => ref instanceof StackCapture)).toBe(true);
    expect(withPolicy('auto').eagerCallSite(captureHere, 'request', model)).toBeInstanceOf(StackCapture);
  });

  it('calls that alternate between receivers, routes and methods each keep their own line', () => {
    const sites = new SiteCapture();
    const [model, other] = [{}, {}];
    const call = (receiver: object, scopeKey: unknown): SiteRef | undefined =>
      sites.constructionSite(call, 'request', 'lean', { receiver, scopeKey });
    const otherMethod = (receiver: object): SiteRef | undefined =>
      sites.constructionSite(otherMethod, 'request', 'lean', { receiver, scopeKey: 'GET /a' });
    // learned for the model on one route (three captures), interleaved with two of each of the calls the line
    // must not be learned for: those are one capture short of learning theirs
    const modelOnA = () => call(model, 'GET /a'); // one line, whichever line calls it
    for (let i = 0; i < 2; i++) {
      expect(modelOnA()).toBeInstanceOf(StackCapture);
      expect(call(other, 'GET /a')).toBeInstanceOf(StackCapture);
      expect(call(model, 'GET /b')).toBeInstanceOf(StackCapture);
      expect(otherMethod(model)).toBeInstanceOf(StackCapture);
    }
    expect(modelOnA()).toBeInstanceOf(StackCapture);
    const learned = call(model, 'GET /a');
    expect(learned).not.toBeInstanceOf(StackCapture);
    expect((learned as CallSite).file).toBe(__filename);
    // each right after the learned call: another method, receiver or route must not reuse its slot
    expect(otherMethod(model)).toBeInstanceOf(StackCapture);
    expect(call(model, 'GET /a')).toBe(learned);
    expect(call(other, 'GET /a')).toBeInstanceOf(StackCapture);
    expect(call(model, 'GET /a')).toBe(learned);
    expect(call(model, 'GET /b')).toBeInstanceOf(StackCapture);
    expect(call(model, 'GET /a')).toBe(learned);
  });

  it('an eager call learned at one line that sends another first statement has its line checked again', async () => {
    await loadPostgresParser();
    // prisma 7's findUnique, and its dataloader's one query for concurrent findUniques
    const authors = analyzeStatement('SELECT a.id FROM a WHERE (a.id = $1 AND 1=1) LIMIT $2 OFFSET $3', 'postgresql');
    const batched = analyzeStatement('SELECT a.id FROM a WHERE a.id IN ($1,$2,$3) OFFSET $4', 'postgresql');
    expect(batched.fingerprint).not.toBe(authors.fingerprint);
    const articles = analyzeStatement('SELECT * FROM articles WHERE author_id = $1', 'postgresql');
    const sites = new SiteCapture();
    const model = {};
    const call = (): { ref: SiteRef | undefined; learning: object | undefined } => {
      const eager = { receiver: model, scopeKey: undefined, learning: undefined as object | undefined };
      return { ref: sites.constructionSite(call, 'request', 'lean', eager), learning: eager.learning };
    };
    const calls = (n: number) => Array.from({ length: n }, call); // every capture names this one line
    for (const { ref, learning } of calls(3)) {
      (ref as StackCapture).resolve();
      sites.eagerCallSent(learning!, authors);
    }
    const [learned] = calls(1);
    expect(learned.ref).not.toBeInstanceOf(StackCapture); // the learned line
    sites.eagerCallSent(learned.learning!, authors);
    expect(calls(1)[0].ref).not.toBeInstanceOf(StackCapture);
    // the batched form: the next calls are captured until two captures name the learned line again
    sites.eagerCallSent(learned.learning!, batched);
    const checks = calls(2); // both name this very line (resolved where taken)
    expect(checks.every(({ ref }) => ref instanceof StackCapture)).toBe(true);
    expect(calls(1)[0].ref).not.toBeInstanceOf(StackCapture); // learned again, with both statements
    // checked again from the first interval: the 64th call after it was learned again (one is made above)
    const afterRelearning = calls(63);
    expect(afterRelearning.slice(0, 62).every(({ ref }) => !(ref instanceof StackCapture))).toBe(true);
    expect(afterRelearning[62].ref).toBeInstanceOf(StackCapture);
    sites.eagerCallSent(calls(1)[0].learning!, batched);
    expect(calls(1)[0].ref).not.toBeInstanceOf(StackCapture);
    // another statement, and a check from another line (this one): captured from then on
    sites.eagerCallSent(calls(1)[0].learning!, articles);
    expect(call().ref).toBeInstanceOf(StackCapture);
    expect(calls(10).every(({ ref }) => ref instanceof StackCapture)).toBe(true);
  });

  it('the same first statement analysed by keywords before libpg-query loaded, then parsed, is one statement', async () => {
    await loadPostgresParser();
    const text = 'SELECT * FROM authors WHERE id = $1';
    const { sanitized, words } = lexSql(text, 'postgresql');
    const byKeywords = analyzeKeywords(sanitized, words);
    const parsed = analyzeStatement(text, 'postgresql');
    expect(byKeywords.parsed).toBe(false);
    expect(parsed.parsed).toBe(true);
    expect(byKeywords.fingerprint).not.toBe(parsed.fingerprint);
    const sites = new SiteCapture();
    const model = {};
    const call = (): { ref: SiteRef | undefined; learning: object | undefined } => {
      const eager = { receiver: model, scopeKey: undefined, learning: undefined as object | undefined };
      return { ref: sites.constructionSite(call, 'request', 'lean', eager), learning: eager.learning };
    };
    const sent = [byKeywords, byKeywords, parsed, parsed, byKeywords];
    for (const [i, { ref, learning }] of Array.from({ length: 3 }, call).entries()) {
      (ref as StackCapture).resolve();
      sites.eagerCallSent(learning!, sent[i]);
    }
    for (const statement of sent.slice(3)) {
      const { ref, learning } = call();
      expect(ref).not.toBeInstanceOf(StackCapture); // still learned: nothing said another line ran it
      sites.eagerCallSent(learning!, statement);
    }
    expect(call().ref).not.toBeInstanceOf(StackCapture);
  });

  it('span attributes reuse a shape’s confirmed construction site instead of formatting each capture', () => {
    const sites = withPolicy('auto');
    const refs = Array.from({ length: 4 }, () => capture()); // one construction site, four objects
    const first = refs.slice(0, 3).map((ref) => sites.constructionForSpan('SELECT ?', ref));
    expect(first.every((s) => s === first[0] && s?.file === __filename)).toBe(true);
    expect(sites.constructionForSpan('SELECT ?', refs[3])).toBe(first[0]);
    expect(refs[3].isResolved).toBe(false); // not formatted
  });

  it('a shape whose captures name no application frame learns that: no capture at the driver, only the re-checks', () => {
    const sites = withPolicy('auto');
    const nowhere = () => new StackCapture(nowhere); // as from a thenable's own `then`: nothing of the app below
    let captured = 0;
    for (let i = 0; i < 640; i++) {
      const ref = sites.executionSite('SELECT ?', nowhere);
      if (ref instanceof StackCapture) {
        captured++;
        sites.learn('SELECT ?', ref, undefined); // what it resolved to
      }
    }
    expect(captured).toBeLessThanOrEqual(3 + 10);
  });

  it('a hazard on a shape whose captures name no application frame does not turn on a capture per run', () => {
    const sites = withPolicy('auto');
    const nowhere = () => new StackCapture(nowhere);
    for (let i = 0; i < 3; i++) sites.learn('SELECT ?', nowhere(), undefined);
    sites.captureNextTime('SELECT ?'); // an N+1 of an ORM's queries the driver alone sees (no app frame)
    const refs = Array.from({ length: 63 }, () => sites.executionSite('SELECT ?', nowhere));
    expect(refs.filter((ref) => ref instanceof StackCapture)).toHaveLength(0);
  });

  it('completion sites are learned per shape too', () => {
    const sites = withPolicy('auto');
    const completed = (): unknown => sites.completionSite('SELECT ?', completed); // the driver's handler
    const captures = jest.spyOn(Error, 'captureStackTrace');
    const seen = new Set<unknown>();
    for (let i = 0; i < 640; i++) seen.add(completed()); // one awaiting line
    expect([...seen].map((s) => (s as { file?: string } | undefined)?.file)).toEqual([__filename]);
    expect(captures.mock.calls.length).toBeLessThanOrEqual(3 + 10);
    captures.mockRestore();
    expect(withPolicy('off').completionSite('SELECT ?', completed)).toBeUndefined();
  });

  it('off never captures; all always does', () => {
    expect(withPolicy('off').executionSite('X', captureHere)).toBeUndefined();
    const all = withPolicy('all');
    for (let i = 0; i < 5; i++) all.learn('X', capture(), site);
    expect(all.executionSite('X', captureHere)).toBeInstanceOf(StackCapture);
  });
});
