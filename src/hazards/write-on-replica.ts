import { HAZARD } from '../attributes';
import { describeExecution } from './describe';
import type { Trail } from '../trail';
import type { Hazard, HazardRule, QueryExecution } from './types';

/** A write sent to a server in recovery: PostgreSQL will answer SQLSTATE 25006 (read-only transaction). */
export const writeOnReplica: HazardRule = (trail, execution) => {
  if (!execution.statement.isWrite || execution.server.role !== 'replica') return undefined;
  return writeOnRecovery(trail, execution);
};

function writeOnRecovery(trail: Trail | undefined, execution: QueryExecution): Hazard {
  const { site, where } = describeExecution(trail, execution);
  return {
    code: 'write_on_replica',
    severity: 'error',
    site,
    message:
      `${execution.statement.summary} ${where} was sent to ${execution.ran.alias}, a replica ` +
      `(${execution.server.roleEvidence}), where it fails with SQLSTATE 25006; send this write to the primary.`,
    attributes: { [HAZARD.EXPECTED_SQLSTATE]: '25006' },
  };
}
