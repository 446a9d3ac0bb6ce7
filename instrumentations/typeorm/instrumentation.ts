import { InstrumentationNodeModuleDefinition } from '@opentelemetry/instrumentation';
import type { SiteRef } from '../../src/callsite';
import type { DatabaseRef } from '../../src/database';
import { internalErrorOccurred } from '../../src/guard';
import type { ResultReuseReporter } from '../../src/result-reuse';
import { getRuntime } from '../../src/runtime';
import { currentScope, phaseOf } from '../../src/scope';
import { createTrail, executingTrail, Trail, withExecutionOf } from '../../src/trail';
import { VERSION } from '../../src/version';
import { pgTargetOf } from '../pg/target';
import { ClassExports, Method, PrototypeInstrumentation } from '../prototype-instrumentation';
import type {
  TypeormCredentials,
  TypeormDataSource,
  TypeormEntityManager,
  TypeormExpressionMap,
  TypeormInstrumentationConfig,
  TypeormQueryBuilder,
  TypeormQueryRunner,
} from './types';

const VERSIONS = ['>=1.0.0 <2'];
const TRAIL = Symbol('querytrail.typeorm.trail');
const PARTS = Symbol('querytrail.typeorm.parts');
const BINDINGS = Symbol('querytrail.typeorm.bindings');
/** Parts kept per builder: a base builder extended in every request must not grow without end. */
const MAX_PARTS = 32;

/** The EntityManager API (Repository methods delegate to it synchronously, with the app's frame on the stack). */
const MANAGER_CALLS = [
  'save',
  'remove',
  'softRemove',
  'recover',
  'insert',
  'upsert',
  'update',
  'updateAll',
  'delete',
  'deleteAll',
  'softDelete',
  'restore',
  'exists',
  'existsBy',
  'count',
  'countBy',
  'sum',
  'average',
  'minimum',
  'maximum',
  'find',
  'findBy',
  'findAndCount',
  'findAndCountBy',
  'findOne',
  'findOneBy',
  'findOneOrFail',
  'findOneByOrFail',
  'clear',
  'increment',
  'decrement',
  'preload',
];
/** Where each builder type compiles and sends its SQL. */
const BUILDER_RUNS: Record<string, string[]> = {
  SelectQueryBuilder: [
    'getRawMany',
    'getRawAndEntities',
    'getMany',
    'getCount',
    'getExists',
    'getManyAndCount',
    'stream',
  ],
  InsertQueryBuilder: ['execute'],
  UpdateQueryBuilder: ['execute'],
  DeleteQueryBuilder: ['execute'],
  SoftDeleteQueryBuilder: ['execute'],
};
/** Builder methods that compile another builder into this one's SQL on the spot (given a function or a builder). */
const EMBEDDING_METHODS: Record<string, string[]> = {
  QueryBuilder: ['createFromAlias', 'getExistsCondition'],
  SelectQueryBuilder: ['select', 'addSelect', 'join'],
};

interface Bindings {
  master: DatabaseRef | undefined;
  /** With one slave, its ref; with several, typeorm picks one at random per connection: left to the connection. */
  slave: DatabaseRef | undefined;
  replicated: boolean;
}

/** Where a postgres DataSource's pools point, as configured: typeorm gives each pool its member's settings only. */
function bindingsOf(dataSource: TypeormDataSource | undefined): Bindings | undefined {
  if (dataSource === undefined || dataSource.options?.type !== 'postgres') return undefined;
  let bindings = dataSource[BINDINGS] as Bindings | undefined;
  if (bindings !== undefined) return bindings;
  const { options } = dataSource;
  const databases = getRuntime().databases;
  const refOf = (c: TypeormCredentials = {}) =>
    pgTargetOf({ options: { host: c.host, port: c.port, database: c.database, connectionString: c.url } }, databases);
  const slaves = options.replication?.slaves ?? [];
  bindings = {
    master: refOf(options.replication?.master ?? options),
    slave: slaves.length === 1 ? refOf(slaves[0]) : undefined,
    replicated: slaves.length > 0,
  };
  dataSource[BINDINGS] = bindings;
  return bindings;
}

/** The call already running — a manager call, a builder's execution — owns the builders typeorm makes for it. */
function runningCall(): Trail | undefined {
  const running = executingTrail();
  return running?.library === 'typeorm' && running.kind !== 'transaction' ? running : undefined;
}

