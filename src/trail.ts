import { context, Context, createContextKey } from '@opentelemetry/api';
import { SiteRef } from './callsite';
import type { DatabaseRef } from './database';
import { currentScope, Phase, phaseOf } from './scope';

/**
 * The provenance record of a query object: where it was built, in which phase/scope, what it was bound
 * to, which object it was derived from, and which query objects it embeds. ORM instrumentations create
 * trails as query objects are built; the driver instrumentation reads the one being executed.
 */
export interface Trail {
  readonly library: string;
  readonly site: SiteRef | undefined;
  readonly phase: Phase;
  /** Request or job id; undefined at init. */
  readonly scopeId: number | undefined;
  readonly createdAt: number;
  /** Set at construction; kysely hides it until the builder first compiles, and sets it then. */
  binding: DatabaseRef | undefined;
  /** The object this one was derived from (a clone, a chained builder). */
  readonly parent: Trail | undefined;
  /** Query objects compiled into this one (sub-queries, raw fragments), recorded when compiled. */
  parts: Trail[] | undefined;
  /** What the library calls this object in messages: `sub-query`, `raw fragment`. */
  readonly kind?: string;
  /** The library re-bound this object to another database when it was embedded (knex raws). */
  rebound?: boolean;
  /** The pool the ORM picked for it, where it has several: `read`/`write` (sequelize), `master`/`slave` (typeorm), `primary`/`replica` (prisma). */
  pool?: string;
  /** The transaction the app handed it to, when the library runs it on its own connection instead (prisma `$transaction([...])`). */
  transaction?: Trail;
}

export interface TrailInit {
  library: string;
  site: SiteRef | undefined;
  binding?: DatabaseRef;
  parent?: Trail;
  kind?: string;
}

export function createTrail(init: TrailInit, ctx: Context = context.active()): Trail {
  const scope = currentScope(ctx);
  return {
    library: init.library,
    site: init.site,
    phase: phaseOf(scope),
    scopeId: scope?.id,
    createdAt: Date.now(),
    binding: init.binding ?? init.parent?.binding,
    parent: init.parent,
    parts: undefined,
    kind: init.kind,
  };
}

/** The first object of the derivation chain: a request-time clone of an init-time base leads back to it. */
export function lineageRoot(trail: Trail): Trail {
  let root = trail;
  while (root.parent !== undefined) root = root.parent;
  return root;
}

export function addPart(trail: Trail, part: Trail): void {
  (trail.parts ??= []).push(part);
}

const EXECUTION_KEY = createContextKey('querytrail.execution');
const EXECUTION_SITE_KEY = createContextKey('querytrail.execution.site');

/**
 * The ORM layer marks which query object is running; the driver layer, which knows the connection,
 * reads it. ORMs that reach the driver only after their own awaits take the execution site where the
 * app called them, while it is still on the stack.
 */
export function withExecutionOf<T>(trail: Trail, fn: () => T, site?: SiteRef): T {
  let ctx = context.active().setValue(EXECUTION_KEY, trail);
  if (site !== undefined) ctx = ctx.setValue(EXECUTION_SITE_KEY, site);
  return context.with(ctx, fn);
}

/** For a library's own housekeeping queries (connection setup) run while one of the app's is executing. */
export function withoutExecution<T>(fn: () => T): T {
  return context.with(context.active().deleteValue(EXECUTION_KEY).deleteValue(EXECUTION_SITE_KEY), fn);
}

export function executingSite(ctx: Context = context.active()): SiteRef | undefined {
  return ctx.getValue(EXECUTION_SITE_KEY) as SiteRef | undefined;
}

export function executingTrail(ctx: Context = context.active()): Trail | undefined {
  return ctx.getValue(EXECUTION_KEY) as Trail | undefined;
}
