import { InstrumentationNodeModuleDefinition, isWrapped } from '@opentelemetry/instrumentation';
import type { DatabaseRef } from '../../src/database';
import { guarded } from '../../src/guard';
import { getRuntime } from '../../src/runtime';
import { runAs, sendsNow, TrailFacts } from '../../src/seam';
import type { LibraryProfile, Trail } from '../../src/trail';
import { pgTargetOf } from '../pg/target';
import { ClassExports, Method, Proto, QuerytrailInstrumentation } from '../querytrail-instrumentation';
import type {
  KyselyCompiledQuery,
  KyselyExecutor,
  KyselyInstrumentationConfig,
  KyselyNode,
  KyselyPostgresDialectConfig,
} from './types';

const KYSELY: LibraryProfile = {
  name: 'kysely',
  primaryReadAdvice: 'read through the primary dialect',
  batchAdvice: "fetch them in one query with `where(column, 'in', ids)`",
};
const TRAIL = Symbol('querytrail.kysely.trail');
const VERSIONS = ['>=0.28.0 <0.30'];
/** 0.28 ships CommonJS and ESM builds side by side; 0.29 is ESM only, in `dist/` itself. */
const BUILDS: [string, string[]][] = [
  ['dist/cjs/', ['>=0.28.0 <0.29']],
  ['dist/esm/', ['>=0.28.0 <0.29']],
  ['dist/', ['>=0.29.0 <0.30']],
];

/** The QueryCreator methods that start a query; chained builders keep the root's query id. */
const ROOT_BUILDERS = [
  'selectFrom',
  'selectNoFrom',
  'insertInto',
  'replaceInto',
  'deleteFrom',
  'updateTable',
  'mergeInto',
];

/**
 * The trail of the query object being created: set by the patched entry points (a QueryCreator method,
 * the `sql` tag), taken by the next `createQueryId()` — the first thing each of them evaluates. Query ids
 * created elsewhere (the driver's `begin`, expression-builder sub-queries) get no trail.
 */
let creating: Trail | undefined;

/** Every `new Kysely()` gets a fresh adapter from its dialect: adapter → the pool the dialect was given. */
const adapterBindings = new WeakMap<object, DatabaseRef | undefined>();
const executorBindings = new WeakMap<object, DatabaseRef | null>();

/**
 * The trail of an operation node a builder produced: for a part, found in the outer query's tree; for
 * a compiled query, the trail with the parts found while it compiled.
 */
const nodeTrails = new WeakMap<object, Trail>();

/** Nodes that hold values, not sub-trees: never walked (a bulk insert has thousands). */
const VALUE_NODES = new Set([
  'ValueNode',
  'PrimitiveValueListNode',
  'IdentifierNode',
  'ColumnNode',
  'TableNode',
  'SchemableIdentifierNode',
  'ReferenceNode',
]);

function trailOf(queryId: unknown): Trail | undefined {
  return queryId !== null && typeof queryId === 'object' ? (queryId as { [TRAIL]?: Trail })[TRAIL] : undefined;
}

function bindingOf(executor: KyselyExecutor): DatabaseRef | undefined {
  let ref = executorBindings.get(executor);
  if (ref === undefined) {
    try {
      ref = adapterBindings.get(executor.adapter) ?? null;
    } catch {
      ref = null; // the no-op executor of free-standing expressions throws: bound to nothing
    }
    executorBindings.set(executor, ref);
  }
  return ref ?? undefined;
}

/** The query objects embedded in a node tree (sub-queries, CTEs, builders in expressions). */
function partsIn(node: KyselyNode, parts: Trail[] | undefined, depth: number): Trail[] | undefined {
  if (depth > 64) return parts;
  for (const key in node) {
    const value = node[key];
    if (value === null || typeof value !== 'object') continue;
    if (Array.isArray(value)) {
      for (const item of value)
        if (item !== null && typeof item === 'object') parts = visit(item as KyselyNode, parts, depth);
    } else {
      parts = visit(value as KyselyNode, parts, depth);
    }
  }
  return parts;
}

/** What builders turn into (transformQuery): only such a node can be another query object. */
function isQueryNode(kind: string): boolean {
  return kind === 'RawNode' || kind.endsWith('QueryNode');
}

