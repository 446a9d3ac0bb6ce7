import { InstrumentationNodeModuleDefinition } from '@opentelemetry/instrumentation';
import type { DatabaseRef } from '../../src/database';
import { guarded } from '../../src/guard';
import { getRuntime } from '../../src/runtime';
import { embed, runAs, sendsNow } from '../../src/seam';
import type { LibraryProfile, Trail, TrailKind } from '../../src/trail';
import { ClassExports, Method, QuerytrailInstrumentation } from '../querytrail-instrumentation';
import type { KnexClient, KnexInstrumentationConfig, KnexQueryObject } from './types';

const KNEX: LibraryProfile = { name: 'knex', batchAdvice: 'fetch them in one query with `whereIn`' };
const TRAIL = Symbol('querytrail.knex.trail');
const BINDING = Symbol('querytrail.knex.binding');
const VERSIONS = ['>=2.4.0 <4'];

function bindingOf(client: KnexClient): DatabaseRef | undefined {
  let ref = client[BINDING] as DatabaseRef | undefined;
  if (ref === undefined && client.dialect === 'postgresql') {
    const settings = client.connectionSettings ?? {};
    ref = getRuntime().databases.ref('postgresql', settings.host, settings.port, settings.database);
    client[BINDING] = ref;
  }
  return ref;
}

function trailOf(object: unknown): Trail | undefined {
  return (object as KnexQueryObject | undefined)?.[TRAIL] as Trail | undefined;
}

/**
 * The query objects being compiled, outermost first. Compilation is synchronous, so a plain stack is
 * exact: every builder or raw compiled while an outer one compiles is one of its parts.
 */
const compiling: Trail[] = [];

function recordPart(part: Trail | undefined, object: KnexQueryObject): void {
  const outer = compiling[0];
  if (part === undefined || outer === undefined || part === compiling[compiling.length - 1]) return;
  guarded('knex part', () => {
    embed(outer, part);
    // knex re-binds an embedded raw to the outer query's client, for good.
    if (part.kind === 'fragment' && part.binding !== undefined && part.binding !== bindingOf(object.client)) {
      part.rebound = true;
    }
  });
}

function compileAsOuter(trail: Trail | undefined, compile: () => unknown): unknown {
  if (trail === undefined) return compile();
  if (compiling.length === 0) trail.parts = undefined; // each compile records its parts afresh
  compiling.push(trail);
  try {
    return compile();
  } finally {
    compiling.pop();
  }
}

/**
 * knex 3 (pg dialect): a trail for every query builder, clone and raw (where it was built, in which
 * scope, bound to which database), the parts compiled into each query, and the trail of the query being
 * run handed to the pg span.
 */
export class KnexInstrumentation extends QuerytrailInstrumentation<KnexInstrumentationConfig> {
  constructor(config: KnexInstrumentationConfig = {}) {
    super(KNEX, config);
  }

  protected override init() {
    const constructs = this.constructs.bind(this);
    return this.checkingVersions([
      new InstrumentationNodeModuleDefinition('knex', VERSIONS, undefined, undefined, [
        this.patchFile('knex/lib/client.js', VERSIONS, (Client: ClassExports) => {
          this.wrapMethod(Client, 'queryBuilder', constructs('query'));
          this.wrapMethod(Client, 'raw', constructs('fragment'));
          this.wrapMethod(Client, 'queryCompiler', compilesPart);
        }),
        // The pg dialect overrides both instead of inheriting them.
        this.patchFile('knex/lib/dialects/postgres/index.js', VERSIONS, (ClientPG: ClassExports) => {
          this.wrapMethod(ClientPG, 'queryBuilder', constructs('query'));
          this.wrapMethod(ClientPG, 'queryCompiler', compilesPart);
        }),
        this.patchFile('knex/lib/query/querybuilder.js', VERSIONS, (Builder: ClassExports) => {
          this.wrapMethod(Builder, 'clone', (original) => this.clones(original));
          this.wrapMethod(Builder, 'toSQL', compilesOuter);
        }),
        this.patchFile('knex/lib/raw.js', VERSIONS, (Raw: ClassExports) => this.wrapMethod(Raw, 'toSQL', compilesRaw)),
        this.patchFile('knex/lib/execution/runner.js', VERSIONS, (Runner: ClassExports) => {
          this.wrapMethod(Runner, 'query', runs);
          // `.stream()` goes to the dialect's `_stream` (pg-query-stream), not through `query`
          this.wrapMethod(Runner, 'stream', (original) => this.streams(original));
        }),
      ]),
    ]);
  }

  /** Gives a newly built query object its trail. */
  private stamp<T extends KnexQueryObject>(object: T, kind: TrailKind, below: Function, parent?: Trail): T {
    guarded('knex construction', () => {
      (object as KnexQueryObject)[TRAIL] = this.startTrail(below, { binding: bindingOf(object.client), parent, kind });
    });
    return object;
  }

  private constructs(kind: TrailKind) {
    const instrumentation = this;
    return (original: Method): Method =>
      function construct(this: KnexClient, ...args: unknown[]) {
        return instrumentation.stamp(original.apply(this, args), kind, construct);
      };
  }

  /**
   * `.stream()` submits its query from a promise callback, where no async frame leads back to the app:
   * the line is taken here, where the app calls it.
   */
  private streams(original: Method): Method {
    const instrumentation = this;
    return function stream(this: { builder?: KnexQueryObject }, ...args: unknown[]) {
      const trail = trailOf(this.builder);
      if (trail === undefined) return original.apply(this, args);
      return runAs(trail, () => original.apply(this, args), instrumentation.entrySite(stream));
    };
  }

  private clones(original: Method): Method {
    const instrumentation = this;
    return function clone(this: KnexQueryObject, ...args: unknown[]) {
      return instrumentation.stamp(original.apply(this, args), 'query', clone, trailOf(this));
    };
  }
}

function compilesOuter(original: Method): Method {
  return function toSQL(this: KnexQueryObject, ...args: unknown[]) {
    const trail = trailOf(this);
    if (compiling.length > 0) recordPart(trail, this);
    return compileAsOuter(trail, () => original.apply(this, args));
  };
}

function compilesRaw(original: Method): Method {
  return function toSQL(this: KnexQueryObject, ...args: unknown[]) {
    const trail = trailOf(this);
    if (compiling.length > 0) {
      recordPart(trail, this);
      return original.apply(this, args);
    }
    return compileAsOuter(trail, () => original.apply(this, args));
  };
}

/** The outer client compiles every embedded builder: `queryCompiler(inner)` is where parts show up. */
function compilesPart(original: Method): Method {
  return function queryCompiler(this: KnexClient, builder: KnexQueryObject | undefined, ...rest: unknown[]) {
    if (compiling.length > 0 && builder !== undefined) recordPart(trailOf(builder), builder);
    return original.call(this, builder, ...rest);
  };
}

/**
 * The app awaited the builder: after knex's own awaits (a pooled connection), the runner's `query` sends
 * each statement, calling the driver before its first await.
 */
function runs(original: Method): Method {
  return function query(this: { builder?: KnexQueryObject }, ...args: unknown[]) {
    const trail = trailOf(this.builder);
    if (trail === undefined) return original.apply(this, args);
    return sendsNow(trail, () => original.apply(this, args));
  };
}
