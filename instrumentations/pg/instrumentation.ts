import { Context, context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { activeContext } from '../../src/active-context';
import type { SiteRef } from '../../src/callsite';
import { capturePolicyOf } from '../../src/config';
import { executionSite } from '../../src/execution-site';
import { guarded, internalErrorOccurred } from '../../src/guard';
import type { TrackedQuery, QueryTracker } from '../../src/query-tracker';
import { getRuntime } from '../../src/runtime';
import { currentScope, Scope } from '../../src/scope';
import { currentExecution, Execution, sendsNow } from '../../src/seam';
import { analyzeStatement, StatementInfo } from '../../src/statement';
import type { LibraryProfile } from '../../src/trail';
import { QuerytrailInstrumentation } from '../querytrail-instrumentation';
import { confirmServerRole, isRoleAsker, RawQuery, serverFactsOf, watchServerRole } from './server-role';
import type { PgCallback, PgClient, PgInstrumentationConfig, PgSubmittable } from './types';

/** A pool.query in flight: the site and statement were taken in the app's call, before the pool's async hop. */
interface PoolQuery {
  text: string;
  statement: StatementInfo;
  site: SiteRef | undefined;
  /** The query object pool.query was called for: a runner's send (sendsNow) is over by the time it connects. */
  execution: Execution | undefined;
  /** The app's context, restored for client.query by pool.connect's callback; read once per query. */
  ctx: Context;
  scope: Scope | undefined;
  /**
   * A query object run through pool.query's promise (drizzle): its span ends in a reaction to that promise,
   * in the app's awaiting chain, where its execution site can still be taken. Raw calls end in the callback,
   * and so does an object run where it was built (prisma's model calls): its site is known, and a reaction
   * would cost a promise more.
   */
  endsOnPromise: boolean;
  query?: TrackedQuery;
}
/**
 * pool.query calls pool.connect synchronously, and client.query synchronously in connect's callback: the
 * pool.query in flight is handed from one to the next through these two slots, not through the context (a
 * context value costs a copy of the context per query).
 */
let poolQueryCalling: PoolQuery | undefined;
let poolQueryConnected: PoolQuery | undefined;
/** Set on a client while a query whose role was just confirmed goes through again. */
const ROLE_CONFIRMED = Symbol('querytrail.pg.role-confirmed');
const SQLSTATE = /^[0-9A-Z]{5}$/;

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined;
}

function isThenable(value: unknown): value is Promise<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as Promise<unknown>).then === 'function';
}

function textOf(config: unknown): string | undefined {
  if (typeof config === 'string') return config;
  const c = config as Partial<PgSubmittable> | null;
  return c?.text ?? c?.cursor?.text;
}

function valuesOf(config: unknown, values: unknown): readonly unknown[] | undefined {
  if (Array.isArray(values)) return values;
  const c = config as Partial<PgSubmittable> | null;
  return c?.values ?? c?.cursor?.values;
}

const PG: LibraryProfile = { name: 'pg', batchAdvice: 'fetch them in one query with `= ANY($1)` and an array' };

/**
 * node-postgres (pg, pg-pool, pg-cursor, pg-query-stream): one CLIENT span per query, where it ran
 * according to the server itself, and the execution site of the app's call.
 */
export class PgInstrumentation extends QuerytrailInstrumentation<PgInstrumentationConfig> {
  constructor(config: PgInstrumentationConfig = {}) {
    super(PG, config);
  }

  protected override readonly unsupportedConsequence = 'its queries are not traced';

  protected override defaults(): Partial<PgInstrumentationConfig> {
    const { config } = getRuntime();
    return {
      capture: capturePolicyOf(config),
      connectSpans: config.connectSpans,
      recordParameters: config.recordParameters,
    };
  }

