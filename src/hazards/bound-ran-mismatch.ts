import { HAZARD } from '../attributes';
import { formatSite, resolveSite } from '../callsite';
import type { DbRole } from '../database';
import type { Trail } from '../trail';
import type { Hazard, HazardRule, QueryExecution } from './types';

/**
 * The user declared a role for the database that answered (QUERYTRAIL_DATABASES `?role=`), and the
 * server says otherwise: the configuration points at the wrong server, or a failover swapped them.
 */
export const boundRanMismatch: HazardRule = (trail, execution) => {
  const declared = execution.ran.declaredRole;
  const actual = execution.server.role;
  if (declared === undefined || actual === undefined || declared === actual) return undefined;
  return mismatch(trail, execution, declared, actual);
};

function mismatch(trail: Trail | undefined, execution: QueryExecution, declared: DbRole, actual: DbRole): Hazard {
  const site = resolveSite(trail?.site) ?? execution.executionSite();
  return {
    code: 'bound_ran_mismatch',
    severity: 'warning',
    site,
    message:
      `The query at ${formatSite(site)} ran on ${execution.ran.alias}, declared ${declared} in QUERYTRAIL_DATABASES, ` +
      `but the server says it is a ${actual} (${execution.server.roleEvidence}); ` +
      'fix the connection settings used there, or the declaration.',
    attributes: { [HAZARD.DECLARED_ROLE]: declared, [HAZARD.SERVER_ROLE]: actual },
  };
}
