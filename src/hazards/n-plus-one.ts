import { HAZARD } from '../attributes';
import { formatSite } from '../callsite';
import { describeScope } from '../scope';
import { describeBinding } from './describe';
import type { ReadGroup } from '../ledger';
import type { Hazard, HazardRule, QueryExecution } from './types';

/**
 * In one request or job, the same read shape runs from the same line on the same database again and
 * again with other values: a lookup per row. Counted per (shape, site, database) whether the runs are
 * sequential, interleaved or concurrent (`Promise.all`), so a fan-out is caught too; one batched
 * `IN (…)` query is one run, and the same loop over two shards is two groups.
 */
export const nPlusOne: HazardRule = (_trail, execution) => {
  const group = execution.read?.group;
  if (
    group === undefined ||
    group.reported ||
    group.runs < execution.nPlusOneThreshold ||
    group.distinctRuns < 2 // the same values every time is duplicate_query's case
  )
    return undefined;
  return perRow(execution, group);
};

function perRow(execution: QueryExecution, group: ReadGroup): Hazard {
  const advice = execution.library.batchAdvice ?? 'fetch the rows in one query';
  const finished = group.finishedRuns ? `; ${group.finishedRuns} finished in ${group.finishedMs.toFixed(1)} ms` : '';
  return {
    code: 'n_plus_one',
    severity: 'warning',
    site: group.site,
    message:
      `${group.statement.summary} ran ${group.runs} times from ${formatSite(group.site)} in ` +
      `${describeScope(execution.scope)} on ${describeBinding(group.database)}, with ${group.distinctRuns} ` +
      `different values${finished}: a potential N+1 (a query per row); ${advice}.`,
    attributes: { [HAZARD.COUNT]: group.runs, [HAZARD.TOTAL_MS]: group.finishedMs },
  };
}
