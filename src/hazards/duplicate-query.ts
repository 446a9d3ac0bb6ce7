import { HAZARD } from '../attributes';
import { formatSite, sameLine } from '../callsite';
import { describeScope } from '../scope';
import { describeExecution } from './describe';
import type { RepeatedRead } from '../ledger';
import type { Trail } from '../trail';
import type { Hazard, HazardRule, QueryExecution } from './types';

/**
 * In one request or job, the same statement with the same values is read again with no write to its
 * tables in between: the second read returns what the first one did. Reported on the second read;
 * values are compared through a hash kept for the request's lifetime. A repeat from the line of a lookup
 * loop over rows (other values too) is that loop's N+1, and the same fix: it is left to n_plus_one.
 */
export const duplicateQuery: HazardRule = (trail, execution) => {
  const read = execution.read;
  const repeated = read?.repeated;
  if (repeated === undefined || repeated.count !== 2) return undefined;
  const sameLoop = sameLine(repeated.firstSite, read!.group.site) && read!.group.distinctRuns > 1;
  if (sameLoop) return undefined;
  return duplicate(trail, execution, repeated);
};

function duplicate(trail: Trail | undefined, execution: QueryExecution, repeated: RepeatedRead): Hazard {
  const { statement } = execution;
  const { site, where } = describeExecution(trail, execution);
  const first = sameLine(repeated.firstSite, site) ? 'the same line' : formatSite(repeated.firstSite);
  return {
    code: 'duplicate_query',
    severity: 'warning',
    site,
    message:
      `${statement.summary} ${where} reads again what ${first} already read in ${describeScope(execution.scope)}: ` +
      `the same statement with the same values, and no write to ${statement.reads.join(', ')} in between; ` +
      `reuse the first result (pass it along, or keep it for the request).`,
    attributes: { [HAZARD.COUNT]: repeated.count },
  };
}
