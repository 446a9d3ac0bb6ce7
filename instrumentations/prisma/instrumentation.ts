import { InstrumentationNodeModuleDefinition } from '@opentelemetry/instrumentation';
import type { DatabaseRef } from '../../src/database';
import { internalErrorOccurred } from '../../src/guard';
import type { FirstRun } from '../../src/hazards/memoised-result';
import { getRuntime } from '../../src/runtime';
import { currentScope, phaseOf } from '../../src/scope';
import { createTrail, executingTrail, Trail, withExecutionOf } from '../../src/trail';
import { VERSION } from '../../src/version';
import { pgTargetOf } from '../pg/target';
import { ClassExports, Method, PrototypeInstrumentation } from '../prototype-instrumentation';
import type {
  PrismaClientClass,
  PrismaInstrumentationConfig,
  PrismaPromise,
  PrismaPromiseFactory,
  PrismaRawClient,
} from './types';

const VERSIONS = ['>=7.0.0 <8'];
const READ_REPLICAS_VERSIONS = ['>=0.4.0 <1'];
const BINDING = Symbol('querytrail.prisma.binding');
const POOL = Symbol('querytrail.prisma.pool');

/** The client whose `$transaction` made a transaction trail. */
const transactionClients = new WeakMap<Trail, PrismaRawClient>();

function rawClientOf(client: unknown): PrismaRawClient | undefined {
  if (client === null || typeof client !== 'object') return undefined;
  return (client as PrismaRawClient)._originalClient ?? (client as PrismaRawClient);
}

/** The database the client's `@prisma/adapter-pg` factory points at (a pg Pool it was given, or its pool config). */
function bindingOf(client: PrismaRawClient): DatabaseRef | undefined {
  if (BINDING in client) return client[BINDING] as DatabaseRef | undefined;
  const factory = client._engineConfig?.adapter;
  const binding =
    factory?.adapterName === '@prisma/adapter-pg'
      ? pgTargetOf(factory.externalPool ?? { options: factory.config }, getRuntime().databases)
      : undefined;
  client[BINDING] = binding;
  return binding;
}

/**
 * The trail of a PrismaPromise. One made while another runs — the read-replicas extension re-issuing a
 * read on a replica client, prisma's own follow-ups — belongs to that one: it keeps its site, with this
 * client's binding and pool.
 */
function promiseTrail(client: PrismaRawClient, below: Function): Trail | undefined {
  const binding = bindingOf(client);
  if (binding === undefined) return undefined;
  const pool = client[POOL] as string | undefined;
  const running = executingTrail();
  if (running?.library === 'prisma' && running.kind !== 'transaction') {
    return running.binding === binding && running.pool === pool ? running : { ...running, binding, pool };
  }
  const trail = createTrail({
    library: 'prisma',
    site: getRuntime().sites.constructionSite(below, phaseOf(currentScope())),
    binding,
    kind: 'query',
  });
  if (pool !== undefined) trail.pool = pool;
  return trail;
}

/**
 * prisma 7 with `@prisma/adapter-pg` (CommonJS runtime, `@prisma/client/runtime/client`), and
 * `@prisma/extension-read-replicas`: a trail for every PrismaPromise (model calls, `$queryRaw`,
 * `$executeRaw`) made where the app calls the client, handed to the pg span when prisma runs it — at the
 * first `await`, which may be much later; a memoised result awaited again in another request is a
 * hazard of its own. `$transaction` gets a trail for its BEGIN/COMMIT. With read replicas, each client's
 * pool is `primary` or `replica`.
 */
export class PrismaInstrumentation extends PrototypeInstrumentation<PrismaInstrumentationConfig> {
  constructor(config: PrismaInstrumentationConfig = {}) {
    super('querytrail-prisma', VERSION, config);
  }

  protected override init() {
    return [
      new InstrumentationNodeModuleDefinition('@prisma/client', VERSIONS, undefined, undefined, [
        this.patchFile('@prisma/client/runtime/client.js', VERSIONS, (exports: ClassExports) => {
          const patched = this.writableCopy(exports);
          this.replaceExport(patched, 'getPrismaClient', (original) => this.makesClientClass(original));
          return patched;
        }),
      ]),
      new InstrumentationNodeModuleDefinition(
        '@prisma/extension-read-replicas',
        READ_REPLICAS_VERSIONS,
        (exports: ClassExports) => {
          const patched = this.writableCopy(exports);
          this.replaceExport(patched, 'readReplicas', marksPools);
          return patched;
        },
      ),
    ];
  }