function newTrail(dataSource: TypeormDataSource | undefined, kind: string, below: Function): Trail | undefined {
  const bindings = bindingsOf(dataSource);
  if (bindings === undefined) return undefined;
  return createTrail({
    library: 'typeorm',
    site: getRuntime().sites.constructionSite(below, phaseOf(currentScope())),
    binding: bindings.master,
    kind,
  });
}

/**
 * Builders whose methods are compiling other builders into their SQL, innermost last. Compilation is
 * synchronous, so a plain stack is exact.
 */
const embedding: TypeormExpressionMap[] = [];

/**
 * A builder of another DataSource compiled into this one's SQL — kept on the builder, since typeorm
 * keeps only the SQL text. A builder of the same DataSource is the same database: not a part.
 */
function recordPart(outer: TypeormExpressionMap, inner: TypeormExpressionMap): void {
  const found =
    inner.dataSource === outer.dataSource
      ? ((inner[PARTS] as Trail[] | undefined) ?? [])
      : [inner[TRAIL] as Trail | undefined, ...((inner[PARTS] as Trail[] | undefined) ?? [])];
  const own = outer[TRAIL] as Trail | undefined;
  for (const part of found) {
    if (part === undefined || part.binding === own?.binding) continue;
    const parts = (outer[PARTS] ??= []) as Trail[];
    if (parts.length < MAX_PARTS && !parts.includes(part)) parts.push(part);
  }
}

/**
 * typeorm 1.x (postgres driver), with or without `replication: {master, slaves}`: a trail for every query
 * builder (kept on its expression map, carried by clones), every manager/repository call and raw query;
 * builders of another DataSource compiled into a query recorded as its parts; each query's pool
 * (`master`/`slave`) from the query runner that sends it. Where it really ran is the pg layer's word.
 */
export class TypeormInstrumentation extends PrototypeInstrumentation<TypeormInstrumentationConfig> {
  constructor(config: TypeormInstrumentationConfig = {}) {
    super('querytrail-typeorm', VERSION, config);
  }

  protected override init() {
    const builderFiles = Object.keys({ ...BUILDER_RUNS, ...EMBEDDING_METHODS }).map((name) =>
      this.patchFile(`typeorm/query-builder/${name}.js`, VERSIONS, (exports: ClassExports) => {
        const Builder = exports[name];
        for (const method of BUILDER_RUNS[name] ?? [])
          this.wrapMethod(Builder, method, (original) => runs(original, this.reuse));
        for (const method of EMBEDDING_METHODS[name] ?? []) this.wrapMethod(Builder, method, embeds);
        // every builder type compiles its own SQL: a getQuery called while another builder embeds makes a part
        this.wrapMethod(Builder, 'getQuery', compiles);
      }),
    );
    return [
      new InstrumentationNodeModuleDefinition('typeorm', VERSIONS, undefined, undefined, [
        this.patchFile('typeorm/query-builder/QueryExpressionMap.js', VERSIONS, (exports: ClassExports) => {
          // on the original class, before the export becomes a subclass of it
          this.wrapMethod(exports.QueryExpressionMap, 'clone', keepsTrail);
          this.replaceExport(exports, 'QueryExpressionMap', stampsTrail);
        }),
        ...builderFiles,
        this.patchFile('typeorm/entity-manager/EntityManager.js', VERSIONS, (exports: ClassExports) => {
          for (const name of MANAGER_CALLS)
            this.wrapMethod(exports.EntityManager, name, (original) => callsManager(original, 'query', this.reuse));
          this.wrapMethod(exports.EntityManager, 'transaction', (original) =>
            callsManager(original, 'transaction', this.reuse),
          );
        }),
        this.patchFile('typeorm/driver/postgres/PostgresQueryRunner.js', VERSIONS, (exports: ClassExports) => {
          this.wrapMethod(exports.PostgresQueryRunner, 'query', sends);
          this.wrapMethod(exports.PostgresQueryRunner, 'stream', sends);
        }),
      ]),
    ];
  }
}

/** Every builder makes its expression map first: a new builder's trail starts here. */
function stampsTrail(Original: new (dataSource: TypeormDataSource) => TypeormExpressionMap) {
  return class QueryExpressionMap extends Original {
    constructor(dataSource: TypeormDataSource) {
      super(dataSource);
      try {
        const trail = runningCall() ?? newTrail(dataSource, 'query', QueryExpressionMap);
        if (trail !== undefined) this[TRAIL] = trail;
      } catch (err) {
        internalErrorOccurred('typeorm construction', err);
      }
    }
  };
}