function visit(node: KyselyNode, parts: Trail[] | undefined, depth: number): Trail[] | undefined {
  const kind = node.kind;
  if (typeof kind !== 'string' || VALUE_NODES.has(kind)) return parts;
  const part = isQueryNode(kind) ? nodeTrails.get(node) : undefined;
  if (part === undefined) return partsIn(node, parts, depth + 1);
  if (!parts?.includes(part)) (parts ??= []).push(part);
  return parts;
}

/**
 * kysely 0.28 and 0.29 with PostgresDialect (and kysely-replication over it), CommonJS and ESM builds: a
 * trail for every query started from a Kysely instance, a transaction or `sql`, shared by the builders
 * chained from it (they keep its query id); bound to the pool given to the dialect; parts found in the node
 * tree as the query compiles; the trail handed to the pg span by the driver's connection as it sends it — so
 * where kysely-replication sent it is reported by the connection, truthfully.
 */
export class KyselyInstrumentation extends QuerytrailInstrumentation<KyselyInstrumentationConfig> {
  /** The driver's connection classes (one per build loaded) whose `executeQuery` this instance patched. */
  private readonly connectionPrototypes = new Set<Proto>();

  constructor(config: KyselyInstrumentationConfig = {}) {
    super(KYSELY, config);
  }

  protected override init() {
    const files = ([dir, versions]: [string, string[]]) => [
      this.patchFile(`kysely/${dir}util/query-id.js`, versions, (e: ClassExports) =>
        this.replaceExport(e, 'createQueryId', takesCreatingTrail),
      ),
      this.patchFile(`kysely/${dir}query-creator.js`, versions, (e: ClassExports) => {
        for (const name of ROOT_BUILDERS)
          this.wrapMethod(e.QueryCreator, name, (original) => this.creates(original, {}));
      }),
      this.patchFile(`kysely/${dir}raw-builder/sql.js`, versions, (e: ClassExports) =>
        this.replaceExport(e, 'sql', (original: Method) =>
          Object.assign(this.creates(original, { kind: 'fragment', label: 'raw query' }), original),
        ),
      ),
      this.patchFile(`kysely/${dir}dialect/postgres/postgres-dialect.js`, versions, (e: ClassExports) =>
        this.replaceExport(e, 'PostgresDialect', keepsPool),
      ),
      this.patchFile(`kysely/${dir}dialect/postgres/postgres-driver.js`, versions, (e: ClassExports) =>
        this.wrapMethod(e.PostgresDriver, 'acquireConnection', (original) => this.findsConnections(original)),
      ),
      this.patchFile(`kysely/${dir}query-executor/query-executor-base.js`, versions, (e: ClassExports) => {
        this.wrapMethod(e.QueryExecutorBase, 'transformQuery', transforms);
        this.wrapMethod(e.QueryExecutorBase, 'stream', streams);
      }),
    ];
    return this.checkingVersions([
      new InstrumentationNodeModuleDefinition('kysely', VERSIONS, undefined, undefined, BUILDS.flatMap(files)),
    ]);
  }

  /**
   * The driver's PostgresConnection sends each compiled query to pg, synchronously in its `executeQuery`: it
   * states the query's trail there (sendsNow), where the executor would have to enter a context for the
   * rest of the run (the connection is acquired after an await). The class is not exported: its prototype is
   * patched from the first connection a driver hands out (until then an acquire takes one more reaction).
   */
  private findsConnections(original: Method): Method {
    const instrumentation = this;
    let patched = false;
    return function acquireConnection(this: unknown, ...args: unknown[]) {
      const acquiring = original.apply(this, args);
      if (patched) return acquiring;
      return Promise.resolve(acquiring).then((connection: unknown) => {
        guarded('kysely connection', () => instrumentation.patchConnection(connection));
        patched = true;
        return connection;
      });
    };
  }

  /** Patches the connection's class, once. */
  private patchConnection(connection: unknown): void {
    const prototype = connection === null || typeof connection !== 'object' ? null : Object.getPrototypeOf(connection);
    const own = prototype === null ? undefined : Object.getOwnPropertyDescriptor(prototype, 'executeQuery');
    if (typeof own?.value !== 'function') return; // a class without its own executeQuery: left alone
    if (!isWrapped(own.value)) this._wrap(prototype, 'executeQuery', sends);
    this.connectionPrototypes.add(prototype);
  }

