import { HAZARD } from '../attributes';
import { formatSite, resolveSite } from '../callsite';
import { describeScope, Phase, Scope } from '../scope';
import type { Trail } from '../trail';
import { capitalize, describeAge, describeBinding, describeTrail } from './describe';
import type { Hazard } from './types';

/** When and where a query object ran its query and kept the result (a Prisma promise, a started sequelize call). */
export interface FirstRun {
  phase: Phase;
  scopeId: number | undefined;
  at: number;
}

/**
 * A query object whose result is kept — a Prisma promise after its first `await`, a sequelize call's
 * promise, which runs when made — is awaited in a request other than the one it ran in: no query is sent,
 * the app gets the rows fetched then, at init or for another request. No query span exists for it, so
 * this is judged where the app awaits it.
 */
export function memoisedResultReuse(
  trail: Trail,
  firstRun: FirstRun,
  scope: Scope | undefined,
  now: number,
): Hazard | undefined {
  if (scope?.kind !== 'request' || firstRun.scopeId === scope.id) return undefined;
  const fetched = firstRun.phase === 'init' ? 'at init' : `in an earlier ${firstRun.phase}`;
  const site = resolveSite(trail.site);
  return {
    code: trail.phase === 'init' ? 'init_query_in_request' : 'cross_request_reuse',
    severity: 'warning',
    site,
    message:
      `${capitalize(describeTrail(trail))} is awaited in ${describeScope(scope)}, but it already ran: ` +
      `it sends no query and returns the rows it read from ${describeBinding(trail.binding)} ${fetched}, ` +
      `${describeAge(now - firstRun.at)} ago; make the call in the request instead (${formatSite(site)}).`,
    attributes: { [HAZARD.AGE_MS]: now - firstRun.at, [HAZARD.MEMOISED]: true },
  };
}
