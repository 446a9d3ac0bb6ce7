import type { Context } from '@opentelemetry/api';
import { activeContext } from '../../src/active-context';
import { InstrumentationNodeModuleDefinition } from '@opentelemetry/instrumentation';
import type { DatabaseRef } from '../../src/database';
import { guarded, internalErrorOccurred } from '../../src/guard';
import { FirstRun, judgeAwaitOfKeptResult } from '../../src/memoised-results';
import { getRuntime } from '../../src/runtime';
import { currentScope, Phase, phaseOf, Scope } from '../../src/scope';
import { currentExecution, runAs, RunFrom, runningCall } from '../../src/seam';
import type { LibraryProfile, Trail } from '../../src/trail';
import { pgTargetOf, pgTargetOfSettings } from '../pg/target';
import { ClassExports, Method, QuerytrailInstrumentation } from '../querytrail-instrumentation';
import type { PrismaClientClass, PrismaInstrumentationConfig, PrismaPromiseFactory, PrismaRawClient } from './types';

const PRISMA: LibraryProfile = {
  name: 'prisma',
  primaryReadAdvice: 'read through `$primary()`',
  batchAdvice: 'load them with their parent through `include`, or in one `findMany({ where: { id: { in: ids } } })`',
};
const VERSIONS = ['>=7.0.0 <8'];
const READ_REPLICAS_VERSIONS = ['>=0.4.0 <1'];
/**
 * What querytrail keeps per raw client, read on every model call: its PrismaPromise factory holds it, so a
 * call reads no property of the client (a large object, whose symbol-keyed reads are megamorphic).
 */
class ClientState {
  /** `primary` or `replica` with `@prisma/extension-read-replicas`. */
  pool: string | undefined;
  private bindingKnown = false;
  private boundTo: DatabaseRef | undefined;
  /** Per model, then per action: no name built on every call. */
  private readonly keys = new Map<unknown, Map<string, object>>();
  /** The key found last: a handler's or a loop's calls repeat one, and skip the two lookups. */
  private lastModel: unknown;
  private lastAction: string | undefined;
  private lastKey: object | undefined;

  constructor(private readonly client: PrismaRawClient) {}

  /** The database its `@prisma/adapter-pg` factory points at (a pg Pool it was given, or its pool config). */
  binding(): DatabaseRef | undefined {
    if (!this.bindingKnown) {
      const factory = this.client._engineConfig?.adapter;
      const databases = getRuntime().databases;
      if (factory?.adapterName === '@prisma/adapter-pg') {
        this.boundTo = factory.externalPool
          ? pgTargetOf(factory.externalPool, databases)
          : pgTargetOfSettings(factory.config ?? {}, databases);
      }
      this.bindingKnown = true;
    }
    return this.boundTo;
  }

  /** See callKeyOf. */
  callKey(params: unknown): object {
    const { model, action } = (params ?? {}) as { model?: unknown; action?: unknown };
    if (typeof action !== 'string') return this.client;
    const byModel = typeof model === 'string' ? model : undefined;
    if (this.lastKey !== undefined && this.lastModel === byModel && this.lastAction === action) return this.lastKey;
    let actions = this.keys.get(byModel);
    if (actions === undefined) this.keys.set(byModel, (actions = new Map()));
    let key = actions.get(action);
    if (key === undefined) actions.set(action, (key = { model: byModel, action }));
    this.lastModel = byModel;
    this.lastAction = action;
    this.lastKey = key;
    return key;
  }
}

const clientStates = new WeakMap<PrismaRawClient, ClientState>();

function stateOf(client: PrismaRawClient): ClientState {
  let state = clientStates.get(client);
  if (state === undefined) clientStates.set(client, (state = new ClientState(client)));
  return state;
}

/**
 * What a PrismaPromise's line is learned per (with the route or job): its client's model and action
 * (`item.findUnique`), which prisma passes next to the query; the client itself for raw queries. Per client
 * alone, every model call of a handler would share one slot, and tell each other apart only by statement.
 */
export function callKeyOf(client: PrismaRawClient, params: unknown): object {
  return stateOf(client).callKey(params);
}

/** The client whose `$transaction` made a transaction trail. */
const transactionClients = new WeakMap<Trail, PrismaRawClient>();

function rawClientOf(client: unknown): PrismaRawClient | undefined {
  if (client === null || typeof client !== 'object') return undefined;
  return (client as PrismaRawClient)._originalClient ?? (client as PrismaRawClient);
}

/**
 * prisma 7 with `@prisma/adapter-pg` (CommonJS runtime, `@prisma/client/runtime/client`), and
 * `@prisma/extension-read-replicas`: a trail for every PrismaPromise (model calls, `$queryRaw`,
 * `$executeRaw`) made where the app calls the client, handed to the pg span when prisma runs it — at the
 * first `await`, which may be much later; a memoised result awaited again in another request is a
 * hazard of its own. `$transaction` gets a trail for its BEGIN/COMMIT. With read replicas, each client's
 * pool is `primary` or `replica`.
 */
