import { formatSite } from '../callsite';
import type { HazardRule } from './types';

/** A write sent to a server in recovery: PostgreSQL will answer SQLSTATE 25006 (read-only transaction). */
export const writeOnReplica: HazardRule = (_trail, execution) => {
  if (!execution.statement.isWrite || execution.server.role !== 'replica') return undefined;
  const site = execution.executionSite();
  return {
    code: 'write_on_replica',
    severity: 'error',
    site,
    message:
      `${execution.statement.summary} at ${formatSite(site)} was sent to ${execution.ran.alias}, a replica ` +
      `(${execution.server.roleEvidence}), where it fails with SQLSTATE 25006; send this write to the primary.`,
    attributes: { 'querytrail.hazard.expected_sqlstate': '25006' },
  };
};
