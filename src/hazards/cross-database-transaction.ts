import { HAZARD } from '../attributes';
import { formatSite, resolveSite, SiteRef } from '../callsite';
import type { DatabaseRef } from '../database';
import { describeScope } from '../scope';
import { describeBinding, describeExecution, relatedSiteAttributes } from './describe';
import type { OpenTransaction } from '../ledger';
import type { Trail } from '../trail';
import type { Hazard, HazardRule, QueryExecution } from './types';

/**
 * A write to database B while this request or job has a transaction open on database A: the two do not
 * commit or roll back together. Or a query the app handed to a transaction on another database (a prisma
 * `$transaction([...])` given another client's query), which the library runs outside it, read or write.
 */
export const crossDatabaseTransaction: HazardRule = (trail, execution) => {
  const handed = trail?.transaction;
  if (handed?.binding !== undefined && handed.binding !== execution.ran) {
    return handedToAnother(trail, execution, handed.binding, handed.site);
  }
  if (!execution.statement.isWrite) return undefined;
  const open = execution.ledger?.transactionOnOtherDatabase(execution.ran);
  if (open === undefined) return undefined;
  return writtenOutside(trail, execution, open);
};

function handedToAnother(
  trail: Trail | undefined,
  execution: QueryExecution,
  transactionOn: DatabaseRef,
  begunAt: SiteRef | undefined,
): Hazard {
  return hazard(
    trail,
    execution,
    transactionOn,
    begunAt,
    (what, begunAtText) =>
      `${what} was given to the transaction started at ${begunAtText} on ${describeBinding(transactionOn)}, ` +
      `but it belongs to ${describeBinding(execution.ran)} and runs there, outside that transaction: ` +
      "it neither sees the transaction's writes nor rolls back with it; " +
      'run it in a transaction of its own client, or move that table to one database.',
  );
}

function writtenOutside(trail: Trail | undefined, execution: QueryExecution, open: OpenTransaction): Hazard {
  return hazard(
    trail,
    execution,
    open.database,
    open.site,
    (what, begunAt) =>
      `${what} writes to ${describeBinding(execution.ran)} while ${describeScope(execution.scope)} ` +
      `has a transaction open on ${describeBinding(open.database)} (begun at ${begunAt}): ` +
      'this write is not part of it, so a rollback there leaves it in place and a failure here leaves that one ' +
      'committed; write to one database per transaction, or make this step idempotent and run it after the commit.',
  );
}

function hazard(
  trail: Trail | undefined,
  execution: QueryExecution,
  transactionOn: DatabaseRef,
  begunAtRef: SiteRef | undefined,
  message: (what: string, begunAt: string) => string,
): Hazard {
  const { site, where } = describeExecution(trail, execution);
  const begunAt = resolveSite(begunAtRef);
  return {
    code: 'cross_database_transaction',
    severity: 'error',
    site,
    message: message(`${execution.statement.summary} ${where}`, formatSite(begunAt)),
    attributes: relatedSiteAttributes('transaction', begunAt, {
      [HAZARD.TRANSACTION_NAMESPACE]: transactionOn.namespace ?? '',
    }),
  };
}
