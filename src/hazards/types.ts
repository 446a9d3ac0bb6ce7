import type { Attributes } from '@opentelemetry/api';
import type { CallSite } from '../callsite';
import type { DatabaseRef, ServerFacts } from '../database';
import type { ReadFacts, ScopeLedger } from '../ledger';
import type { Phase, Scope } from '../scope';
import type { StatementInfo } from '../statement';
import type { LibraryProfile, Trail } from '../trail';

export const HAZARD_CODES = [
  'init_query_in_request',
  'cross_database_query',
  'frozen_parameter',
  'bound_ran_mismatch',
  'write_on_replica',
  'read_after_write',
  'cross_database_transaction',
  'n_plus_one',
  'duplicate_query',
  'cross_request_reuse',
] as const;
export type HazardCode = (typeof HAZARD_CODES)[number];
export type HazardSeverity = 'warning' | 'error';

export interface Hazard {
  code: HazardCode;
  severity: HazardSeverity;
  /** One sentence naming the file:line to change. */
  message: string;
  /** The site the message tells the user to change; warnings are deduplicated per (code, site). */
  site?: CallSite;
  /** Code-specific span-event attributes. */
  attributes?: Attributes;
}

/** Everything a rule may look at for one query about to run (or just finished, when facts came late). */
export interface QueryExecution {
  statement: StatementInfo;
  /** The connection the driver actually used, and what its server said. */
  ran: DatabaseRef;
  server: ServerFacts;
  /** What the query object was bound to (for raw driver calls: the same as `ran`). */
  bound: DatabaseRef;
  phase: Phase;
  scope?: Scope;
  /** Where the query runs; resolving it may capture a stack, so rules read it only once they fire. */
  executionSite(): CallSite | undefined;
  /** Values sent with the query. Rules may inspect them; nothing may keep or report them. */
  parameters: readonly unknown[] | undefined;
  /** Milliseconds since the epoch, when the query is judged. */
  now: number;
  /** What this request or job wrote and has open so far (before this query); read-only here. */
  ledger: Pick<ScopeLedger, 'writeTo' | 'transactionOnOtherDatabase'> | undefined;
  /** For a read in a request or job: its runs so far (this one included) and earlier identical reads. */
  read: ReadFacts | undefined;
  /** The library the app used: the query object's, else the driver's. */
  library: LibraryProfile;
  /** Runs of one read shape from one site, in one request or job, that make an N+1. */
  nPlusOneThreshold: number;
}

/** A hazard rule: a pure function of the query object's trail and this execution. */
export type HazardRule = (trail: Trail | undefined, execution: QueryExecution) => Hazard | undefined;
