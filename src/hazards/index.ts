import type { Trail } from '../trail';
import { boundRanMismatch } from './bound-ran-mismatch';
import { crossDatabaseQuery } from './cross-database-query';
import { crossDatabaseTransaction } from './cross-database-transaction';
import { crossRequestReuse } from './cross-request-reuse';
import { duplicateQuery } from './duplicate-query';
import { frozenParameter } from './frozen-parameter';
import { initQueryInRequest } from './init-query-in-request';
import { nPlusOne } from './n-plus-one';
import { readAfterWrite } from './read-after-write';
import type { Hazard, HazardCode, QueryExecution } from './types';
import { writeOnReplica } from './write-on-replica';

export * from './types';

/**
 * Runs every rule, in the order their hazards are reported, into `found` (the caller counts an error a rule
 * throws). One call site per rule, not a loop over an array: a loop's single call site sees ten functions
 * and inlines none, and each rule then tiers up on its own calls only, staying in baseline code (~450
 * instructions a call) for thousands of queries (none of the ten was optimised after 6 200 knex queries).
 * Called here, all ten are inlined into this function's optimised code: each rule is a guard of a few checks
 * and builds its report in a function of its own, which keeps the ten within TurboFan's inlining budget (920
 * bytes of bytecode).
 */
export function applyHazardRules(trail: Trail | undefined, execution: QueryExecution, found: Hazard[]): void {
  let hazard: Hazard | undefined;
  if ((hazard = crossDatabaseQuery(trail, execution))) found.push(hazard);
  if ((hazard = writeOnReplica(trail, execution))) found.push(hazard);
  if ((hazard = crossDatabaseTransaction(trail, execution))) found.push(hazard);
  if ((hazard = readAfterWrite(trail, execution))) found.push(hazard);
  if ((hazard = initQueryInRequest(trail, execution))) found.push(hazard);
  if ((hazard = crossRequestReuse(trail, execution))) found.push(hazard);
  if ((hazard = frozenParameter(trail, execution))) found.push(hazard);
  if ((hazard = boundRanMismatch(trail, execution))) found.push(hazard);
  if ((hazard = nPlusOne(trail, execution))) found.push(hazard);
  if ((hazard = duplicateQuery(trail, execution))) found.push(hazard);
}

/**
 * Hazards whose message names where the query object, one of its parts or its origin was built: under the
 * `lean` capture policy, one of them lacking that site turns on construction captures for a while. The
 * others name the line that ran the query (n_plus_one, duplicate_query: the loop's line).
 */
export const NAMES_QUERY_OBJECT: ReadonlySet<HazardCode> = new Set<HazardCode>([
  'init_query_in_request',
  'cross_database_query',
  'frozen_parameter',
  'bound_ran_mismatch',
  'cross_request_reuse',
]);