  /** The connection class is reached through no export: unpatchAll does not see it. */
  override disable(): void {
    super.disable();
    for (const prototype of this.connectionPrototypes) {
      if (isWrapped(prototype.executeQuery)) this._unwrap(prototype, 'executeQuery');
    }
    this.connectionPrototypes.clear();
  }

  /** A QueryCreator method or the `sql` tag: the trail the next `createQueryId()` takes. */
  private creates(original: Method, facts: TrailFacts): Method {
    const instrumentation = this;
    return function create(this: unknown, ...args: unknown[]) {
      const previous = creating;
      creating = guarded('kysely construction', () => instrumentation.startTrail(create, facts));
      try {
        return original.apply(this, args);
      } finally {
        creating = previous;
      }
    };
  }
}

function takesCreatingTrail(original: () => object) {
  return function createQueryId(): object {
    const queryId = original();
    if (creating !== undefined) {
      (queryId as { [TRAIL]?: Trail })[TRAIL] = creating;
      creating = undefined;
    }
    return queryId;
  };
}

/** PostgresDialect keeps its config private: a subclass keeps the pool, and maps each adapter to it. */
function keepsPool(Original: new (config: KyselyPostgresDialectConfig) => { createAdapter(): object }) {
  const pools = new WeakMap<object, unknown>();
  return class PostgresDialect extends Original {
    constructor(config: KyselyPostgresDialectConfig) {
      super(config);
      pools.set(this, config?.pool);
    }

    override createAdapter(): object {
      const adapter = super.createAdapter();
      // A pool given as a function is created at the first query: such instances stay unbound.
      guarded('kysely binding', () =>
        adapterBindings.set(adapter, pgTargetOf(pools.get(this), getRuntime().databases)),
      );
      return adapter;
    }
  };
}

/**
 * Every builder turns into a node through its own executor, whether it compiles or is embedded in
 * another query: the executor says what it is bound to, and the node it returns marks it as a part.
 */
function transforms(original: Method): Method {
  return function transformQuery(this: KyselyExecutor, node: KyselyNode, queryId: unknown, ...rest: unknown[]) {
    const trail = trailOf(queryId);
    if (trail === undefined) return original.call(this, node, queryId, ...rest);
    const parts = guarded('kysely parts', () => {
      // raw `sql` is bound to nothing: it runs on whichever instance executes it
      if (trail.binding === undefined && node.kind !== 'RawNode') trail.binding = bindingOf(this);
      return partsIn(node, undefined, 0);
    });
    const transformed = original.call(this, node, queryId, ...rest);
    // this compilation's parts: a chain shares the root's trail, and may be compiled with other parts elsewhere
    if (transformed !== null && typeof transformed === 'object')
      nodeTrails.set(transformed, parts === undefined ? trail : { ...trail, parts });
    return transformed;
  };
}

function executionTrailOf(compiledQuery: KyselyCompiledQuery | undefined): Trail | undefined {
  return compiledQuery === undefined
    ? undefined
    : (nodeTrails.get(compiledQuery.query) ?? trailOf(compiledQuery.queryId));
}

/** PostgresConnection's `executeQuery`: its pg call is made before its first await. */
function sends(original: Method): Method {
  return function executeQuery(this: unknown, compiledQuery: KyselyCompiledQuery, ...rest: unknown[]) {
    const trail = executionTrailOf(compiledQuery);
    if (trail === undefined) return original.call(this, compiledQuery, ...rest);
    return sendsNow(trail, () => original.call(this, compiledQuery, ...rest));
  };
}

/** `stream` is an async generator: its body runs in each `next()`, so each one gets the trail. */
function streams(original: Method): Method {
  return function stream(this: unknown, compiledQuery: KyselyCompiledQuery, ...rest: unknown[]) {
    const iterator = original.call(this, compiledQuery, ...rest) as AsyncGenerator<unknown>;
    const trail = executionTrailOf(compiledQuery);
    if (trail === undefined) return iterator;
    const inTrail: AsyncGenerator<unknown> = {
      next: (...args) => runAs(trail, () => iterator.next(...args)),
      return: (value) => runAs(trail, () => iterator.return(value)),
      throw: (error) => iterator.throw(error),
      [Symbol.asyncIterator]: () => inTrail,
    };
    return inTrail;
  };
}