  protected override init() {
    return this.checkingVersions([
      this.patchModule('pg', ['>=8.0.0 <9'], (pg) => {
        // The role probe must use pg's own query: it is querytrail's, not the app's, and gets no span.
        const unpatchedQuery = pg.Client?.prototype.query as QueryFn;
        this.wrapMethod(pg.Client, 'query', (original) => this.patchClientQuery(original as QueryFn));
        this.wrapMethod(pg.Client, 'connect', (original) =>
          this.patchClientConnect(original as ConnectFn, unpatchedQuery),
        );
      }),
      this.patchModule('pg-pool', ['>=3.0.0 <4'], (Pool) => {
        this.wrapMethod(Pool, 'query', (original) => this.patchPoolQuery(original as QueryFn));
        this.wrapMethod(Pool, 'connect', (original) => patchPoolConnect(original as (cb?: PgCallback) => unknown));
      }),
    ]);
  }

  /**
   * pool.query hops through pool.connect's callback: take the site now, while the app is on the stack. When
   * the app awaits the pool's promise, the span ends in a reaction to it, in the app's awaiting chain.
   */
  private patchPoolQuery(original: QueryFn): QueryFn {
    const instrumentation = this;
    return function poolQuery(this: unknown, ...args: unknown[]) {
      let pending: PoolQuery | undefined;
      try {
        pending = instrumentation.poolQueryOf(args, poolQuery);
      } catch (err) {
        internalErrorOccurred('pg pool.query', err);
      }
      if (pending === undefined) return original.apply(this, args as never);
      poolQueryCalling = pending;
      let result: unknown;
      try {
        result = original.apply(this, args as never);
      } finally {
        poolQueryCalling = undefined;
      }
      if (!pending.endsOnPromise || !isThenable(result)) return result;
      const tracker = getRuntime().tracker;
      return result.then(
        function succeeded(res) {
          if (pending.query) tracker.finish(pending.query, undefined, undefined, succeeded);
          return res;
        },
        function failed(err) {
          if (pending.query) tracker.finish(pending.query, err, sqlState(err), failed);
          throw err;
        },
      );
    };
  }

  private poolQueryOf(args: unknown[], below: Function): PoolQuery | undefined {
    const text = textOf(args[0]);
    if (text === undefined) return undefined;
    const statement = analyzeStatement(text, 'postgresql');
    const ctx = activeContext();
    const execution = currentExecution(ctx);
    const scope = currentScope(ctx);
    const site = executionSite(execution, statement.text, below, this.capturePolicy(), getRuntime().sites, scope);
    // the object's own construction site is its execution site (src/execution-site.ts): nothing to take later
    const siteKnown = site !== undefined && site === execution?.trail.site;
    const endsOnPromise =
      execution?.trail !== undefined && !siteKnown && typeof args[1] !== 'function' && typeof args[2] !== 'function';
    return { text, statement, site, execution, ctx, scope, endsOnPromise };
  }

  private patchClientQuery(original: QueryFn): QueryFn {
    const instrumentation = this;
    return function clientQuery(this: PgClient, ...args: unknown[]) {
      const [config, values, callback] = args;
      if (instrumentation.mayBePromoted(this, config)) {
        return instrumentation.afterRoleConfirmed(this, args, original, clientQuery);
      }
      let started: ReturnType<PgInstrumentation['startQuery']>;
      try {
        started = instrumentation.startQuery(this, config, values, clientQuery);
      } catch (err) {
        internalErrorOccurred('pg client.query', err);
      }
      if (started === undefined) return original.apply(this, args as never);
      const { query, rejection } = started;
      const tracker = getRuntime().tracker;
      // only a function is a callback: pg itself throws for anything else, and so must the call here
      const cb = (typeof values === 'function' ? values : typeof callback === 'function' ? callback : undefined) as
        PgCallback | undefined;
      const submittable =
        config !== null && typeof (config as PgSubmittable).submit === 'function'
          ? (config as PgSubmittable)
          : undefined;

      if (rejection !== undefined) {
        tracker.finish(query, rejection);
        if (submittable) {
          process.nextTick(() => submittable.handleError(rejection, this.connection));
          return submittable;
        }
        if (cb) {
          process.nextTick(cb, rejection);
          return undefined;
        }
        return (this._Promise ?? Promise).reject(rejection);
      }

      if (submittable) {
        guarded('pg submittable', () => endOnCompletion(submittable, tracker, query));
        return original.apply(this, args as never);
      }
      if (cb) {
        const pooled = started.pooled;
        const wrapped = function (this: unknown, err: unknown, res: unknown) {
          // a query object's pool.query ends the span in its own promise's reaction
          if (pooled?.endsOnPromise) pooled.query = query;
          else tracker.finish(query, err ?? undefined, sqlState(err));
          return cb.call(this, err, res);
        };
        return typeof values === 'function'
          ? original.call(this, config, wrapped)
          : original.call(this, config, values, wrapped);
      }
      let result: unknown;
      try {
        result = original.apply(this, args as never);
      } catch (err) {
        tracker.finish(query, err);
        throw err;
      }
      if (result === undefined || typeof (result as Promise<unknown>).then !== 'function') return result;
      return (result as Promise<unknown>).then(
        function succeeded(res) {
          tracker.finish(query, undefined, undefined, succeeded);
          return res;
        },
        function failed(err) {
          tracker.finish(query, err, sqlState(err), failed);
          throw err;
        },
      );
    };
  }

