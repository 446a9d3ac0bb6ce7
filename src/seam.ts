/**
 * The seam between instrumentations and the core. An instrumentation states facts about its library's
 * query objects — "built here, bound to this", "this one embeds that one", "this one runs now" — and the
 * core decides everything else: whether to capture a stack, the phase, the execution site, the hazards.
 */
import { Context, createContextKey } from '@opentelemetry/api';
import { activeContext, withContext } from './active-context';
import { SiteRef, StackCapture } from './callsite';
import { withValue } from './context-layer';
import type { CapturePolicy } from './config';
import type { DatabaseRef } from './database';
import { getRuntime } from './runtime';
import type { EagerCall } from './site-capture';
import { currentScope, phaseOf, siteScopeOf } from './scope';
import { KIND_LABELS, LibraryProfile, Trail, TrailKind } from './trail';

export interface TrailFacts {
  /** The database the object is bound to; a derived object inherits its parent's. */
  binding?: DatabaseRef;
  /** The object it was derived from (a clone). */
  parent?: Trail;
  /** @default 'query' */
  kind?: TrailKind;
  /** What messages call it when embedded. @default 'sub-query', 'raw fragment' or 'transaction' by kind */
  label?: string;
  /**
   * The call that builds it runs it (a model or repository call, a raw query, a transaction): its
   * construction site is where it runs, so under `lean` too it is captured until learned (SiteCapture).
   */
  eager?: boolean;
  /** What an eager call was made on (the model, repository or client): its line is learned per receiver. */
  receiver?: object;
}

/**
 * "A query object was built here." Called synchronously in the app's call; `below` is the patched
 * function the app called: its caller is the construction site (captured as `capture` allows).
 */
export function startTrail(
  library: LibraryProfile,
  capture: CapturePolicy,
  below: Function,
  facts: TrailFacts = {},
  ctx: Context = activeContext(),
): Trail {
  const scope = currentScope(ctx);
  const phase = phaseOf(scope);
  const kind = facts.kind ?? 'query';
  // learning and learnedCall written whether set or not: the objects made here keep one shape each
  const eager: EagerCall | undefined = facts.eager
    ? { receiver: facts.receiver, scopeKey: siteScopeOf(scope), learning: undefined }
    : undefined;
  return {
    library,
    kind,
    label: facts.label ?? KIND_LABELS[kind],
    site: getRuntime().sites.constructionSite(below, phase, capture, eager),
    phase,
    scopeId: scope?.id,
    createdAt: Date.now(),
    binding: facts.binding ?? facts.parent?.binding,
    parent: facts.parent,
    parts: undefined,
    learnedCall: eager?.learning,
  };
}

/** "This object embeds that one": `part` was compiled into `outer`'s SQL. Each part is recorded once. */
export function embed(outer: Trail, part: Trail): void {
  if (part === outer || outer.parts?.includes(part)) return;
  (outer.parts ??= []).push(part);
}

/** The object as run through one of the library's pools: a copy, since one call may use several at once. */
export function throughPool(trail: Trail, pool: string, binding: DatabaseRef | undefined): Trail {
  return trail.pool === pool && trail.binding === binding ? trail : { ...trail, pool, binding };
}

/**
 * How the line that runs a query is found (src/execution-site.ts): `await`, the app runs the object
 * later (awaits a builder, calls `.execute()`), so the driver looks for that line; `construction`, the
 * call that built the object is the call that runs it (eager ORM calls), so its construction site is it.
 */
export type RunFrom = 'await' | 'construction';

/** The query object running in this context, and how its execution site is found. */
export interface Execution {
  readonly trail: Trail;
  /** `await`, `construction`, or the site the instrumentation captured where the app called it. */
  readonly from: RunFrom | SiteRef;
}

const EXECUTION = createContextKey('querytrail.execution');

/**
 * "This object runs now": every query the driver sends inside `fn` is one of its runs. An instrumentation
 * whose entry point the app calls synchronously, where the driver would find no application frame (a
 * stream), passes the site it took there (`entrySite`). `fn` is called with `arg`: a library callback of one
 * argument runs without a closure made to bind it.
 */
export function runAs<T, A = undefined>(
  trail: Trail,
  fn: (arg: A) => T,
  from: RunFrom | SiteRef = 'await',
  ctx: Context = activeContext(),
  arg?: A,
): T {
  const execution: Execution = { trail, from };
  return enter(withValue(ctx, EXECUTION, execution), fn, arg as A);
}

/** The execution a library's runner is sending right now (sendsNow): it comes before the context's. */
let sending: Execution | undefined;

/**
 * "This object runs now", for a runner that calls the driver synchronously, before `fn` returns (before its
 * first await): only the driver calls made then are its runs. No context is entered: entering one costs each
 * query more than the rest of its provenance does (its promises then carry another async context).
 */
export function sendsNow<T>(trail: Trail, fn: () => T, from: RunFrom | SiteRef = 'await'): T {
  const outer = sending;
  sending = { trail, from };
  try {
    return fn();
  } finally {
    sending = outer;
  }
}

/** Runs `fn(arg)` in `ctx`, whose execution (or none) is what it runs: not the one a runner around it sends. */
function enter<T, A>(ctx: Context, fn: (arg: A) => T, arg: A): T {
  const outer = sending;
  if (outer === undefined) return withContext(ctx, fn, arg);
  sending = undefined;
  try {
    return withContext(ctx, fn, arg);
  } finally {
    sending = outer;
  }
}

/** The running execution continues as `trail` (its run through one pool): the same execution site. */
export function continueAs<T>(trail: Trail, fn: () => T, ctx: Context = activeContext()): T {
  const running = currentExecution(ctx);
  // the same pool as the call's own trail: nothing changes, no context to copy
  if (running?.trail === trail) return fn();
  return runAs(trail, fn, running?.from, ctx);
}

/** Where the app called `below`, an instrumentation's patched entry point, as `capture` allows. */
export function entrySite(below: Function, capture: CapturePolicy): SiteRef | undefined {
  return capture === 'off' ? undefined : new StackCapture(below);
}

export function currentExecution(ctx: Context = activeContext()): Execution | undefined {
  return sending ?? (ctx.getValue(EXECUTION) as Execution | undefined);
}

/**
 * The call of this library already running here, if any: the builders and queries a library makes for
 * an ORM call belong to that call. A transaction is not a call: what runs inside it has its own trails.
 */
export function runningCall(library: LibraryProfile, ctx: Context = activeContext()): Trail | undefined {
  const running = currentExecution(ctx)?.trail;
  return running?.library === library && running.kind !== 'transaction' ? running : undefined;
}

/** A library's own housekeeping (connection setup) while an app query runs: plain driver spans. */
export function withoutTrail<T>(fn: () => T): T {
  return enter(withValue(activeContext(), EXECUTION, undefined), fn, undefined);
}