export class PrismaInstrumentation extends QuerytrailInstrumentation<PrismaInstrumentationConfig> {
  constructor(config: PrismaInstrumentationConfig = {}) {
    super(PRISMA, config);
  }

  protected override init() {
    return this.checkingVersions([
      new InstrumentationNodeModuleDefinition('@prisma/client', VERSIONS, undefined, undefined, [
        this.patchFile('@prisma/client/runtime/client.js', VERSIONS, (exports: ClassExports) => {
          const patched = this.writableCopy(exports);
          this.replaceExport(patched, 'getPrismaClient', (original) => this.makesClientClass(original));
          return patched;
        }),
      ]),
      this.patchModule('@prisma/extension-read-replicas', READ_REPLICAS_VERSIONS, (exports: ClassExports) => {
        const patched = this.writableCopy(exports);
        this.replaceExport(patched, 'readReplicas', marksPools);
        return patched;
      }),
    ]);
  }

  /** `getPrismaClient(config)` makes the generated client's class: a subclass instruments each instance. */
  private makesClientClass(original: (config: unknown) => PrismaClientClass) {
    const instrumentation = this;
    return function getPrismaClient(config: unknown): PrismaClientClass {
      const Client = original(config);
      instrumentation.wrapMethod(Client as { prototype?: Record<string, Method> }, '$transaction', (original) =>
        instrumentation.startsTransaction(original),
      );
      return class PrismaClient extends Client {
        constructor(...args: unknown[]) {
          super(...args);
          // the generated client keeps this class after an unpatch: a disabled instrumentation leaves it alone
          if (!instrumentation.isEnabled()) return;
          guarded('prisma client', () => {
            const client = rawClientOf(this);
            if (client !== undefined && typeof client._createPrismaPromise === 'function') {
              client._createPrismaPromise = instrumentation.tracesPromises(client, client._createPrismaPromise);
            }
          });
        }
      };
    };
  }

  /**
   * The trail of a PrismaPromise. One made while another runs — the read-replicas extension re-issuing a
   * read on a replica client, prisma's own follow-ups — belongs to that one: it keeps its site, with this
   * client's binding and pool.
   */
  private promiseTrail(client: ClientState, below: Function, params: unknown, ctx: Context): Trail | undefined {
    const binding = client.binding();
    if (binding === undefined) return undefined;
    const pool = client.pool;
    const running = runningCall(PRISMA, ctx);
    if (running !== undefined) {
      return running.binding === binding && running.pool === pool ? running : { ...running, binding, pool };
    }
    // usually awaited where it is made: its construction is where it runs
    const trail = this.startTrail(below, { binding, eager: true, receiver: client.callKey(params) }, ctx);
    if (pool !== undefined) trail.pool = pool;
    return trail;
  }

  /**
   * Each PrismaPromise gets a trail where the app makes it, and runs as it when prisma runs it. The context
   * is read once in each (try/catch, not guarded(): no closure per call): each read costs about as much as
   * the rest of the wrapper. prisma makes one per model call: what querytrail allocates for it is its trail
   * and the run callback's closure, and where it runs, the kept run that watches its later awaits.
   */
  private tracesPromises(client: PrismaRawClient, factory: PrismaPromiseFactory): PrismaPromiseFactory {
    const instrumentation = this;
    const state = stateOf(client);
    return function createPrismaPromise(this: unknown, callback, params) {
      // prisma 7 passes (callback, params): any other form goes through as it came (`arguments`: a rest
      // parameter would allocate an array on every call)
      // eslint-disable-next-line prefer-rest-params
      if (!instrumentation.isEnabled() || arguments.length > 2) return Reflect.apply(factory, this, arguments);
      let built: Trail | undefined;
      try {
        built = instrumentation.promiseTrail(state, createPrismaPromise, params, activeContext());
      } catch (err) {
        internalErrorOccurred('prisma construction', err);
      }
      if (built === undefined) return factory.call(this, callback, params);
      const trail = built;
      return factory.call(
        this,
        function runsQuery(this: unknown, transaction?: unknown) {
          let ctx: Context | undefined;
          let scope: Scope | undefined;
          let runAsTrail: Trail | undefined;
          let from: RunFrom = 'await';
          try {
            ctx = activeContext();
            scope = currentScope(ctx);
            runAsTrail = runsAs(trail, client, currentExecution(ctx)?.trail, transaction);
            // Run by the first `then`, from a microtask. Awaited in the scope it was built in, the line that
            // built it is the line that awaits it (prisma may batch it with others: V8's async frames would
            // name theirs).
            if (trail.phase !== 'init' && trail.scopeId === scope?.id) from = 'construction';
          } catch (err) {
            internalErrorOccurred('prisma run', err);
          }
          let result: unknown;
          if (runAsTrail === undefined) result = callback.call(this, transaction);
          // prisma calls it as a plain function: no closure is needed to pass `this`
          else if (this === undefined) result = runAs(runAsTrail, callback, from, ctx, transaction);
          else result = runAs(runAsTrail, () => callback.call(this, transaction), from, ctx);
          try {
            return keptRunOf(result, trail, scope);
          } catch (err) {
            internalErrorOccurred('prisma kept run', err);
            return result;
          }
        },
        params,
      );
    };
  }

