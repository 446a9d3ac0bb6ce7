import { context, createContextKey, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InstrumentationBase, InstrumentationNodeModuleDefinition, isWrapped } from '@opentelemetry/instrumentation';
import type { SiteRef } from '../../src/callsite';
import { guarded, internalErrorOccurred } from '../../src/guard';
import { QueryTracker, TrackedQuery } from '../../src/query-tracker';
import { getRuntime } from '../../src/runtime';
import { analyzeStatement, StatementInfo } from '../../src/statement';
import { executingSite, executingTrail } from '../../src/trail';
import { VERSION } from '../../src/version';
import { serverFactsOf, watchServerRole } from './server-role';
import type { PgCallback, PgClient, PgInstrumentationConfig, PgSubmittable } from './types';

/** A pool.query in flight: the site and statement were taken in the app's call, before the pool's async hop. */
interface PoolQuery {
  text: string;
  statement: StatementInfo;
  site: SiteRef | undefined;
}
const POOL_QUERY = createContextKey('querytrail.pg.pool-query');
const SQLSTATE = /^[0-9A-Z]{5}$/;

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && SQLSTATE.test(code) ? code : undefined;
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

/**
 * node-postgres (pg, pg-pool, pg-cursor, pg-query-stream): one CLIENT span per query, where it ran
 * according to the server itself, and the execution site of the app's call.
 */
export class PgInstrumentation extends InstrumentationBase<PgInstrumentationConfig> {
  private tracker: QueryTracker | undefined;

  constructor(config: PgInstrumentationConfig = {}) {
    super('querytrail-pg', VERSION, config);
  }

  protected override init() {
    return [
      new InstrumentationNodeModuleDefinition(
        'pg',
        ['>=8.0.0 <9'],
        (pg: { Client: { prototype: Record<string, Function> } }) => {
          const proto = pg.Client.prototype;
          if (isWrapped(proto.query)) this._unwrap(proto, 'query');
          if (isWrapped(proto.connect)) this._unwrap(proto, 'connect');
          // The role probe must use pg's own query: it is querytrail's, not the app's, and gets no span.
          const unpatchedQuery = proto.query as QueryFn;
          this._wrap(proto, 'query', (original) => this.patchClientQuery(original as QueryFn));
          this._wrap(proto, 'connect', (original) => this.patchClientConnect(original as ConnectFn, unpatchedQuery));
          return pg;
        },
        (pg: { Client: { prototype: object } } | undefined) => {
          if (pg === undefined) return;
          this._unwrap(pg.Client.prototype, 'query' as never);
          this._unwrap(pg.Client.prototype, 'connect' as never);
        },
      ),
      new InstrumentationNodeModuleDefinition(
        'pg-pool',
        ['>=3.0.0 <4'],
        (Pool: { prototype: Record<string, Function> }) => {
          if (isWrapped(Pool.prototype.query)) this._unwrap(Pool.prototype, 'query');
          if (isWrapped(Pool.prototype.connect)) this._unwrap(Pool.prototype, 'connect');
          this._wrap(Pool.prototype, 'query', (original) => this.patchPoolQuery(original as QueryFn));
          this._wrap(Pool.prototype, 'connect', (original) =>
            patchPoolConnect(original as (cb?: PgCallback) => unknown),
          );
          return Pool;
        },
        (Pool: { prototype: object } | undefined) => {
          if (Pool === undefined) return;
          this._unwrap(Pool.prototype, 'query' as never);
          this._unwrap(Pool.prototype, 'connect' as never);
        },
      ),
    ];
  }

  // InstrumentationBase calls this from its constructor, before this class's fields exist.
  protected override _updateMetricInstruments(): void {
    this.tracker?.createInstruments(this.meter);
  }

  private getTracker(): QueryTracker {
    if (this.tracker === undefined) {
      this.tracker = new QueryTracker(() => this.tracer, getRuntime());
      this.tracker.createInstruments(this.meter);
    }
    return this.tracker;
  }

