import { HAZARD } from '../attributes';
import { formatSite, resolveSite } from '../callsite';
import { describeExecution, relatedSiteAttributes } from './describe';
import type { WriteRecord } from '../ledger';
import type { Trail } from '../trail';
import type { Hazard, HazardRule, QueryExecution } from './types';

/**
 * In one request, a table written on the primary is then read from a replica: with replication lag,
 * the read may not see the write (the order the user just placed is missing from the page).
 */
export const readAfterWrite: HazardRule = (trail, execution) => {
  const { statement } = execution;
  const namespace = execution.ran.namespace;
  if (
    execution.phase !== 'request' ||
    statement.isWrite ||
    execution.server.role !== 'replica' ||
    statement.reads.length === 0 ||
    namespace === undefined
  )
    return undefined;
  // every table it reads: a join or sub-select of the written table is as stale as a read of it
  const write = execution.ledger?.writeTo(namespace, statement.reads);
  if (write === undefined) return undefined;
  return staleRead(trail, execution, write);
};

function staleRead(trail: Trail | undefined, execution: QueryExecution, write: WriteRecord): Hazard {
  const { statement } = execution;
  const { site, where } = describeExecution(trail, execution);
  const writeSite = resolveSite(write.site);
  const advice = trail?.library.primaryReadAdvice ?? 'read it from the primary';
  return {
    code: 'read_after_write',
    severity: 'warning',
    site,
    message:
      `${statement.summary} ${where} reads ${write.table} from ${execution.ran.alias}, ` +
      `a replica (${execution.server.roleEvidence}), ` +
      `after this request wrote it on the primary at ${formatSite(writeSite)}: ` +
      `with replication lag the read may not see the write; ${advice}.`,
    attributes: relatedSiteAttributes('write', writeSite, { [HAZARD.TABLE]: write.table }),
  };
}
