import { Meter, trace } from '@opentelemetry/api';
import type { SiteRef } from './callsite';
import { internalErrorOccurred } from './guard';
import { describeBinding } from './hazards/describe';
import { FirstRun, memoisedResultReuse } from './hazards/memoised-result';
import { HazardReporter, QueryTrailHazardError } from './report';
import { getRuntime } from './runtime';
import { currentScope, describeScope, routeOf } from './scope';
import { Trail, withExecutionOf } from './trail';

/** The own `constructor` of an observed native promise: not `Promise`, with `Promise` as its species. */
const OBSERVED = Object.freeze({ [Symbol.species]: Promise });

/**
 * The awaits of query objects that keep their result (see hazards/memoised-result.ts). They send no
 * query, so there is no query span: the hazard goes on the active span (the request's), with the
 * `querytrail.hazards` counter of the instrumentation that owns this reporter, and a readable warning.
 */
export class ResultReuseReporter {
  private reporter: HazardReporter | undefined;

  /** `meter`: the owning instrumentation's current meter (it changes when a meter provider is set). */
  constructor(private readonly meter: () => Meter) {}

  /** The meter provider changed: re-create the counter, if it exists yet. */
  updateInstruments(): void {
    this.reporter?.createInstruments(this.meter());
  }

  /** Called where the app awaits the result; returns the error to reject with, in strict mode. */
  judge(trail: Trail, firstRun: FirstRun): QueryTrailHazardError | undefined {
    try {
      const scope = currentScope();
      const hazard = memoisedResultReuse(trail, firstRun, scope, Date.now());
      if (hazard === undefined) return undefined;
      const span = trace.getActiveSpan() ?? trace.wrapSpanContext({ traceId: '', spanId: '', traceFlags: 0 });
      this.getReporter().report(span, [hazard], trail.binding?.namespace, routeOf(scope), () => ({
        bound: describeBinding(trail.binding),
        ran: 'no query: the result of an earlier run',
        scope: describeScope(scope),
      }));
      return getRuntime().config.strict.has(hazard.code) ? new QueryTrailHazardError([hazard]) : undefined;
    } catch (err) {
      internalErrorOccurred('result reuse', err);
      return undefined;
    }
  }

  /**
   * Runs an ORM call that sends its query now (sequelize, typeorm: not lazy) as `trail`. Made at init, it
   * runs then, and a request that awaits its promise later gets the boot-time rows: its awaits are watched.
   */
  runsNow(trail: Trail, run: () => unknown, site: SiteRef | undefined): unknown {
    const result = withExecutionOf(trail, run, site);
    if (currentScope() === undefined && result instanceof Promise) {
      try {
        this.observeAwaits(result, trail, { phase: 'init', scopeId: undefined, at: Date.now() });
      } catch (err) {
        internalErrorOccurred('init call', err);
      }
    }
    return result;
  }

  /**
   * `await` on a native promise reads no `then` the app could see. An own `constructor` that is not
   * `Promise` sends it down the thenable path, which calls an own `then`: every await, `.then`, `.catch`
   * and `.finally` is judged. Its species is `Promise`, so the promises chained from it stay plain. For
   * the rare promise started at init: each await of it takes two more microtask turns.
   */
  observeAwaits(promise: Promise<unknown>, trail: Trail, firstRun: FirstRun): void {
    const reporter = this;
    const then = promise.then;
    Object.defineProperty(promise, 'constructor', { value: OBSERVED, configurable: true, writable: true });
    Object.defineProperty(promise, 'then', {
      configurable: true,
      writable: true,
      value: function awaited(this: Promise<unknown>, ...args: unknown[]) {
        const rejection = reporter.judge(trail, firstRun);
        return then.apply(rejection === undefined ? this : Promise.reject(rejection), args as []);
      },
    });
  }

  private getReporter(): HazardReporter {
    if (this.reporter === undefined) {
      this.reporter = new HazardReporter(getRuntime().warnings);
      this.reporter.createInstruments(this.meter());
    }
    return this.reporter;
  }
}
