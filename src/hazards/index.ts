import { boundRanMismatch } from './bound-ran-mismatch';
import { crossDatabaseQuery } from './cross-database-query';
import { crossDatabaseTransaction } from './cross-database-transaction';
import { crossRequestReuse } from './cross-request-reuse';
import { duplicateQuery } from './duplicate-query';
import { frozenParameter } from './frozen-parameter';
import { initQueryInRequest } from './init-query-in-request';
import { nPlusOne } from './n-plus-one';
import { readAfterWrite } from './read-after-write';
import type { HazardCode, HazardRule } from './types';
import { writeOnReplica } from './write-on-replica';

export * from './types';

/** Every rule, in the order their hazards are reported. */
export const HAZARD_RULES: readonly HazardRule[] = [
  crossDatabaseQuery,
  writeOnReplica,
  crossDatabaseTransaction,
  readAfterWrite,
  initQueryInRequest,
  crossRequestReuse,
  frozenParameter,
  boundRanMismatch,
  nPlusOne,
  duplicateQuery,
];

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