  /**
   * Strict mode refuses writes to a replica before they are sent, so a connection idle since its server was
   * promoted (it still looks like a replica: the server says otherwise only in its next response) would have
   * every write refused for good. Such a write waits for one round trip asking the server's role.
   */
  private mayBePromoted(client: PgClient, config: unknown): boolean {
    const runtime = getRuntime();
    // outside strict mode (production): one property read per query, no closure
    if (!runtime.hazards.strictAny || client[ROLE_CONFIRMED]) return false;
    try {
      if (serverFactsOf(client, runtime.databases).role !== 'replica') return false;
      const text = textOf(config);
      return text !== undefined && analyzeStatement(text, 'postgresql').isWrite;
    } catch (err) {
      internalErrorOccurred('pg role check', err);
      return false;
    }
  }

  /** Asks the server its role, then runs the app's call as it was made, in its context; returns what pg would. */
  private afterRoleConfirmed(client: PgClient, args: unknown[], original: QueryFn, patched: QueryFn): unknown {
    const [config, values, callback] = args;
    const ctx = context.active();
    // a runner's synchronous send (sendsNow) is over when the answer comes: it goes through again with it
    const execution = currentExecution(ctx);
    const probe = (sql: string, cb: (err: unknown, res?: any) => void) => original.call(client, sql, cb);
    const facts = serverFactsOf(client, getRuntime().databases);
    const call = () => patched.apply(client, args as never);
    const again = () => {
      client[ROLE_CONFIRMED] = true;
      try {
        return context.with(ctx, () => (execution ? sendsNow(execution.trail, call, execution.from) : call()));
      } finally {
        client[ROLE_CONFIRMED] = false;
      }
    };
    const submittable = typeof (config as PgSubmittable | null)?.submit === 'function';
    if (submittable || typeof values === 'function' || typeof callback === 'function') {
      confirmServerRole(facts, probe, again);
      return submittable ? config : undefined;
    }
    const PromiseType = client._Promise ?? Promise;
    return new PromiseType((resolve, reject) =>
      confirmServerRole(facts, probe, () => {
        try {
          Promise.resolve(again()).then(resolve, reject);
        } catch (err) {
          reject(err);
        }
      }),
    );
  }

