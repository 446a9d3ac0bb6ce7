import { boundRanMismatch } from './bound-ran-mismatch';
import { crossDatabaseQuery } from './cross-database-query';
import { crossDatabaseTransaction } from './cross-database-transaction';
import { crossRequestReuse } from './cross-request-reuse';
import { duplicateQuery } from './duplicate-query';
import { frozenParameter } from './frozen-parameter';
import { initQueryInRequest } from './init-query-in-request';
import { nPlusOne } from './n-plus-one';
import { readAfterWrite } from './read-after-write';
import type { HazardRule } from './types';
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
