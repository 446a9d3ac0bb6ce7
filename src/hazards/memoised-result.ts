import { formatSite, resolveSite } from '../callsite';
import { describeScope, Phase, Scope } from '../scope';
import type { Trail } from '../trail';
import { capitalize, describeAge, describeBinding, describeTrail } from './describe';
import type { Hazard } from './types';

/** When and where a memoising query object (a Prisma promise) ran its query and kept the result. */
export interface FirstRun {
  phase: Phase;
  scopeId: number | undefined;
  at: number;
}

/**
 * A query object that memoises its result is awaited in a request other than the one it ran in: no
 * query is sent, the app gets the rows fetched then — at init, or for another request. No query span
 * exists for it, so this is judged when the app awaits it.
 */
export function memoisedResultReuse(trail: Trail, firstRun: FirstRun, scope: Scope | undefined, now: number): Hazard | undefined {
  if (scope?.kind !== 'request' || firstRun.scopeId === scope.id) return undefined;
  const fetched = firstRun.phase === 'init' ? 'at init' : `in an earlier ${firstRun.phase}`;
  const site = resolveSite(trail.site);
  return {
    code: trail.phase === 'init' ? 'init_query_in_request' : 'cross_request_reuse',
    severity: 'warning',
    site,
    message:
      `${capitalize(describeTrail(trail))} is awaited in ${describeScope(scope)}, but it keeps its first result: it sends no query and returns the rows ` +
      `it read from ${describeBinding(trail.binding)} ${fetched}, ${describeAge(now - firstRun.at)} ago; create the query in the request instead (${formatSite(site)}).`,
    attributes: { 'querytrail.hazard.age_ms': now - firstRun.at, 'querytrail.hazard.memoised': true },
  };
}
