import { HAZARD } from '../attributes';
import { formatSite, resolveSite } from '../callsite';
import { describeScope } from '../scope';
import { lineageRoot, Trail } from '../trail';
import { capitalize, describeAge, describeBinding, describeTrail } from './describe';
import type { Hazard, HazardRule, QueryExecution } from './types';

/**
 * A query object built at init (module load, a config object, a cached base builder) — or derived from
 * one — runs inside a request: it keeps the binding and the values it got at boot.
 */
export const initQueryInRequest: HazardRule = (trail, execution) => {
  if (trail === undefined || execution.phase !== 'request') return undefined;
  const root = lineageRoot(trail);
  if (root.phase !== 'init') return undefined;
  return builtAtInit(trail, root, execution);
};

function builtAtInit(trail: Trail, root: Trail, execution: QueryExecution): Hazard {
  const site = resolveSite(root.site);
  const derived =
    root === trail ? '' : ` (derived from it in a ${trail.phase} at ${formatSite(resolveSite(trail.site))})`;
  return {
    code: 'init_query_in_request',
    severity: 'warning',
    site,
    message:
      `${capitalize(describeTrail(root))}${derived} runs in ${describeScope(execution.scope)}, ` +
      `${describeAge(execution.now - root.createdAt)} after it was built, ` +
      `bound to ${describeBinding(root.binding)} since then; build it inside the request instead.`,
    attributes: { [HAZARD.AGE_MS]: execution.now - root.createdAt },
  };
}