  /** BEGIN/COMMIT of `$transaction(...)` carry its line; the promises it runs carry their own. */
  private startsTransaction(original: Method): Method {
    const instrumentation = this;
    return function $transaction(this: unknown, ...args: unknown[]) {
      const trail = guarded('prisma transaction', () => {
        const client = rawClientOf(this);
        const binding = client === undefined ? undefined : stateOf(client).binding();
        if (binding === undefined) return undefined;
        const started = instrumentation.startTrail($transaction, {
          binding,
          kind: 'transaction',
          eager: true,
          receiver: client,
        });
        transactionClients.set(started, client as PrismaRawClient);
        return started;
      });
      if (trail === undefined) return original.apply(this, args);
      return runAs(trail, () => original.apply(this, args), 'construction');
    };
  }
}

/**
 * What a PrismaPromise's run returned, as prisma keeps it: prisma memoises the run callback's result and calls
 * its `then`, `catch` or `finally` once for each of the app's (a PrismaPromise's own methods run the callback
 * first). The first is the await that ran the query; every later one returns the kept result, and is judged.
 * One object a run, made where it runs (a run in a batch `$transaction`, which prisma does not memoise, gets its
 * own): the PrismaPromise the app holds is left as prisma made it.
 */
class KeptRun implements FirstRun {
  private awaits = 0;
  readonly phase: Phase;
  readonly scopeId: number | undefined;
  readonly at = Date.now();

  constructor(
    private readonly result: Promise<unknown>,
    private readonly trail: Trail,
    scope: Scope | undefined,
  ) {
    this.phase = phaseOf(scope);
    this.scopeId = scope?.id;
  }

  /** The error an await of the kept result rejects with (strict mode), from the second await on. */
  private judgeAwait(): Error | undefined {
    return this.awaits++ === 0 ? undefined : judgeAwaitOfKeptResult(this.trail, this);
  }

  then(fulfilled?: unknown, rejected?: unknown): unknown {
    const rejection = this.judgeAwait();
    if (rejection !== undefined) return Promise.reject(rejection).then(fulfilled as never, rejected as never);
    return this.result.then(fulfilled as never, rejected as never);
  }

  catch(rejected?: unknown): unknown {
    const rejection = this.judgeAwait();
    if (rejection !== undefined) return Promise.reject(rejection).catch(rejected as never);
    return this.result.catch(rejected as never);
  }

  finally(settled?: unknown): unknown {
    const rejection = this.judgeAwait();
    if (rejection !== undefined) return Promise.reject(rejection).finally(settled as never);
    return this.result.finally(settled as never);
  }

  /** A batch `$transaction` asks the run for its part: what prisma would get without querytrail, else this. */
  requestTransaction(transaction: unknown): unknown {
    const inner = this.result as { requestTransaction?: (transaction: unknown) => unknown };
    return typeof inner.requestTransaction === 'function' ? inner.requestTransaction(transaction) : this;
  }
}

/** The run's result as prisma keeps it: watched when it is a promise with all three methods, else as it is. */
function keptRunOf(result: unknown, trail: Trail, scope: Scope | undefined): unknown {
  const run = result as Partial<Promise<unknown>> | null | undefined;
  if (typeof run?.then !== 'function' || typeof run.catch !== 'function' || typeof run.finally !== 'function') {
    return result;
  }
  return new KeptRun(run as Promise<unknown>, trail, scope);
}

/**
 * What a PrismaPromise runs as. A batch `$transaction([...])` runs its own client's queries together, under
 * its line (undefined: nothing to enter). Another client's query in a batch, or any awaited in an interactive
 * transaction's callback (its `tx` queries do not come here), runs outside it: a hazard when that is another
 * database.
 */
function runsAs(built: Trail, client: PrismaRawClient, running: Trail | undefined, transaction: unknown) {
  if (running?.kind !== 'transaction' || running.library !== PRISMA) return built;
  const inBatch = (transaction as { kind?: string } | undefined)?.kind === 'batch';
  if (inBatch && transactionClients.get(running) === client) return undefined;
  return { ...built, transaction: running };
}

/** `readReplicas({ replicas })`: the replica clients' pool is `replica`, the extended client's `primary`. */
function marksPools(original: (options: { replicas?: unknown[] }) => unknown) {
  return function readReplicas(options: { replicas?: unknown[] }) {
    const extension = original(options);
    guarded('prisma read replicas', () => {
      for (const replica of options?.replicas ?? []) {
        const client = rawClientOf(replica);
        if (client !== undefined) stateOf(client).pool = 'replica';
      }
    });
    if (typeof extension !== 'function') return extension;
    return function extend(this: unknown, client: unknown) {
      guarded('prisma read replicas', () => {
        const primary = rawClientOf(client);
        const state = primary === undefined ? undefined : stateOf(primary);
        if (state !== undefined && state.pool === undefined) state.pool = 'primary';
      });
      return (extension as Method).call(this, client);
    };
  };
}