/** A clone (`.clone()`, or a builder turned into another type) is the same query object, derived: same trail and parts. */
function keepsTrail(original: Method): Method {
  return function clone(this: TypeormExpressionMap, ...args: unknown[]) {
    const map = original.apply(this, args) as TypeormExpressionMap;
    try {
      if (this[TRAIL] !== undefined) map[TRAIL] = this[TRAIL];
      if (this[PARTS] !== undefined) map[PARTS] = (this[PARTS] as Trail[]).slice();
    } catch (err) {
      internalErrorOccurred('typeorm clone', err);
    }
    return map;
  };
}

function embeddingWhile(map: TypeormExpressionMap, original: Method, self: unknown, args: unknown[]): unknown {
  embedding.push(map);
  try {
    return original.apply(self, args);
  } finally {
    embedding.pop();
  }
}

function embeds(original: Method): Method {
  return function embedding_(this: TypeormQueryBuilder, ...args: unknown[]) {
    return embeddingWhile(this.expressionMap, original, this, args);
  };
}

function compiles(original: Method): Method {
  return function getQuery(this: TypeormQueryBuilder, ...args: unknown[]) {
    const map = this.expressionMap;
    const outer = embedding[embedding.length - 1];
    try {
      if (outer !== undefined && outer !== map && map !== undefined) recordPart(outer, map);
    } catch (err) {
      internalErrorOccurred('typeorm part', err);
    }
    // CTEs and INSERT … SELECT compile their builders while this one compiles
    return embeddingWhile(map, original, this, args);
  };
}

/**
 * The app awaits a builder: its trail, with the parts compiled into it, goes to the query runner. A
 * builder built elsewhere (at init, in another request) needs the line that runs it now; one built in
 * this scope is run close to where it was built, so its construction site stands in for a capture.
 */
function runs(original: Method, reuse: ResultReuseReporter): Method {
  return function run(this: TypeormQueryBuilder, ...args: unknown[]) {
    let trail: Trail | undefined;
    let site: SiteRef | undefined;
    let outermost = false;
    try {
      const map = this.expressionMap;
      const built = map?.[TRAIL] as Trail | undefined;
      if (built !== undefined) {
        // CTEs compile when the query does, after this: the execution shares the builder's list of parts
        trail = { ...built, parts: (map[PARTS] ??= []) as Trail[] };
        outermost = runningCall() === undefined;
        if (outermost) {
          const scope = currentScope();
          site =
            built.phase !== 'init' && built.scopeId === scope?.id
              ? built.site
              : getRuntime().sites.constructionSite(run, phaseOf(scope));
        }
      }
    } catch (err) {
      internalErrorOccurred('typeorm execution', err);
    }
    if (trail === undefined) return original.apply(this, args);
    if (outermost) return reuse.runsNow(trail, () => original.apply(this, args), site);
    return withExecutionOf(trail, () => original.apply(this, args), site);
  };
}

/** A manager or repository call: one trail for every builder and query it makes, after its own awaits. */
function callsManager(original: Method, kind: string, reuse: ResultReuseReporter): Method {
  return function managerCall(this: TypeormEntityManager, ...args: unknown[]) {
    let trail: Trail | undefined;
    try {
      if (kind === 'transaction' || runningCall() === undefined) trail = newTrail(this.dataSource, kind, managerCall);
    } catch (err) {
      internalErrorOccurred('typeorm call', err);
    }
    if (trail === undefined) return original.apply(this, args);
    return reuse.runsNow(trail, () => original.apply(this, args), trail.site);
  };
}

/**
 * The query runner sends SQL on a connection from its mode's pool: the query's pool and binding, on a
 * copy (one call may read and write through different runners). A raw `query()` starts its own trail.
 */
function sends(original: Method): Method {
  return function query(this: TypeormQueryRunner, ...args: unknown[]) {
    let trail: Trail | undefined;
    let site: SiteRef | undefined;
    try {
      const bindings = bindingsOf(this.dataSource);
      if (bindings !== undefined) {
        const running = executingTrail();
        let outer = running?.library === 'typeorm' ? running : undefined;
        if (outer === undefined) {
          outer = newTrail(this.dataSource, 'query', query);
          site = outer?.site;
        }
        if (outer !== undefined && bindings.replicated) {
          trail = { ...outer, pool: this.mode, binding: this.mode === 'slave' ? bindings.slave : bindings.master };
        } else {
          trail = outer;
        }
      }
    } catch (err) {
      internalErrorOccurred('typeorm query', err);
    }
    if (trail === undefined) return original.apply(this, args);
    return withExecutionOf(trail, () => original.apply(this, args), site);
  };
}
