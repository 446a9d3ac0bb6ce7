import { InstrumentationNodeModuleDefinition } from '@opentelemetry/instrumentation';
import type { Context } from '@opentelemetry/api';
import { activeContext } from '../../src/active-context';
import { guarded, internalErrorOccurred } from '../../src/guard';
import { runEagerly } from '../../src/memoised-results';
import { getRuntime } from '../../src/runtime';
import { continueAs, currentExecution, embed, runAs, runningCall, throughPool, withoutTrail } from '../../src/seam';
import type { LibraryProfile, Trail } from '../../src/trail';
import { ClassExports, Method, QuerytrailInstrumentation } from '../querytrail-instrumentation';
import { ReplicatedBindings, replicatedBindings } from '../replication';
import type {
  SequelizeEndpoint,
  SequelizeInclude,
  SequelizeInstance,
  SequelizeInstrumentationConfig,
  SequelizeModel,
  SequelizeQueryOptions,
} from './types';

const SEQUELIZE: LibraryProfile = {
  name: 'sequelize',
  primaryReadAdvice: 'pass `useMaster: true`, or read in the transaction',
  batchAdvice: 'load them with their parent through `include`, or in one `findAll({ where: { id: ids } })`',
};
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

/** Where the write and read pools point, as configured (sequelize merges each pool's settings over the base). */
function bindingsOf(sequelize: SequelizeInstance): ReplicatedBindings {
  let bindings = sequelize[BINDINGS] as ReplicatedBindings | undefined;
  if (bindings !== undefined) return bindings;
  const { config } = sequelize;
  const databases = getRuntime().databases;
  const replication = config.replication || undefined;
  bindings = replicatedBindings<SequelizeEndpoint>(replication?.write, replication?.read, (endpoint = {}) =>
    databases.ref(
      'postgresql',
      endpoint.host ?? config.host,
      endpoint.port ?? config.port ?? 5432,
      endpoint.database ?? config.database,
    ),
  );
  sequelize[BINDINGS] = bindings;
  return bindings;
}

function isPostgres(sequelize: SequelizeInstance | undefined): sequelize is SequelizeInstance {
  return sequelize !== undefined && typeof sequelize.getDialect === 'function' && sequelize.getDialect() === 'postgres';
}

/** Models of another Sequelize instance in `include`: sequelize compiles them into this instance's SQL. */
function foreignIncludes(sequelize: SequelizeInstance, includes: unknown, depth: number, found: SequelizeModel[]) {
  if (!Array.isArray(includes) || depth > 8) return found;
  for (const include of includes as SequelizeInclude[]) {
    const model = ((include as { model?: SequelizeModel }).model ?? include) as SequelizeModel;
    const other = model?.sequelize;
    if (isPostgres(other) && other !== sequelize && bindingsOf(other).primary !== bindingsOf(sequelize).primary) {
      found.push(model);
    }
    foreignIncludes(sequelize, (include as { include?: unknown }).include, depth + 1, found);
  }
  return found;
}

/** Mirrors sequelize's choice in `query()` and `ConnectionManager#getConnection`. */
function poolOf(options: SequelizeQueryOptions | undefined): 'read' | 'write' {
  if (options?.transaction) return 'write';
  const type =
    options?.type ?? (options?.model || options?.instance || options?.nest || options?.plain ? 'SELECT' : 'RAW');
  return type === 'SELECT' && !options?.useMaster ? 'read' : 'write';
}

/**
 * sequelize 6 (postgres dialect), with or without `replication: {read, write}`: a trail for every model
 * call and `sequelize.query` — sequelize is not lazy, so where it is built is where it runs — with the
 * pool sequelize picks for each query (`querytrail.bound.pool`); the connection that really ran it is
 * the pg layer's. Includes of models from another instance are recorded as parts.
 */
export class SequelizeInstrumentation extends QuerytrailInstrumentation<SequelizeInstrumentationConfig> {
  constructor(config: SequelizeInstrumentationConfig = {}) {
    super(SEQUELIZE, config);
  }

  protected override init() {
    const ofModel = (model: unknown) => (model as SequelizeModel).sequelize;
    const ofInstance = (instance: unknown) => (instance as { constructor: SequelizeModel }).constructor.sequelize;
    return this.checkingVersions([
      new InstrumentationNodeModuleDefinition('sequelize', VERSIONS, undefined, undefined, [
        this.patchFile('sequelize/lib/model.js', VERSIONS, (Model: ClassExports) => {
          for (const name of MODEL_STATICS)
            this.wrapStatic(Model, name, (original) => this.callsModel(original, ofModel));
          for (const name of MODEL_METHODS) {
            this.wrapMethod(Model, name, (original) => this.callsModel(original, ofInstance));
          }
        }),
        this.patchFile('sequelize/lib/sequelize.js', VERSIONS, (exports: ClassExports) => {
          this.wrapMethod(exports.Sequelize, 'query', (original) => this.queries(original));
          this.wrapMethod(exports.Sequelize, 'transaction', (original) => this.startsTransaction(original));
        }),
        // a new connection's setup (SET …, the type probe) belongs to no model call: plain pg spans
        this.patchFile('sequelize/lib/dialects/postgres/connection-manager.js', VERSIONS, (ConnectionManager) =>
          this.wrapMethod(
            ConnectionManager,
            'connect',
            (original) =>
              function connect(this: unknown, ...args: unknown[]) {
                return withoutTrail(() => original.apply(this, args));
              },
          ),
        ),
      ]),
    ]);
  }

