import { InstrumentationNodeModuleDefinition } from '@opentelemetry/instrumentation';
import type { DatabaseRef } from '../../src/database';
import { internalErrorOccurred } from '../../src/guard';
import type { ResultReuseReporter } from '../../src/result-reuse';
import { getRuntime } from '../../src/runtime';
import { currentScope, phaseOf } from '../../src/scope';
import { addPart, createTrail, executingTrail, Trail, withExecutionOf, withoutExecution } from '../../src/trail';
import { VERSION } from '../../src/version';
import { ClassExports, Method, PrototypeInstrumentation } from '../prototype-instrumentation';
import type {
  SequelizeEndpoint,
  SequelizeInclude,
  SequelizeInstance,
  SequelizeInstrumentationConfig,
  SequelizeModel,
  SequelizeQueryOptions,
} from './types';

const VERSIONS = ['>=6.0.0 <7'];
const BINDINGS = Symbol('querytrail.sequelize.bindings');

/** The model API the app calls; each runs one or more `sequelize.query` calls, after its own awaits. */
const MODEL_STATICS = [
  'findAll',
  'findOne',
  'findByPk',
  'findAndCountAll',
  'count',
  'aggregate',
  'max',
  'min',
  'sum',
  'create',
  'bulkCreate',
  'findOrCreate',
  'findCreateFind',
  'upsert',
  'update',
  'destroy',
  'restore',
  'increment',
  'decrement',
  'truncate',
];
const MODEL_METHODS = ['save', 'reload', 'update', 'destroy', 'restore', 'increment', 'decrement'];

interface Bindings {
  write: DatabaseRef | undefined;
  /** With one read replica, its ref; with several, the read pool picks one per query: left to the connection. */
  read: DatabaseRef | undefined;
  replicated: boolean;
}

/** Where the instance's write and read pools point, as configured (sequelize merges each pool's settings over the base). */
function bindingsOf(sequelize: SequelizeInstance): Bindings {
  let bindings = sequelize[BINDINGS] as Bindings | undefined;
  if (bindings !== undefined) return bindings;
  const { config } = sequelize;
  const databases = getRuntime().databases;
  const refOf = (endpoint: SequelizeEndpoint = {}) =>
    databases.ref(
      'postgresql',
      endpoint.host ?? config.host,
      endpoint.port ?? config.port ?? 5432,
      endpoint.database ?? config.database,
    );
  const replication = config.replication || undefined;
  const reads = replication?.read ?? [];
  bindings = {
    write: refOf(replication?.write),
    read: reads.length === 1 ? refOf(reads[0]) : undefined,
    replicated: reads.length > 0,
  };
  sequelize[BINDINGS] = bindings;
  return bindings;
}

function isPostgres(sequelize: SequelizeInstance | undefined): sequelize is SequelizeInstance {
  return sequelize !== undefined && typeof sequelize.getDialect === 'function' && sequelize.getDialect() === 'postgres';
}

/**
 * A new trail for an API call, unless one is already running: sequelize's own nested calls (findOne →
 * findAll) share the outer call's. A transaction's trail is not a call's: calls inside it get their own.
 */
function callTrail(sequelize: SequelizeInstance, kind: string, below: Function): Trail | undefined {
  const running = executingTrail();
  if (running?.library === 'sequelize' && running.kind !== 'transaction') return undefined;
  return createTrail({
    library: 'sequelize',
    site: getRuntime().sites.constructionSite(below, phaseOf(currentScope())),
    binding: bindingsOf(sequelize).write,
    kind,
  });
}

/** Models of another Sequelize instance in `include`: sequelize compiles them into this instance's SQL. */
function recordForeignIncludes(trail: Trail, sequelize: SequelizeInstance, includes: unknown, depth: number): void {
  if (!Array.isArray(includes) || depth > 8) return;
  for (const include of includes as SequelizeInclude[]) {
    const model = ((include as { model?: SequelizeModel }).model ?? include) as SequelizeModel;
    const other = model?.sequelize;
    if (isPostgres(other) && other !== sequelize && bindingsOf(other).write !== bindingsOf(sequelize).write) {
      addPart(
        trail,
        createTrail({
          library: 'sequelize',
          site: trail.site,
          binding: bindingsOf(other).write,
          kind: `sub-query (include of ${model.name ?? 'a model'})`,
        }),
      );
    }
    recordForeignIncludes(trail, sequelize, (include as { include?: unknown }).include, depth + 1);
  }
}

/**
 * sequelize 6 (postgres dialect), with or without `replication: {read, write}`: a trail for every model
 * call and `sequelize.query` — sequelize is not lazy, so where it is built is where it runs — with the
 * pool sequelize picks for each query (`querytrail.bound.pool`); the connection that really ran it is
 * the pg layer's. Includes of models from another instance are recorded as parts.
 */
export class SequelizeInstrumentation extends PrototypeInstrumentation<SequelizeInstrumentationConfig> {
  constructor(config: SequelizeInstrumentationConfig = {}) {
    super('querytrail-sequelize', VERSION, config);
  }