  /** `getPrismaClient(config)` makes the generated client's class: a subclass instruments each instance. */
  private makesClientClass(original: (config: unknown) => PrismaClientClass) {
    const instrumentation = this;
    return function getPrismaClient(config: unknown): PrismaClientClass {
      const Client = original(config);
      instrumentation.wrapMethod(Client as { prototype?: Record<string, Method> }, '$transaction', startsTransaction);
      return class PrismaClient extends Client {
        constructor(...args: unknown[]) {
          super(...args);
          try {
            const client = rawClientOf(this);
            if (client !== undefined && typeof client._createPrismaPromise === 'function')
              client._createPrismaPromise = instrumentation.tracesPromises(client, client._createPrismaPromise);
          } catch (err) {
            internalErrorOccurred('prisma client', err);
          }
        }
      };
    };
  }

  private tracesPromises(client: PrismaRawClient, factory: PrismaPromiseFactory): PrismaPromiseFactory {
    const instrumentation = this;
    return function createPrismaPromise(this: unknown, callback, ...rest) {
      let trail: Trail | undefined;
      try {
        trail = promiseTrail(client, createPrismaPromise);
      } catch (err) {
        internalErrorOccurred('prisma construction', err);
      }
      if (trail === undefined) return factory.call(this, callback, ...rest);
      const built = trail;
      let firstRun: FirstRun | undefined;
      const promise = factory.call(
        this,
        function runsQuery(this: unknown, transaction?: unknown) {
          const scope = currentScope();
          firstRun ??= { phase: phaseOf(scope), scopeId: scope?.id, at: Date.now() };
          const running = executingTrail();
          let trail = built;
          if (running?.kind === 'transaction' && running.library === 'prisma') {
            // A batch `$transaction([...])` runs its own client's queries together, under its line. Another
            // client's query in a batch, or any awaited in an interactive transaction's callback (its `tx`
            // queries do not come here), runs outside it: a hazard when that is another database.
            const inBatch = (transaction as { kind?: string } | undefined)?.kind === 'batch';
            if (inBatch && transactionClients.get(running) === client) return callback.call(this, transaction);
            trail = { ...built, transaction: running };
          }
          // Run by the first `then`, from a microtask: no app frame is left. Built in this scope, its construction
          // line stands in; built elsewhere, the pg layer looks for the awaiting line in V8's async frames.
          const site = built.phase !== 'init' && built.scopeId === scope?.id ? built.site : undefined;
          return withExecutionOf(trail, () => callback.call(this, transaction), site);
        },
        ...rest,
      );
      try {
        instrumentation.watchesReuse(promise, built, () => firstRun);
      } catch (err) {
        internalErrorOccurred('prisma promise', err);
      }
      return promise;
    };
  }

  /** Every later `then`/`catch`/`finally` returns the kept result: judged there, since no query runs. */
  private watchesReuse(promise: PrismaPromise, trail: Trail, firstRunOf: () => FirstRun | undefined): void {
    const instrumentation = this;
    for (const name of ['then', 'catch', 'finally'] as const) {
      const original = promise[name];
      if (typeof original !== 'function') continue;
      promise[name] = function awaited(this: unknown, ...args: unknown[]) {
        const firstRun = firstRunOf();
        const rejection = firstRun === undefined ? undefined : instrumentation.reuse.judge(trail, firstRun);
        if (rejection !== undefined) return (Promise.reject(rejection) as unknown as PrismaPromise)[name](...args);
        return original.apply(this, args);
      };
    }
  }
}

/** BEGIN/COMMIT of `$transaction(...)` carry its line; the promises it runs carry their own. */
function startsTransaction(original: Method): Method {
  return function $transaction(this: unknown, ...args: unknown[]) {
    let trail: Trail | undefined;
    try {
      const client = rawClientOf(this);
      const binding = client === undefined ? undefined : bindingOf(client);
      if (binding !== undefined) {
        trail = createTrail({
          library: 'prisma',
          site: getRuntime().sites.constructionSite($transaction, phaseOf(currentScope())),
          binding,
          kind: 'transaction',
        });
        transactionClients.set(trail, client as PrismaRawClient);
      }
    } catch (err) {
      internalErrorOccurred('prisma transaction', err);
    }
    if (trail === undefined) return original.apply(this, args);
    return withExecutionOf(trail, () => original.apply(this, args), trail.site);
  };
}

/** `readReplicas({ replicas })`: the replica clients' pool is `replica`, the extended client's `primary`. */
function marksPools(original: (options: { replicas?: unknown[] }) => unknown) {
  return function readReplicas(options: { replicas?: unknown[] }) {
    const extension = original(options);
    try {
      for (const replica of options?.replicas ?? []) {
        const client = rawClientOf(replica);
        if (client !== undefined) client[POOL] = 'replica';
      }
    } catch (err) {
      internalErrorOccurred('prisma read replicas', err);
    }
    if (typeof extension !== 'function') return extension;
    return function extend(this: unknown, client: unknown) {
      try {
        const primary = rawClientOf(client);
        if (primary !== undefined && primary[POOL] === undefined) primary[POOL] = 'primary';
      } catch (err) {
        internalErrorOccurred('prisma read replicas', err);
      }
      return (extension as Method).call(this, client);
    };
  };
}
