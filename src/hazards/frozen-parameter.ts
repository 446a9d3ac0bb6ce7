import { HAZARD } from '../attributes';
import { resolveSite } from '../callsite';
import type { Trail } from '../trail';
import { capitalize, describeAge, describeTrail } from './describe';
import type { Hazard, HazardRule, QueryExecution } from './types';

/** A value within this distance of a query object's construction is taken as computed at construction. */
const CONSTRUCTION_WINDOW_MS = 1000;
/** Timestamps in ms since the epoch between 2001 and 2286; smaller numbers are ids and counts. */
const MIN_EPOCH_MS = 1e12;

/** ORMs often serialize Dates before the driver sees them (drizzle: `toISOString()`). */
const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}/;
/** `toUTCString()` (drizzle before 0.30, timestamps with time zone): whole seconds. */
const UTC_STRING = /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** A value that looks like a timestamp: its time, and how much precision its form dropped. */
function timestampOf(value: unknown): { at: number; precisionMs: number } | undefined {
  if (value instanceof Date) return { at: value.getTime(), precisionMs: 0 };
  if (typeof value === 'number' && value >= MIN_EPOCH_MS && value < 1e13) return { at: value, precisionMs: 0 };
  if (typeof value !== 'string') return undefined;
  const precisionMs = ISO_TIMESTAMP.test(value) ? 0 : UTC_STRING.test(value) ? 1000 : undefined;
  if (precisionMs === undefined) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : { at, precisionMs };
}

/** Built at init and run in a request or job, or built in one request or job and run in another. */
function builtElsewhere(trail: Trail, execution: QueryExecution): boolean {
  return trail.phase === 'init' ? execution.phase !== 'init' : trail.scopeId !== execution.scope?.id;
}

/**
 * A query object built outside the current request carries a timestamp computed when it was built
 * (`published_at <= new Date()` at import): every later run uses that stale value.
 */
export const frozenParameter: HazardRule = (trail, execution) => {
  const { parameters } = execution;
  if (parameters === undefined) return undefined;
  for (let t: Trail | undefined = trail; t !== undefined; t = t.parent) {
    if (!builtElsewhere(t, execution)) continue;
    const hazard = frozenValue(t, execution, parameters);
    if (hazard !== undefined) return hazard;
  }
  return undefined;
};

/** The first parameter that looks computed when `trail` was built. */
function frozenValue(trail: Trail, execution: QueryExecution, parameters: readonly unknown[]): Hazard | undefined {
  for (const value of parameters) {
    const timestamp = timestampOf(value);
    if (timestamp === undefined) continue;
    const { at, precisionMs } = timestamp;
    if (Math.abs(at - trail.createdAt) <= CONSTRUCTION_WINDOW_MS + precisionMs) return frozen(trail, execution, at);
  }
  return undefined;
}

function frozen(trail: Trail, execution: QueryExecution, at: number): Hazard {
  const stale = execution.now - at;
  return {
    code: 'frozen_parameter',
    severity: 'warning',
    site: resolveSite(trail.site),
    message:
      `${capitalize(describeTrail(trail))} carries a timestamp computed when it was built, ` +
      `${describeAge(stale)} ago, ` +
      'and sends that stale value on every run; ' +
      'compute it when the query runs: build the query inside the request.',
    attributes: { [HAZARD.STALE_MS]: stale },
  };
}
