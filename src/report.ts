import type { Attributes, Counter, Meter, Span } from '@opentelemetry/api';
import { ATTR, HAZARD_COUNTER, HAZARD_EVENT } from './attributes';
import { formatSite } from './callsite';
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

/** Hazards → a span event and the `querytrail.hazards` counter every time, and a readable warning. */
export class HazardReporter {
  private counter: Counter | undefined;

  constructor(private readonly warnings: WarningLog | undefined) {}

  createInstruments(meter: Meter): void {
    this.counter = meter.createCounter(HAZARD_COUNTER, {
      description: 'Query hazards detected by querytrail',
      unit: '{hazard}',
    });
  }

  report(
    span: Span,
    hazards: readonly Hazard[],
    namespace: string | undefined,
    route: string | undefined,
    context: () => HazardContext,
  ): void {
    for (const hazard of hazards) {
      const event: Attributes = {
        [ATTR.HAZARD_CODE]: hazard.code,
        [ATTR.HAZARD_SEVERITY]: hazard.severity,
        [ATTR.HAZARD_MESSAGE]: hazard.message,
        ...hazard.attributes,
      };
      if (hazard.site) {
        event['querytrail.hazard.file'] = hazard.site.file;
        event['querytrail.hazard.line'] = hazard.site.line;
      }
      span.addEvent(HAZARD_EVENT, event);
      const dims: Attributes = { code: hazard.code };
      if (namespace !== undefined) dims[ATTR.DB_NAMESPACE] = namespace;
      if (route !== undefined) dims.route = route;
      this.counter?.add(1, dims);
      this.warnings?.warn(hazard, context);
    }
  }
}
