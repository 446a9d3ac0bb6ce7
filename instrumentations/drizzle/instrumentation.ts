import { InstrumentationNodeModuleDefinition } from '@opentelemetry/instrumentation';
import { guarded } from '../../src/guard';
import { getRuntime } from '../../src/runtime';
import { embed, runAs, sendsNow } from '../../src/seam';
import type { LibraryProfile, Trail } from '../../src/trail';
import { pgTargetOf } from '../pg/target';
import { ClassExports, Method, QuerytrailInstrumentation } from '../querytrail-instrumentation';
import type { DrizzleBuilder, DrizzleInstrumentationConfig } from './types';

const DRIZZLE: LibraryProfile = {
  name: 'drizzle',
  batchAdvice: 'fetch them in one query with `inArray`, or with their parent through the relational `with`',
};
const TRAIL = Symbol('querytrail.drizzle.trail');
const VERSIONS = ['>=0.29.0 <1'];

/**
 * The SQL objects a builder produced outside any preparation (`.as()`, `$with(...).as(builder)`, `toSQL()`), so
 * parts can be traced back: such SQL sits in a tree (a sub-query's `_.sql`) where drizzle compiles it without
 * asking its builder again.
 */
const sqlOwners = new WeakMap<object, Trail>();
/**
 * Whether any such SQL was made: until then, no SQL tree can hide a part, and trees are not walked (a walk
 * costs a PK select ~9 000 instructions: it reads four properties on every node of a dozen shapes).
 */
let ownedSqlMade = false;

/** The query object being prepared: `_prepare` → `sqlToQuery` (parts) → `prepareQuery` (tag) run synchronously. */
let preparing: Trail | undefined;

function trailOf(object: unknown): Trail | undefined {
  return object !== null && typeof object === 'object'
    ? ((object as DrizzleBuilder)[TRAIL] as Trail | undefined)
    : undefined;
}

function isObject(value: unknown): boolean {
  return value !== null && typeof value === 'object';
}

/**
 * Every query object reachable from an SQL tree: embedded builders, and SQL a builder produced. Most nodes
 * are leaves (strings, params, columns): they are passed over without being remembered. Embedded builders
 * are also found as drizzle compiles them (`ownsSql`); SQL a builder produced earlier only by this walk.
 */
function collectParts(node: unknown, outer: Trail, seen: Set<unknown>, depth: number): void {
  if (node === null || typeof node !== 'object' || depth > 64) return;
  const n = node as { queryChunks?: unknown; _?: { sql?: unknown }; value?: unknown };
  const chunks = Array.isArray(n.queryChunks) ? n.queryChunks : undefined;
  const inner = n._?.sql;
  // a StringChunk's value is strings; a Param's may hold objects
  const values = Array.isArray(n.value) && n.value.some(isObject) ? n.value : undefined;
  const part = trailOf(node) ?? (chunks !== undefined ? sqlOwners.get(node) : undefined);
  if (part === undefined && chunks === undefined && inner === undefined && values === undefined) return;
  if (seen.has(node)) return;
  seen.add(node);
  if (part !== undefined) embed(outer, part);
  if (chunks !== undefined) for (const chunk of chunks) collectParts(chunk, outer, seen, depth + 1);
  if (inner !== undefined) collectParts(inner, outer, seen, depth + 1);
  if (values !== undefined) for (const v of values) collectParts(v, outer, seen, depth + 1);
}

/**
 * drizzle-orm 0.4x, pg-core with the node-postgres driver, CommonJS and ESM builds: a trail for every
 * select, insert, update, delete, `db.execute` and relational query (`db.query.*`), bound to the session's pool
 * as chosen at construction
 * (so a `withReplicas` select shows the replica it was pinned to); parts found in the SQL tree being
 * compiled; the trail of the running query handed to the pg span.
 */
export class DrizzleInstrumentation extends QuerytrailInstrumentation<DrizzleInstrumentationConfig> {
  constructor(config: DrizzleInstrumentationConfig = {}) {
    super(DRIZZLE, config);
  }