  /**
   * A model call: a new trail, unless a call is already running (sequelize's own nested calls, findByPk →
   * findOne → findAll, share it: they only look for it). `instanceOf(this)`: the Sequelize instance of the
   * model class or instance. The context is read once a call: each read costs about as much as the rest.
   */
  private callsModel(original: Method, instanceOf: (self: unknown) => SequelizeInstance | undefined): Method {
    const instrumentation = this;
    return function modelCall(this: unknown, ...args: unknown[]) {
      let ctx: Context | undefined;
      let trail: Trail | undefined;
      // try/catch rather than guarded(): no closure allocated per call
      try {
        ctx = activeContext();
        if (runningCall(SEQUELIZE, ctx) === undefined) {
          const sequelize = instanceOf(this);
          if (isPostgres(sequelize)) trail = instrumentation.modelCallTrail(modelCall, this, sequelize, args, ctx);
        }
      } catch (err) {
        internalErrorOccurred('sequelize call', err);
      }
      if (trail === undefined) return original.apply(this, args);
      return runEagerly(trail, () => original.apply(this, args), 'construction', ctx);
    };
  }

  /** The trail of a model call made on `self` (a model class or instance), with its foreign includes. */
  private modelCallTrail(below: Function, self: unknown, sequelize: SequelizeInstance, args: unknown[], ctx: Context) {
    // its line is learned per model: a model class, or an instance's class
    const model = typeof self === 'function' ? self : (self as { constructor?: object } | null)?.constructor;
    const call = this.startTrail(below, { binding: bindingsOf(sequelize).primary, eager: true, receiver: model }, ctx);
    const options = args.find((arg) => arg !== null && typeof arg === 'object' && 'include' in arg) as
      { include?: unknown } | undefined;
    for (const included of foreignIncludes(sequelize, options?.include, 0, [])) {
      // the include compiles into this call's SQL: a part built on the same line, bound to its own instance
      const binding = bindingsOf(included.sequelize as SequelizeInstance).primary;
      embed(call, {
        ...call,
        binding,
        parent: undefined,
        parts: undefined,
        label: `include of ${included.name ?? 'a model'}`,
      });
    }
    return call;
  }

  /** The query's pool and binding, on a copy of the call's trail; a raw `sequelize.query` starts its own. */
  private queries(original: Method): Method {
    const instrumentation = this;
    return function query(this: SequelizeInstance, sql: unknown, options?: SequelizeQueryOptions, ...rest: unknown[]) {
      let ctx: Context | undefined;
      let running: Trail | undefined;
      let trail: Trail | undefined;
      try {
        ctx = activeContext();
        if (isPostgres(this)) {
          const bindings = bindingsOf(this);
          running = currentExecution(ctx)?.trail;
          if (running?.library !== SEQUELIZE) running = undefined;
          trail =
            running ??
            instrumentation.startTrail(query, { binding: bindings.primary, eager: true, receiver: this }, ctx);
          if (bindings.replicated) {
            const pool = poolOf(options);
            trail = throughPool(trail, pool, pool === 'read' ? bindings.replica : bindings.primary);
          }
        }
      } catch (err) {
        internalErrorOccurred('sequelize query', err);
      }
      // the model call's own trail runs on: nothing to enter
      if (trail === undefined || trail === running) return original.call(this, sql, options, ...rest);
      if (running === undefined) {
        return runEagerly(trail, () => original.call(this, sql, options, ...rest), 'construction', ctx);
      }
      return continueAs(trail, () => original.call(this, sql, options, ...rest), ctx);
    };
  }

  /**
   * The transaction's BEGIN and COMMIT belong to the line that started it. Model calls inside get their
   * own trails; a raw `sequelize.query` inside runs as the transaction's (it cannot be told apart from
   * sequelize's own BEGIN/COMMIT, which also come through `query` with the transaction).
   */
  private startsTransaction(original: Method): Method {
    const instrumentation = this;
    return function transaction(this: SequelizeInstance, ...args: unknown[]) {
      const trail = guarded('sequelize transaction', () =>
        isPostgres(this)
          ? instrumentation.startTrail(transaction, {
              binding: bindingsOf(this).primary,
              kind: 'transaction',
              eager: true,
              receiver: this,
            })
          : undefined,
      );
      if (trail === undefined) return original.apply(this, args);
      return runAs(trail, () => original.apply(this, args));
    };
  }
}
