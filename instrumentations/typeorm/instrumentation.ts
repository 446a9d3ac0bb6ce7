import { InstrumentationNodeModuleDefinition } from '@opentelemetry/instrumentation';
import { guarded } from '../../src/guard';
import { runEagerly } from '../../src/memoised-results';
import { getRuntime } from '../../src/runtime';
import { continueAs, currentExecution, runAs, runningCall, throughPool } from '../../src/seam';
import type { LibraryProfile, Trail, TrailKind } from '../../src/trail';
import { pgTargetOfSettings } from '../pg/target';
import { ClassExports, Method, QuerytrailInstrumentation } from '../querytrail-instrumentation';
import { ReplicatedBindings, replicatedBindings } from '../replication';
import type {
  TypeormCredentials,
  TypeormDataSource,
  TypeormDataSourceHolder,
  TypeormEntityManager,
  TypeormExpressionMap,
  TypeormInstrumentationConfig,
  TypeormQueryBuilder,
  TypeormQueryRunner,
} from './types';

const TYPEORM: LibraryProfile = {
  name: 'typeorm',
  primaryReadAdvice: "read through `dataSource.createQueryRunner('master')`, or in the transaction",
  batchAdvice:
    'load them with their parent through `relations` (or a join), or in one `find({ where: { id: In(ids) } })`',
};
const VERSIONS = ['>=0.3.17 <2'];
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

function dataSourceOf(holder: TypeormDataSourceHolder): TypeormDataSource | undefined {
  return holder.dataSource ?? holder.connection;
}