  /** pool.query hops through pool.connect's callback: take the site now, while the app is on the stack. */
  private patchPoolQuery(original: QueryFn): QueryFn {
    return function poolQuery(this: unknown, config: unknown, ...rest: unknown[]) {
      let pending: PoolQuery | undefined;
      try {
        const text = textOf(config);
        if (text !== undefined) {
          const statement = analyzeStatement(text, 'postgresql');
          // An ORM calling pool.query after its own awaits (prisma's adapter, drizzle) has no app frame left but
          // V8's async frames, which may name a caller's `await`: the site the ORM took, if it took one, is better.
          const site = executingSite() ?? getRuntime().sites.executionSite(statement.text, poolQuery);
          pending = { text, statement, site };
        }
      } catch (err) {
        internalErrorOccurred('pg pool.query', err);
      }
      if (pending === undefined) return original.call(this, config, ...rest);
      return context.with(context.active().setValue(POOL_QUERY, pending), () => original.call(this, config, ...rest));
    };
  }

  private patchClientQuery(original: QueryFn): QueryFn {
    const instrumentation = this;
    return function clientQuery(this: PgClient, config: unknown, values?: unknown, callback?: unknown) {
      const args = arguments;
      let started: ReturnType<PgInstrumentation['startQuery']>;
      try {
        started = instrumentation.startQuery(this, config, values, clientQuery);
      } catch (err) {
        internalErrorOccurred('pg client.query', err);
      }
      if (started === undefined) return original.apply(this, args as never);
      const { query, rejection } = started;
      const tracker = instrumentation.getTracker();
      const cb = (typeof values === 'function' ? values : callback) as PgCallback | undefined;
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
        const wrapped = function (this: unknown, err: unknown, res: unknown) {
          tracker.finish(query, err ?? undefined, sqlState(err));
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
        (res) => {
          tracker.finish(query);
          return res;
        },
        (err) => {
          tracker.finish(query, err, sqlState(err));
          throw err;
        },
      );
    };
  }

  private startQuery(
    client: PgClient,
    config: unknown,
    values: unknown,
    below: Function,
  ): { query: TrackedQuery; rejection?: Error } | undefined {
    const text = textOf(config);
    if (text === undefined) return undefined;
    const runtime = getRuntime();
    const ctx = context.active();
    const pending = ctx.getValue(POOL_QUERY) as PoolQuery | undefined;
    const fromPool = pending !== undefined && pending.text === text;
    const statement = fromPool ? pending.statement : analyzeStatement(text, 'postgresql');
    // An ORM runs its queries after its own awaits: no application frame is left to capture here.
    const site = fromPool
      ? pending.site
      : executingTrail(ctx) === undefined
        ? runtime.sites.executionSite(statement.text, below)
        : executingSite(ctx);
    return this.getTracker().start({
      library: 'pg',
      statement,
      server: serverFactsOf(client, runtime.databases),
      site,
      parameters: valuesOf(config, values),
    });
  }

  private patchClientConnect(original: ConnectFn, query: QueryFn): ConnectFn {
    const instrumentation = this;
    return function clientConnect(this: PgClient, callback?: PgCallback) {
      const runtime = getRuntime();
      guarded('pg connect', () => watchServerRole(this, runtime.databases, (sql, cb) => query.call(this, sql, cb)));
      if (!runtime.config.connectSpans) return original.call(this, callback);
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

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- pg's Client and Pool both
type QueryFn = (this: any, config: unknown, values?: unknown, callback?: unknown) => unknown;
type ConnectFn = (this: PgClient, callback?: PgCallback) => unknown;

/** A client handed out later (the pool was busy) must still run in the caller's context, not the releaser's. */
function patchPoolConnect(original: (cb?: PgCallback) => unknown) {
  return function poolConnect(this: unknown, cb?: PgCallback) {
    return original.call(this, typeof cb === 'function' ? context.bind(context.active(), cb) : cb);
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
