import type { Attributes, Counter, Meter, Span } from '@opentelemetry/api';
import { ATTR, HAZARD, HAZARD_COUNTER, HAZARD_COUNTER_CODE, HAZARD_COUNTER_ROUTE, HAZARD_EVENT } from './attributes';
import { formatSite } from './callsite';
import { guarded } from './guard';
import type { Hazard, HazardCode } from './hazards/types';

/** Thrown (or passed to the callback) instead of running the query, in strict mode. */
export class QueryTrailHazardError extends Error {
  readonly code: HazardCode;
  constructor(readonly hazards: readonly Hazard[]) {
    super(`querytrail ${hazards[0].code}: ${hazards.map((h) => h.message).join(' | ')}`);
    this.name = 'QueryTrailHazardError';
    this.code = hazards[0].code;
  }
}

/** What a reader needs to act on a hazard, beside its message. */
export interface HazardContext {
  bound: string;
  ran: string;
  scope: string;
}

/** Where readable warnings go (exporters/console.ts). */
export interface WarningSink {
  warn(hazard: Hazard, context: HazardContext): void;
  suppressed(count: number): void;
}

const MINUTE = 60_000;

/**
 * Readable warnings, shared by every instrumentation: one per (hazard code, site), and at most
 * `warningsPerMinute` of those, so production logs never flood however hot the offending path is.
 */
export class WarningLog {
  private readonly warned = new Set<string>();
  private windowStart = 0;
  private warningsInWindow = 0;
  private suppressedInWindow = 0;

  constructor(
    private readonly sink: WarningSink,
    private readonly perMinute: number,
  ) {}

  warn(hazard: Hazard, context: () => HazardContext): void {
    const key = `${hazard.code}@${formatSite(hazard.site)}`;
    if (this.warned.has(key)) return;
    const now = Date.now();
    if (now - this.windowStart >= MINUTE) {
      if (this.suppressedInWindow) this.sink.suppressed(this.suppressedInWindow);
      this.windowStart = now;
      this.warningsInWindow = 0;
      this.suppressedInWindow = 0;
    }
    if (this.warningsInWindow >= this.perMinute) {
      this.suppressedInWindow++;
      return; // not marked as warned: it is shown once the window reopens
    }
    this.warningsInWindow++;
    this.warned.add(key);
    this.sink.warn(hazard, context());
  }
}

export type HazardObserver = (hazard: Hazard, context: () => HazardContext) => void;

/** Where a hazard was seen, for its span event, counter dimensions and warning. */
export interface HazardScene {
  /** The query's span; for a result awaited without a query, the active span, if any. */
  span: Span | undefined;
  namespace: string | undefined;
  route: string | undefined;
  context: () => HazardContext;
}

/**
 * The one way every hazard is reported: a span event (when there is a span), the `querytrail.hazards`
 * counter every time, a readable warning (deduplicated and rate-limited), and, in strict mode, the error
 * the app's call fails with instead.
 */
export class HazardPipeline {
  private counter: Counter | undefined;
  private readonly observers: HazardObserver[] = [];

  constructor(
    private readonly warnings: WarningLog | undefined,
    private readonly strict: ReadonlySet<HazardCode>,
  ) {}

  useMeter(meter: Meter): void {
    this.counter = meter.createCounter(HAZARD_COUNTER, {
      description: 'Query hazards detected by querytrail',
      unit: '{hazard}',
    });
  }

  /** Some hazard makes its query fail instead of running (strict mode). */
  get strictAny(): boolean {
    return this.strict.size > 0;
  }

  /** Every hazard reported from now on is also given to `observer` (querytrail/testing). */
  observe(observer: HazardObserver): void {
    this.observers.push(observer);
  }

  /** Reports the hazards; returns the error to fail the app's call with, when strict mode covers one. */
  report(hazards: readonly Hazard[], scene: HazardScene): QueryTrailHazardError | undefined {
    for (const hazard of hazards) {
      if (scene.span !== undefined) {
        const event: Attributes = {
          [HAZARD.CODE]: hazard.code,
          [HAZARD.SEVERITY]: hazard.severity,
          [HAZARD.MESSAGE]: hazard.message,
          ...hazard.attributes,
        };
        if (hazard.site) {
          event[HAZARD.FILE] = hazard.site.file;
          event[HAZARD.LINE] = hazard.site.line;
        }
        scene.span.addEvent(HAZARD_EVENT, event);
      }
      const dims: Attributes = { [HAZARD_COUNTER_CODE]: hazard.code };
      if (scene.namespace !== undefined) dims[ATTR.DB_NAMESPACE] = scene.namespace;
      if (scene.route !== undefined) dims[HAZARD_COUNTER_ROUTE] = scene.route;
      this.counter?.add(1, dims);
      this.warnings?.warn(hazard, scene.context);
      for (const observer of this.observers) guarded('hazard observer', () => observer(hazard, scene.context));
    }
    const blocking = hazards.filter((h) => this.strict.has(h.code));
    return blocking.length ? new QueryTrailHazardError(blocking) : undefined;
  }
}