/** Where a postgres DataSource's pools point, as configured: typeorm gives each pool its member's settings only. */
function bindingsOf(dataSource: TypeormDataSource | undefined): ReplicatedBindings | undefined {
  if (dataSource === undefined || dataSource.options?.type !== 'postgres') return undefined;
  let bindings = dataSource[BINDINGS] as ReplicatedBindings | undefined;
  if (bindings !== undefined) return bindings;
  const { options } = dataSource;
  const databases = getRuntime().databases;
  bindings = replicatedBindings<TypeormCredentials>(
    options.replication?.master ?? options,
    options.replication?.slaves,
    (c = {}) =>
      pgTargetOfSettings({ host: c.host, port: c.port, database: c.database, connectionString: c.url }, databases),
  );
  dataSource[BINDINGS] = bindings;
  return bindings;
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
    dataSourceOf(inner) === dataSourceOf(outer)
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
export class TypeormInstrumentation extends QuerytrailInstrumentation<TypeormInstrumentationConfig> {
  constructor(config: TypeormInstrumentationConfig = {}) {
    super(TYPEORM, config);
  }

  protected override init() {
    const builderFiles = Object.keys({ ...BUILDER_RUNS, ...EMBEDDING_METHODS }).map((name) =>
      this.patchFile(`typeorm/query-builder/${name}.js`, VERSIONS, (exports: ClassExports) => {
        const Builder = exports[name];
        for (const method of BUILDER_RUNS[name] ?? [])
          this.wrapMethod(Builder, method, (original) => this.runs(original));
        for (const method of EMBEDDING_METHODS[name] ?? []) this.wrapMethod(Builder, method, embeds);
        // every builder type compiles its own SQL: a getQuery called while another builder embeds makes a part
        this.wrapMethod(Builder, 'getQuery', compiles);
      }),
    );
    return this.checkingVersions([
      new InstrumentationNodeModuleDefinition('typeorm', VERSIONS, undefined, undefined, [
        this.patchFile('typeorm/query-builder/QueryExpressionMap.js', VERSIONS, (exports: ClassExports) => {
          // on the original class, before the export becomes a subclass of it
          this.wrapMethod(exports.QueryExpressionMap, 'clone', keepsTrail);
          this.replaceExport(exports, 'QueryExpressionMap', (Original) => this.stampsTrail(Original));
        }),
        ...builderFiles,
        this.patchFile('typeorm/entity-manager/EntityManager.js', VERSIONS, (exports: ClassExports) => {
          for (const name of MANAGER_CALLS) {
            this.wrapMethod(exports.EntityManager, name, (original) => this.callsManager(original, 'query'));
          }
          this.wrapMethod(exports.EntityManager, 'transaction', (original) =>
            this.callsManager(original, 'transaction'),
          );
        }),
        this.patchFile('typeorm/driver/postgres/PostgresQueryRunner.js', VERSIONS, (exports: ClassExports) => {
          this.wrapMethod(exports.PostgresQueryRunner, 'query', (original) => this.sends(original));
          this.wrapMethod(exports.PostgresQueryRunner, 'stream', (original) => this.sends(original));
        }),
      ]),
    ]);
  }

  /**
   * Every trail is eager (its capture is where it runs): calls run what they build, and a lazy relation's
   * loader builds its builder in the app's property access and runs it from a promise, where no application
   * frame is left. Under `lean` its line is learned per `receiver` (the repository or manager called).
   */
  private newTrail(
    dataSource: TypeormDataSource | undefined,
    kind: TrailKind,
    below: Function,
    receiver: object | undefined = dataSource,
  ): Trail | undefined {
    const bindings = bindingsOf(dataSource);
    return bindings === undefined
      ? undefined
      : this.startTrail(below, { binding: bindings.primary, kind, eager: true, receiver });
  }

  /** Every builder makes its expression map first: a new builder's trail starts here. */
  private stampsTrail(Original: new (dataSource: TypeormDataSource) => TypeormExpressionMap) {
    const instrumentation = this;
    return class QueryExpressionMap extends Original {
      constructor(dataSource: TypeormDataSource) {
        super(dataSource);
        const trail = guarded(
          'typeorm construction',
          () => runningCall(TYPEORM) ?? instrumentation.newTrail(dataSource, 'query', QueryExpressionMap),
        );
        if (trail !== undefined) this[TRAIL] = trail;
      }
    };
  }

  /** A manager or repository call: one trail for every builder and query it makes, after its own awaits. */
  private callsManager(original: Method, kind: TrailKind): Method {
    const instrumentation = this;
    return function managerCall(this: TypeormEntityManager, ...args: unknown[]) {
      const trail = guarded('typeorm call', () =>
        kind === 'transaction' || runningCall(TYPEORM) === undefined
          ? instrumentation.newTrail(dataSourceOf(this), kind, managerCall, this)
          : undefined,
      );
      if (trail === undefined) return original.apply(this, args);
      return runEagerly(trail, () => original.apply(this, args));
    };
  }

  /**
   * The query runner sends SQL on a connection from its mode's pool: the query's pool and binding, on a
   * copy (one call may read and write through different runners). A raw `query()` starts its own trail.
   */
  private sends(original: Method): Method {
    const instrumentation = this;
    return function query(this: TypeormQueryRunner, ...args: unknown[]) {
      let ownCall = false;
      const trail = guarded('typeorm query', () => {
        const bindings = bindingsOf(dataSourceOf(this));
        if (bindings === undefined) return undefined;
        let call = currentExecution()?.trail;
        if (call?.library !== TYPEORM) {
          ownCall = true;
          call = instrumentation.newTrail(dataSourceOf(this), 'query', query);
        }
        if (call === undefined || !bindings.replicated) return call;
        return throughPool(call, this.mode, this.mode === 'slave' ? bindings.replica : bindings.primary);
      });
      if (trail === undefined) return original.apply(this, args);
      if (ownCall) return runAs(trail, () => original.apply(this, args), 'construction');
      return continueAs(trail, () => original.apply(this, args));
    };
  }

  /**
   * The app runs a builder (`getMany()`, `execute()`): its trail, with the parts compiled into it, goes to
   * the query runner. The app calls this synchronously, often without awaiting it on the same line (an
   * async function returning the promise): the line is taken here. Run at init, its promise is watched.
   */
  private runs(original: Method): Method {
    const instrumentation = this;
    return function run(this: TypeormQueryBuilder, ...args: unknown[]) {
      let call: Trail | undefined;
      const trail = guarded('typeorm execution', () => {
        const map = this.expressionMap;
        const built = map?.[TRAIL] as Trail | undefined;
        if (built === undefined) return undefined;
        call = runningCall(TYPEORM);
        if (call === built) {
          // a builder typeorm made for a manager call is that call, already running: its parts are the call's
          const parts = (call.parts ??= []);
          for (const part of (map[PARTS] as Trail[] | undefined) ?? []) if (!parts.includes(part)) parts.push(part);
          map[PARTS] = parts;
          return call;
        }
        // CTEs compile when the query does, after this: the execution shares the builder's list of parts
        return { ...built, parts: (map[PARTS] ??= []) as Trail[] };
      });
      if (trail === undefined || trail === call) return original.apply(this, args);
      // an app's builder run inside a manager call: its line is found where the driver is called
      const from = call === undefined ? instrumentation.entrySite(run) : 'await';
      return runEagerly(trail, () => original.apply(this, args), from);
    };
  }
}

/** A clone (`.clone()`, or a builder turned into another type) is the same query object: same trail and parts. */
function keepsTrail(original: Method): Method {
  return function clone(this: TypeormExpressionMap, ...args: unknown[]) {
    const map = original.apply(this, args) as TypeormExpressionMap;
    guarded('typeorm clone', () => {
      if (this[TRAIL] !== undefined) map[TRAIL] = this[TRAIL];
      if (this[PARTS] !== undefined) map[PARTS] = (this[PARTS] as Trail[]).slice();
    });
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
  return function embedsBuilder(this: TypeormQueryBuilder, ...args: unknown[]) {
    return embeddingWhile(this.expressionMap, original, this, args);
  };
}

function compiles(original: Method): Method {
  return function getQuery(this: TypeormQueryBuilder, ...args: unknown[]) {
    const map = this.expressionMap;
    const outer = embedding[embedding.length - 1];
    if (outer !== undefined && outer !== map && map !== undefined)
      guarded('typeorm part', () => recordPart(outer, map));
    // CTEs and INSERT … SELECT compile their builders while this one compiles
    return embeddingWhile(map, original, this, args);
  };
}
