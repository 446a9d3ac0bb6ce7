import { context, ROOT_CONTEXT } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { internSite } from '../../src/callsite';
import { runInJob } from '../../src/job';
import { currentScope, describeScope, phaseOf, requestScope, routeOf, withScope } from '../../src/scope';
import { currentExecution, embed as addPart, runAs as withExecutionOf, sendsNow, withoutTrail } from '../../src/seam';
import { lineageRoot } from '../../src/trail';
import { makeTrail as createTrail } from '../support/trails';

const executingTrail = () => currentExecution()?.trail;

const manager = new AsyncLocalStorageContextManager();
beforeAll(() => context.setGlobalContextManager(manager.enable()));
afterAll(() => {
  context.disable();
});

describe('scopes in the OpenTelemetry context', () => {
  it('is init outside any request or job', () => {
    expect(phaseOf(currentScope(ROOT_CONTEXT))).toBe('init');
    expect(describeScope(undefined)).toBe('init');
  });

  it('carries a request across awaits, and reads the express route when routing has happened', async () => {
    const req: { method: string; url: string; baseUrl?: string; route?: { path: string } } = {
      method: 'GET',
      url: '/api/patients/7?x=1',
    };
    const scope = requestScope(req);
    await withScope(scope, async () => {
      await new Promise((r) => setTimeout(r, 1));
      expect(currentScope()).toBe(scope);
      expect(routeOf(currentScope())).toBeUndefined();
      expect(describeScope(scope)).toBe('request GET /api/patients/7');
      req.baseUrl = '/api';
      req.route = { path: '/patients/:id' };
      expect(routeOf(currentScope())).toBe('GET /api/patients/:id');
    });
    expect(currentScope()).toBeUndefined();
  });

  it('runInJob marks background work and returns its result', async () => {
    const result = await runInJob('nightly', async () => {
      await Promise.resolve();
      expect(phaseOf(currentScope())).toBe('job');
      expect(describeScope(currentScope())).toBe('job "nightly"');
      return 42;
    });
    expect(result).toBe(42);
  });

  it('runInJob never calls then() on a lazy thenable (awaiting a query builder runs it)', () => {
    const builder = { then: jest.fn() };
    expect(runInJob('lazy', () => builder)).toBe(builder);
    expect(builder.then).not.toHaveBeenCalled();
  });

  it("runInJob passes a job's rejection on to the caller, who decides whether it is handled", async () => {
    await expect(runInJob('failing', async () => Promise.reject(new Error('job failed')))).rejects.toThrow(
      'job failed',
    );
  });
});

describe('trails', () => {
  it('records phase and scope at construction and leads a derived object back to its root', () => {
    const base = createTrail({ library: 'knex', site: internSite('/app/base.js', 1, 1) });
    expect(base.phase).toBe('init');
    const scope = requestScope({ method: 'GET', url: '/' });
    const derived = withScope(scope, () =>
      createTrail({ library: 'knex', site: internSite('/app/route.js', 9, 1), parent: base }),
    );
    expect(derived).toMatchObject({ phase: 'request', scopeId: scope.id });
    expect(lineageRoot(derived)).toBe(base);
    const part = createTrail({ library: 'knex', site: undefined });
    addPart(derived, part);
    expect(derived.parts).toEqual([part]);
  });

  it('inherits the binding of its parent', () => {
    const binding = { alias: 'main' } as never;
    const parent = createTrail({ library: 'knex', site: undefined, binding });
    expect(createTrail({ library: 'knex', site: undefined, parent }).binding).toBe(binding);
  });

  it('marks which query object is executing', async () => {
    const trail = createTrail({ library: 'knex', site: undefined });
    await withExecutionOf(trail, async () => {
      await Promise.resolve();
      expect(executingTrail()).toBe(trail);
    });
    expect(executingTrail()).toBeUndefined();
  });

  it("marks a runner's synchronous send, and nothing after its first await", async () => {
    const trail = createTrail({ library: 'knex', site: undefined });
    const seen: unknown[] = [];
    const sent = sendsNow(trail, async () => {
      seen.push(executingTrail());
      await Promise.resolve();
      seen.push(executingTrail());
    });
    expect(executingTrail()).toBeUndefined();
    await sent;
    expect(seen).toEqual([trail, undefined]);
  });

  it('lets a context execution (or none) inside a send say what runs', async () => {
    const [sending, inner] = [
      createTrail({ library: 'knex', site: undefined }),
      createTrail({ library: 'sequelize', site: undefined }),
    ];
    const seen: unknown[] = [];
    const later: Promise<void>[] = [];
    sendsNow(sending, () => {
      withExecutionOf(inner, () => {
        seen.push(executingTrail());
        later.push(Promise.resolve().then(() => void seen.push(executingTrail())));
      });
      withoutTrail(() => seen.push(executingTrail()));
      seen.push(executingTrail());
    });
    await Promise.all(later);
    expect(seen).toEqual([inner, undefined, sending, inner]);
  });
});
