import { formatSite, resolveSite } from '../callsite';
import { describeScope, Scope } from '../scope';
import { lineageRoot, Trail } from '../trail';
import type { Hazard, HazardRule } from './types';

/** A query object built in one request runs in another: it was cached across requests. */
export const crossRequestReuse: HazardRule = (trail, execution) => {
  const scope = execution.scope;
  if (trail === undefined || scope?.kind !== 'request') return undefined;
  const root = lineageRoot(trail);
  if (root.phase !== 'request' || root.scopeId === scope.id) return undefined;
  return reused(root, scope);
};

function reused(root: Trail, scope: Scope): Hazard {
  return {
    code: 'cross_request_reuse',
    severity: 'warning',
    site: resolveSite(root.site),
    message:
      `The ${root.library.name} query built at ${formatSite(resolveSite(root.site))} in an earlier request ` +
      `runs again in ${describeScope(scope)}: it is cached across requests; build it per request.`,
  };
}