  /** Everything the tracker needs, read here once: context, scope, the ORM's trail, the execution site. */
  private startQuery(
    client: PgClient,
    config: unknown,
    values: unknown,
    below: Function,
  ): { query: TrackedQuery; rejection?: Error; pooled: PoolQuery | undefined } | undefined {
    const text = textOf(config);
    if (text === undefined) return undefined;
    const runtime = getRuntime();
    const pending = poolQueryConnected;
    poolQueryConnected = undefined;
    const pooled = pending !== undefined && pending.text === text ? pending : undefined;
    const ctx = pooled ? pooled.ctx : activeContext();
    const execution = pooled ? pooled.execution : currentExecution(ctx);
    const statement = pooled ? pooled.statement : analyzeStatement(text, 'postgresql');
    const options = this.getConfig();
    const scope = pooled ? pooled.scope : currentScope(ctx);
    const { query, rejection } = runtime.tracker.start({
      tracer: this.tracer,
      driver: PG,
      ctx,
      scope,
      trail: execution?.trail,
      site: pooled
        ? pooled.site
        : executionSite(execution, statement.text, below, this.capturePolicy(), runtime.sites, scope),
      statement,
      text,
      server: serverFactsOf(client, runtime.databases),
      parameters: valuesOf(config, values),
      recordParameters: options.recordParameters === true,
      capture: this.capturePolicy(),
    });
    return { query, rejection, pooled };
  }

  private patchClientConnect(original: ConnectFn, query: QueryFn): ConnectFn {
    const instrumentation = this;
    return function clientConnect(this: PgClient, callback?: PgCallback) {
      const runtime = getRuntime();
      guarded('pg connect', () => watchServerRole(this, runtime.databases, query as RawQuery));
      if (!instrumentation.getConfig().connectSpans || isRoleAsker(this)) return original.call(this, callback);
      const facts = serverFactsOf(this, runtime.databases);
      const span = instrumentation.tracer.startSpan('connect', {
        kind: SpanKind.CLIENT,
        attributes: { ...facts.ref.serverAttributes, ...facts.ref.boundAttributes },
      });
      const end = (err: unknown) => {
        if (err) span.setStatus({ code: SpanStatusCode.ERROR, message: String((err as Error).message ?? err) });
        span.end();
      };
      if (callback) {
        return original.call(this, (err: unknown, res?: unknown) => {
          end(err);
          callback(err, res);
        });
      }
      return (original.call(this) as Promise<unknown>).then(
        (res) => (end(undefined), res),
        (err) => {
          end(err);
          throw err;
        },
      );
    };
  }
}

// pg's Client and Pool both
type QueryFn = (this: any, config: unknown, values?: unknown, callback?: unknown) => unknown;
type ConnectFn = (this: PgClient, callback?: PgCallback) => unknown;

/**
 * A client handed out later (the pool was busy) must still run in the caller's context, not the releaser's;
 * a pool.query's own connect hands its query in flight to the client.query its callback makes.
 */
function patchPoolConnect(original: (cb?: PgCallback) => unknown) {
  return function poolConnect(this: unknown, cb?: PgCallback) {
    if (typeof cb !== 'function') return original.call(this, cb);
    const pending = poolQueryCalling;
    poolQueryCalling = undefined;
    const ctx = pending?.ctx ?? activeContext();
    return original.call(this, function connected(this: unknown, err: unknown, client?: unknown, release?: unknown) {
      const outer = poolQueryConnected;
      poolQueryConnected = pending;
      try {
        // an idle client is handed out on a later tick of the same context: nothing to restore
        if (activeContext() === ctx) return (cb as (...args: unknown[]) => unknown).call(this, err, client, release);
        return context.with(ctx, cb as (...args: unknown[]) => unknown, this, err, client, release);
      } finally {
        poolQueryConnected = outer;
      }
    } as PgCallback);
  };
}

/** Submittables (Query objects, pg-cursor, pg-query-stream) report their outcome to the driver's handlers. */
function endOnCompletion(submittable: PgSubmittable, tracker: QueryTracker, query: TrackedQuery): void {
  const handleError = submittable.handleError;
  const handleReadyForQuery = submittable.handleReadyForQuery;
  submittable.handleError = function (err: unknown, connection?: unknown) {
    tracker.finish(query, err, sqlState(err));
    return handleError.call(this, err, connection);
  };
  submittable.handleReadyForQuery = function (connection?: unknown) {
    tracker.finish(query);
    return handleReadyForQuery.call(this, connection);
  };
}