  protected override init() {
    return [
      new InstrumentationNodeModuleDefinition('sequelize', VERSIONS, undefined, undefined, [
        this.patchFile('sequelize/lib/model.js', VERSIONS, (Model: ClassExports) => {
          for (const name of MODEL_STATICS)
            this.wrapStatic(Model, name, (original) =>
              callsModel(original, (model) => (model as SequelizeModel).sequelize, this.reuse),
            );
          for (const name of MODEL_METHODS)
            this.wrapMethod(Model, name, (original) =>
              callsModel(
                original,
                (instance) => (instance as { constructor: SequelizeModel }).constructor.sequelize,
                this.reuse,
              ),
            );
        }),
        this.patchFile('sequelize/lib/sequelize.js', VERSIONS, (exports: ClassExports) => {
          this.wrapMethod(exports.Sequelize, 'query', (original) => queries(original, this.reuse));
          this.wrapMethod(exports.Sequelize, 'transaction', startsTransaction);
        }),
        // a new connection's setup (SET …, the type probe) belongs to no model call: plain pg spans
        this.patchFile(
          'sequelize/lib/dialects/postgres/connection-manager.js',
          VERSIONS,
          (ConnectionManager: ClassExports) =>
            this.wrapMethod(
              ConnectionManager,
              'connect',
              (original) =>
                function connect(this: unknown, ...args: unknown[]) {
                  return withoutExecution(() => original.apply(this, args));
                },
            ),
        ),
      ]),
    ];
  }
}

/** `instanceOf(this)`: the Sequelize instance of the model class (statics) or of the model instance. */
function callsModel(
  original: Method,
  instanceOf: (self: unknown) => SequelizeInstance | undefined,
  reuse: ResultReuseReporter,
): Method {
  return function modelCall(this: unknown, ...args: unknown[]) {
    let trail: Trail | undefined;
    try {
      const sequelize = instanceOf(this);
      if (isPostgres(sequelize)) {
        trail = callTrail(sequelize, 'query', modelCall);
        const options = args.find((arg) => arg !== null && typeof arg === 'object' && 'include' in arg) as
          { include?: unknown } | undefined;
        if (trail !== undefined && options !== undefined) recordForeignIncludes(trail, sequelize, options.include, 0);
      }
    } catch (err) {
      internalErrorOccurred('sequelize call', err);
    }
    if (trail === undefined) return original.apply(this, args);
    // sequelize runs the call now: where it was built is where it runs
    return reuse.runsNow(trail, () => original.apply(this, args), trail.site);
  };
}

/** Mirrors sequelize's choice in `query()` and `ConnectionManager#getConnection`. */
function poolOf(options: SequelizeQueryOptions | undefined): 'read' | 'write' {
  if (options?.transaction) return 'write';
  const type =
    options?.type ?? (options?.model || options?.instance || options?.nest || options?.plain ? 'SELECT' : 'RAW');
  return type === 'SELECT' && !options?.useMaster ? 'read' : 'write';
}

function queries(original: Method, reuse: ResultReuseReporter): Method {
  return function query(this: SequelizeInstance, sql: unknown, options?: SequelizeQueryOptions, ...rest: unknown[]) {
    let trail: Trail | undefined;
    let ownCall = false;
    try {
      if (isPostgres(this)) {
        const call = executingTrail();
        ownCall = call?.library !== 'sequelize';
        const outer = ownCall
          ? createTrail({
              library: 'sequelize',
              site: getRuntime().sites.constructionSite(query, phaseOf(currentScope())),
              binding: bindingsOf(this).write,
              kind: 'query',
            })
          : (call as Trail);
        const bindings = bindingsOf(this);
        if (bindings.replicated) {
          // this query's pool, on a copy: one model call may run reads and writes, concurrently
          const pool = poolOf(options);
          trail = { ...outer, pool, binding: pool === 'read' ? bindings.read : bindings.write };
        } else {
          trail = outer;
        }
      }
    } catch (err) {
      internalErrorOccurred('sequelize query', err);
    }
    if (trail === undefined) return original.call(this, sql, options, ...rest);
    if (ownCall) return reuse.runsNow(trail, () => original.call(this, sql, options, ...rest), trail.site);
    return withExecutionOf(trail, () => original.call(this, sql, options, ...rest), trail.site);
  };
}

/**
 * The transaction's BEGIN and COMMIT carry the line that started it. Model calls inside get their own
 * trails; a raw `sequelize.query` inside carries the transaction's line (it cannot be told apart from
 * sequelize's own BEGIN/COMMIT, which also come through `query` with the transaction).
 */
function startsTransaction(original: Method): Method {
  return function transaction(this: SequelizeInstance, ...args: unknown[]) {
    let trail: Trail | undefined;
    try {
      if (isPostgres(this))
        trail = createTrail({
          library: 'sequelize',
          site: getRuntime().sites.constructionSite(transaction, phaseOf(currentScope())),
          binding: bindingsOf(this).write,
          kind: 'transaction',
        });
    } catch (err) {
      internalErrorOccurred('sequelize transaction', err);
    }
    if (trail === undefined) return original.apply(this, args);
    return withExecutionOf(trail, () => original.apply(this, args), trail.site);
  };
}
