import { HAZARD } from '../attributes';
import { formatSite, resolveSite } from '../callsite';
import { capitalize, describeBinding, describeTrail, relatedSiteAttributes } from './describe';
import type { DatabaseRef } from '../database';
import type { Trail } from '../trail';
import type { Hazard, HazardRule } from './types';

/**
 * The query embeds parts (sub-queries, raw fragments) bound to another database. The library compiles
 * them into SQL for the outer query's database without a word: the part reads the wrong tables.
 */
export const crossDatabaseQuery: HazardRule = (trail, execution) => {
  const parts = trail?.parts;
  if (trail === undefined || parts === undefined) return undefined;
  const target = trail.binding ?? execution.bound;
  const foreign = parts.find((part) => part.binding !== undefined && part.binding !== target);
  if (foreign === undefined) return undefined;
  return foreignPart(trail, target, foreign);
};

function foreignPart(trail: Trail, target: DatabaseRef, foreign: Trail): Hazard {
  const foreignSite = resolveSite(foreign.site);
  const rebound = foreign.rebound
    ? ` ${capitalize(foreign.library.name)} has also re-bound that ${foreign.label} to ${describeBinding(target)} ` +
      `for good: run alone later, it queries ${describeBinding(target)}.`
    : '';
  const attributes = relatedSiteAttributes('part', foreignSite, {
    [HAZARD.PART_NAMESPACE]: foreign.binding?.namespace ?? '',
    [HAZARD.PART_ALIAS]: foreign.binding?.alias ?? '',
  });
  return {
    code: 'cross_database_query',
    severity: 'error',
    site: resolveSite(trail.site),
    message:
      `${capitalize(describeTrail(trail))} (bound to ${describeBinding(target)}) embeds a ${foreign.label} ` +
      `built at ${formatSite(foreignSite)} for ${describeBinding(foreign.binding)}, ` +
      `but it is all sent to ${describeBinding(target)}, so that part reads ${describeBinding(target)}'s tables; ` +
      `query ${describeBinding(foreign.binding)} separately and pass the values.${rebound}`,
    attributes,
  };
}
