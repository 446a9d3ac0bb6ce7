/**
 * Query objects that keep their result (a Prisma promise after its first `await`; the promise of an
 * eager ORM call started at init): awaited again, they send no query, so no query span exists. They are
 * judged where the app awaits them (hazards/memoised-result.ts), through the same hazard pipeline.
 */
import { Context, trace } from '@opentelemetry/api';
import { activeContext } from './active-context';
import { internalErrorOccurred } from './guard';
import { describeBinding } from './hazards/describe';
import { FirstRun, memoisedResultReuse } from './hazards/memoised-result';
import type { QueryTrailHazardError } from './report';
import { getRuntime } from './runtime';
import { currentScope, describeScope, routeOf } from './scope';
import { runAs, RunFrom } from './seam';
import type { Trail } from './trail';
import type { SiteRef } from './callsite';

export type { FirstRun } from './hazards/memoised-result';

/** Called where the app awaits a kept result; returns the error to reject with, in strict mode. */
export function judgeAwaitOfKeptResult(trail: Trail, firstRun: FirstRun): QueryTrailHazardError | undefined {
  try {
    const scope = currentScope();
    const hazard = memoisedResultReuse(trail, firstRun, scope, Date.now());
    if (hazard === undefined) return undefined;
    return getRuntime().hazards.report([hazard], {
      span: trace.getActiveSpan(), // the request's: no query runs
      namespace: trail.binding?.namespace,
      route: routeOf(scope),
      context: () => ({
        bound: describeBinding(trail.binding),
        ran: 'no query: the result of an earlier run',
        scope: describeScope(scope),
      }),
    });
  } catch (err) {
    internalErrorOccurred('result reuse', err);
    return undefined;
  }
}

/**
 * Runs an ORM call that sends its queries now and returns a promise of their result (not a lazy query
 * object). Made at init, it runs then, and a request that awaits its promise later gets the boot-time
 * rows: such a promise's awaits are watched.
 */
export function runEagerly<T>(
  trail: Trail,
  run: () => T,
  from: RunFrom | SiteRef = 'construction',
  ctx: Context = activeContext(),
): T {
  const result = runAs(trail, run, from, ctx);
  if (currentScope(ctx) === undefined && result instanceof Promise) {
    try {
      observeAwaits(result, trail, { phase: 'init', scopeId: undefined, at: Date.now() });
    } catch (err) {
      internalErrorOccurred('init call', err);
    }
  }
  return result;
}

/** The own `constructor` of an observed native promise: not `Promise`, with `Promise` as its species. */
const OBSERVED = Object.freeze({ [Symbol.species]: Promise });

/**
 * `await` on a native promise reads no `then` the app could see. An own `constructor` that is not
 * `Promise` sends it down the thenable path, which calls an own `then`: every await, `.then`, `.catch`
 * and `.finally` is judged. Its species is `Promise`, so the promises chained from it stay plain. For
 * the rare promise started at init: each await of it takes two more microtask turns.
 */
function observeAwaits(promise: Promise<unknown>, trail: Trail, firstRun: FirstRun): void {
  const then = promise.then;
  // defineProperty returns the promise itself: nothing to await here
  void Object.defineProperty(promise, 'constructor', { value: OBSERVED, configurable: true, writable: true });
  void Object.defineProperty(promise, 'then', {
    configurable: true,
    writable: true,
    value: function awaited(this: Promise<unknown>, ...args: unknown[]) {
      const rejection = judgeAwaitOfKeptResult(trail, firstRun);
      return then.apply(rejection === undefined ? this : Promise.reject(rejection), args as []);
    },
  });
}