  protected override init() {
    const constructs = (original: Method) => this.constructs(original);
    // every query class: the SQL it produces is traced back to it, and preparing it records its parts
    const queryClass = (target: ClassExports[string]) => {
      this.wrapMethod(target, 'getSQL', ownsSql);
      this.wrapMethod(target, '_prepare', prepares);
    };
    const files = (ext: string) => [
      this.patchFile(`drizzle-orm/pg-core/query-builders/select.${ext}`, VERSIONS, (e: ClassExports) => {
        this.wrapMethod(e.PgSelectBuilder, 'from', constructs);
        this.wrapMethod(e.PgSelectQueryBuilderBase, 'getSQL', ownsSql);
        this.wrapMethod(e.PgSelectBase, '_prepare', prepares);
      }),
      this.patchFile(`drizzle-orm/pg-core/query-builders/insert.${ext}`, VERSIONS, (e: ClassExports) => {
        this.wrapMethod(e.PgInsertBuilder, 'values', constructs);
        this.wrapMethod(e.PgInsertBuilder, 'select', constructs);
        queryClass(e.PgInsertBase);
      }),
      this.patchFile(`drizzle-orm/pg-core/query-builders/update.${ext}`, VERSIONS, (e: ClassExports) => {
        this.wrapMethod(e.PgUpdateBuilder, 'set', constructs);
        queryClass(e.PgUpdateBase);
      }),
      this.patchFile(`drizzle-orm/pg-core/query-builders/delete.${ext}`, VERSIONS, (e: ClassExports) => {
        queryClass(e.PgDeleteBase);
      }),
      this.patchFile(`drizzle-orm/pg-core/query-builders/query.${ext}`, VERSIONS, (e: ClassExports) => {
        this.wrapMethod(e.RelationalQueryBuilder, 'findMany', constructs);
        this.wrapMethod(e.RelationalQueryBuilder, 'findFirst', constructs);
        queryClass(e.PgRelationalQuery);
      }),
      this.patchFile(`drizzle-orm/pg-core/db.${ext}`, VERSIONS, (e: ClassExports) => {
        this.wrapMethod(e.PgDatabase, 'delete', constructs);
        this.wrapMethod(e.PgDatabase, 'execute', (original) => this.executesRaw(original));
      }),
      this.patchFile(`drizzle-orm/pg-core/dialect.${ext}`, VERSIONS, (e: ClassExports) =>
        this.wrapMethod(e.PgDialect, 'sqlToQuery', compiles),
      ),
      this.patchFile(`drizzle-orm/node-postgres/session.${ext}`, VERSIONS, (e: ClassExports) => {
        this.wrapMethod(e.NodePgSession, 'prepareQuery', tagsPrepared);
        this.wrapMethod(e.NodePgPreparedQuery, 'execute', runs);
        this.wrapMethod(e.NodePgPreparedQuery, 'all', runs);
      }),
    ];
    return this.checkingVersions([
      new InstrumentationNodeModuleDefinition('drizzle-orm', VERSIONS, undefined, undefined, [
        ...files('cjs'),
        ...files('js'),
      ]),
    ]);
  }

  private stamp<T>(object: T, session: DrizzleBuilder['session'], below: Function): T {
    guarded('drizzle construction', () => {
      const binding = pgTargetOf(session?.client, getRuntime().databases);
      // awaited where it is built, and sent from its own `then`, where no application frame is on the stack:
      // its construction is the only line known when it starts running
      (object as DrizzleBuilder)[TRAIL] = this.startTrail(below, {
        binding,
        eager: true,
        receiver: session ?? undefined,
      });
    });
    return object;
  }

  /** A factory (on a builder or the database) that returns the finished query object; its session runs it. */
  private constructs(original: Method): Method {
    const instrumentation = this;
    return function construct(this: { session?: DrizzleBuilder['session'] }, ...args: unknown[]) {
      return instrumentation.stamp(original.apply(this, args), this.session, construct);
    };
  }

  /** `db.execute(sql)` compiles and prepares at once: the raw query is built here. */
  private executesRaw(original: Method): Method {
    const instrumentation = this;
    return function execute(this: { session?: DrizzleBuilder['session'] }, ...args: unknown[]) {
      const trail = trailOf(instrumentation.stamp({}, this.session, execute));
      const raw = withPreparing(trail, () => original.apply(this, args));
      if (trail !== undefined && raw !== null && typeof raw === 'object') (raw as DrizzleBuilder)[TRAIL] = trail;
      return raw;
    };
  }
}

/**
 * Another builder's SQL asked for while one is prepared is compiled into it (drizzle asks every builder it
 * meets in the tree: `inArray(col, builder)`, a `sql` template, a union's other side): a part. Asked for outside
 * any preparation, its SQL is remembered. SQL made for the builder's own preparation is neither.
 */
function ownsSql(original: Method): Method {
  return function getSQL(this: DrizzleBuilder, ...args: unknown[]) {
    const sql = original.apply(this, args);
    const trail = trailOf(this);
    if (trail === undefined || trail === preparing) return sql;
    const outer = preparing;
    if (outer !== undefined) guarded('drizzle parts', () => embed(outer, trail));
    else if (sql !== null && typeof sql === 'object') {
      sqlOwners.set(sql, trail);
      ownedSqlMade = true;
    }
    return sql;
  };
}

function withPreparing<T>(trail: Trail | undefined, fn: () => T): T {
  const previous = preparing;
  preparing = trail;
  try {
    return fn();
  } finally {
    preparing = previous;
  }
}

function prepares(original: Method): Method {
  return function _prepare(this: DrizzleBuilder, ...args: unknown[]) {
    const trail = trailOf(this);
    if (trail === undefined) return original.apply(this, args);
    trail.parts = undefined; // each preparation records its parts afresh
    return withPreparing(trail, () => original.apply(this, args));
  };
}

function compiles(original: Method): Method {
  return function sqlToQuery(this: unknown, sql: unknown, ...rest: unknown[]) {
    const outer = preparing;
    if (outer !== undefined && ownedSqlMade) guarded('drizzle parts', () => collectParts(sql, outer, new Set(), 0));
    return original.call(this, sql, ...rest);
  };
}

function tagsPrepared(original: Method): Method {
  return function prepareQuery(this: unknown, ...args: unknown[]) {
    const prepared = original.apply(this, args);
    if (preparing !== undefined && prepared !== null && typeof prepared === 'object')
      (prepared as DrizzleBuilder)[TRAIL] = preparing;
    return prepared;
  };
}

/**
 * A prepared query calls the driver before its first await, unless it has a result cache to look in first
 * (`cacheConfig`, set only when caching is enabled for it): then its run is told through the context.
 */
function runs(original: Method): Method {
  return function execute(this: DrizzleBuilder, ...args: unknown[]) {
    const trail = trailOf(this);
    if (trail === undefined) return original.apply(this, args);
    if (this.cacheConfig === undefined) return sendsNow(trail, () => original.apply(this, args));
    return runAs(trail, () => original.apply(this, args));
  };
}
