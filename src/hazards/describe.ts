import { RelatedSite, relatedSiteKeys } from '../attributes';
import { formatSite, resolveSite } from '../callsite';
import type { DatabaseRef } from '../database';
import type { Attributes } from '@opentelemetry/api';
import type { CallSite } from '../callsite';
import type { Trail } from '../trail';
import type { QueryExecution } from './types';

/** "the knex query built at init at src/a.js:3:7" — how messages name a query object. */
export function describeTrail(trail: Trail): string {
  const phase = trail.phase === 'init' ? 'at init' : `in a ${trail.phase}`;
  return `the ${trail.library.name} query built ${phase} at ${formatSite(resolveSite(trail.site))}`;
}

export function describeBinding(ref: DatabaseRef | undefined): string {
  if (ref === undefined) return 'no known database';
  const where = `${ref.address ?? 'localhost'}:${ref.port ?? ''}/${ref.namespace ?? ''}`;
  return ref.alias === where ? where : `${ref.alias} (${where})`;
}

/** "3.2 s", "4 min", "2 h 5 min". */
export function describeAge(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * Where a query ran, for messages: the line that ran it, or — when the ORM ran it after its own awaits
 * and left none — the query object it came from.
 */
export function describeExecution(
  trail: Trail | undefined,
  execution: QueryExecution,
): { site: CallSite | undefined; where: string } {
  const executed = execution.executionSite();
  if (executed !== undefined || trail === undefined) return { site: executed, where: `at ${formatSite(executed)}` };
  return { site: resolveSite(trail.site), where: `(${describeTrail(trail)})` };
}

/** `querytrail.hazard.<what>.file/line` for the other site a hazard names (the part, the write, the BEGIN). */
export function relatedSiteAttributes(
  related: RelatedSite,
  site: CallSite | undefined,
  attributes: Attributes,
): Attributes {
  if (site) {
    const keys = relatedSiteKeys(related);
    attributes[keys.file] = site.file;
    attributes[keys.line] = site.line;
  }
  return attributes;
}
