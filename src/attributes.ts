/**
 * Every attribute, event and metric name of the telemetry contract (docs/telemetry.md). Semantic-convention
 * names come from `@opentelemetry/semantic-conventions`; querytrail's own keys are defined here, and only
 * here: the code, the exporters and the tests all read them from this module.
 */
import {
  ATTR_CODE_COLUMN_NUMBER,
  ATTR_CODE_FILE_PATH,
  ATTR_CODE_FUNCTION_NAME,
  ATTR_CODE_LINE_NUMBER,
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_SUMMARY,
  ATTR_DB_QUERY_TEXT,
  ATTR_DB_RESPONSE_STATUS_CODE,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_SERVER_ADDRESS,
  ATTR_SERVER_PORT,
  METRIC_DB_CLIENT_OPERATION_DURATION,
} from '@opentelemetry/semantic-conventions';

export const ATTR = {
  DB_SYSTEM_NAME: ATTR_DB_SYSTEM_NAME,
  DB_NAMESPACE: ATTR_DB_NAMESPACE,
  DB_OPERATION_NAME: ATTR_DB_OPERATION_NAME,
  DB_QUERY_TEXT: ATTR_DB_QUERY_TEXT,
  DB_QUERY_SUMMARY: ATTR_DB_QUERY_SUMMARY,
  DB_RESPONSE_STATUS_CODE: ATTR_DB_RESPONSE_STATUS_CODE,
  SERVER_ADDRESS: ATTR_SERVER_ADDRESS,
  SERVER_PORT: ATTR_SERVER_PORT,
  ERROR_TYPE: ATTR_ERROR_TYPE,
  CODE_FILE_PATH: ATTR_CODE_FILE_PATH,
  CODE_LINE_NUMBER: ATTR_CODE_LINE_NUMBER,
  CODE_COLUMN_NUMBER: ATTR_CODE_COLUMN_NUMBER,
  CODE_FUNCTION_NAME: ATTR_CODE_FUNCTION_NAME,

  LIBRARY: 'querytrail.library',
  CONSTRUCTION_FILE: 'querytrail.construction.file',
  CONSTRUCTION_LINE: 'querytrail.construction.line',
  CONSTRUCTION_COLUMN: 'querytrail.construction.column',
  CONSTRUCTION_FUNCTION: 'querytrail.construction.function',
  CONSTRUCTION_PHASE: 'querytrail.construction.phase',
  CONSTRUCTION_AGE_MS: 'querytrail.construction.age_ms',
  ORIGIN_FILE: 'querytrail.origin.file',
  ORIGIN_LINE: 'querytrail.origin.line',
  ORIGIN_COLUMN: 'querytrail.origin.column',
  ORIGIN_FUNCTION: 'querytrail.origin.function',
  ORIGIN_PHASE: 'querytrail.origin.phase',
  ORIGIN_AGE_MS: 'querytrail.origin.age_ms',
  EXECUTION_PHASE: 'querytrail.execution.phase',
  ROUTE: 'querytrail.route',
  BOUND_ADDRESS: 'querytrail.bound.address',
  BOUND_PORT: 'querytrail.bound.port',
  BOUND_NAMESPACE: 'querytrail.bound.namespace',
  BOUND_ALIAS: 'querytrail.bound.alias',
  BOUND_ROLE: 'querytrail.bound.role',
  BOUND_POOL: 'querytrail.bound.pool',
  RAN_ROLE: 'querytrail.ran.role',
  RAN_ALIAS: 'querytrail.ran.alias',
  PARTS_NAMESPACES: 'querytrail.parts.namespaces',
  /** On a request's span (or a job's): its queries, and their total duration. */
  SCOPE_QUERIES: 'querytrail.request.queries',
  SCOPE_QUERY_TIME_MS: 'querytrail.request.query_time_ms',
  /** Opt-in (recordParameters): `db.query.parameter.<index>`. */
  DB_QUERY_PARAMETER_PREFIX: 'db.query.parameter.',
} as const;

/** Keys of the `querytrail.hazard` span event. */
export const HAZARD = {
  CODE: 'querytrail.hazard.code',
  SEVERITY: 'querytrail.hazard.severity',
  MESSAGE: 'querytrail.hazard.message',
  /** The site the message tells the user to change. */
  FILE: 'querytrail.hazard.file',
  LINE: 'querytrail.hazard.line',
  AGE_MS: 'querytrail.hazard.age_ms',
  STALE_MS: 'querytrail.hazard.stale_ms',
  /** The result was kept by the query object (no query ran). */
  MEMOISED: 'querytrail.hazard.memoised',
  TABLE: 'querytrail.hazard.table',
  /** n_plus_one: runs of the shape so far; duplicate_query: reads of the same statement and values. */
  COUNT: 'querytrail.hazard.count',
  /** n_plus_one: total duration of the runs finished when it was reported. */
  TOTAL_MS: 'querytrail.hazard.total_ms',
  /** What the server will answer (write_on_replica: 25006, read-only transaction). */
  EXPECTED_SQLSTATE: 'querytrail.hazard.expected_sqlstate',
  DECLARED_ROLE: 'querytrail.hazard.declared_role',
  SERVER_ROLE: 'querytrail.hazard.server_role',
  PART_NAMESPACE: 'querytrail.hazard.part.namespace',
  PART_ALIAS: 'querytrail.hazard.part.alias',
  TRANSACTION_NAMESPACE: 'querytrail.hazard.transaction.namespace',
} as const;

/** The other site a hazard names: `querytrail.hazard.<related>.file` / `.line`. */
export type RelatedSite = 'part' | 'write' | 'transaction';
export function relatedSiteKeys(related: RelatedSite): { file: string; line: string } {
  return { file: `querytrail.hazard.${related}.file`, line: `querytrail.hazard.${related}.line` };
}

export const HAZARD_EVENT = 'querytrail.hazard';
export const HAZARD_COUNTER = 'querytrail.hazards';
/** Dimensions of the hazard counter besides `db.namespace`. */
export const HAZARD_COUNTER_CODE = 'code';
export const HAZARD_COUNTER_ROUTE = 'route';
export const DURATION_HISTOGRAM = METRIC_DB_CLIENT_OPERATION_DURATION;
/** Queries per request (dimension `route`) or job (dimension `job`). */
export const REQUEST_QUERIES_HISTOGRAM = 'querytrail.request.queries';
export const SCOPE_JOB = 'job';
export const REQUEST_QUERIES_BUCKETS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000];
/** Reads a request did not check for n_plus_one and duplicate_query (its ledger was full). */
export const UNTRACKED_READS_COUNTER = 'querytrail.untracked_reads';
/** Queries sent and not answered yet. */
export const IN_FLIGHT_GAUGE = 'querytrail.queries.in_flight';
/** Semantic-convention advice for db.client.operation.duration, in seconds. */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
