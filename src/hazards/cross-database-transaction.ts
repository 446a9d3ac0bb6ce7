import { formatSite, resolveSite } from '../callsite';
import { describeScope } from '../scope';
import { describeBinding, describeExecution, relatedSiteAttributes } from './describe';
import type { HazardRule } from './types';

/**
 * A write to database B while this request or job has a transaction open on database A: the two do not
 * commit or roll back together (a prisma `$transaction([...])` given another client's query runs it
 * outside the transaction, too).
 */
export const crossDatabaseTransaction: HazardRule = (trail, execution) => {
  const handed = trail?.transaction;
  if (handed !== undefined && handed.binding !== undefined && handed.binding !== execution.ran) {
    const { site, where } = describeExecution(trail, execution);
    const begunAt = resolveSite(handed.site);
    return {
      code: 'cross_database_transaction',
      severity: 'error',
      site,
      message:
        `${execution.statement.summary} ${where} was given to the transaction started at ${formatSite(begunAt)} on ${describeBinding(handed.binding)}, but it belongs to ${describeBinding(execution.ran)} and runs there, outside that transaction: ` +
        'it neither sees the transaction\'s writes nor rolls back with it; run it in a transaction of its own client, or move that table to one database.',
      attributes: relatedSiteAttributes('transaction', begunAt, { 'querytrail.hazard.transaction.namespace': handed.binding.namespace ?? '' }),
    };
  }
  if (!execution.statement.isWrite) return undefined;
  const open = execution.ledger?.transactionOnOtherDatabase(execution.ran);
  if (open === undefined) return undefined;
  const { site, where } = describeExecution(trail, execution);
  const begunAt = resolveSite(open.site);
  return {
    code: 'cross_database_transaction',
    severity: 'error',
    site,
    message:
      `${execution.statement.summary} ${where} writes to ${describeBinding(execution.ran)} while ${describeScope(execution.scope)} has a transaction open on ${describeBinding(open.database)} (begun at ${formatSite(begunAt)}): ` +
      'this write is not part of it, so a rollback there leaves it in place and a failure here leaves that one committed; write to one database per transaction, or make this step idempotent and run it after the commit.',
    attributes: relatedSiteAttributes('transaction', begunAt, { 'querytrail.hazard.transaction.namespace': open.database.namespace ?? '' }),
  };
};
