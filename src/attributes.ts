/** Attribute and event names of the telemetry contract (docs/telemetry.md). */
export const ATTR = {
  DB_SYSTEM_NAME: 'db.system.name',
  DB_NAMESPACE: 'db.namespace',
  DB_OPERATION_NAME: 'db.operation.name',
  DB_COLLECTION_NAME: 'db.collection.name',
  DB_QUERY_TEXT: 'db.query.text',
  DB_QUERY_SUMMARY: 'db.query.summary',
  DB_RESPONSE_STATUS_CODE: 'db.response.status_code',
  SERVER_ADDRESS: 'server.address',
  SERVER_PORT: 'server.port',
  ERROR_TYPE: 'error.type',
  CODE_FILE_PATH: 'code.file.path',
  CODE_LINE_NUMBER: 'code.line.number',
  CODE_COLUMN_NUMBER: 'code.column.number',
  CODE_FUNCTION_NAME: 'code.function.name',

  LIBRARY: 'querytrail.library',
  CONSTRUCTION_FILE: 'querytrail.construction.file',
  CONSTRUCTION_LINE: 'querytrail.construction.line',
  CONSTRUCTION_COLUMN: 'querytrail.construction.column',
  CONSTRUCTION_FUNCTION: 'querytrail.construction.function',
  CONSTRUCTION_PHASE: 'querytrail.construction.phase',
  CONSTRUCTION_AGE_MS: 'querytrail.construction.age_ms',
  EXECUTION_PHASE: 'querytrail.execution.phase',
  ROUTE: 'querytrail.route',
  BOUND_ADDRESS: 'querytrail.bound.address',
  BOUND_PORT: 'querytrail.bound.port',
  BOUND_NAMESPACE: 'querytrail.bound.namespace',
  BOUND_ALIAS: 'querytrail.bound.alias',
  BOUND_ROLE: 'querytrail.bound.role',
  BOUND_POOL: 'querytrail.bound.pool',
  RAN_ADDRESS: 'querytrail.ran.address',
  RAN_PORT: 'querytrail.ran.port',
  RAN_NAMESPACE: 'querytrail.ran.namespace',
  RAN_ROLE: 'querytrail.ran.role',
  RAN_ALIAS: 'querytrail.ran.alias',
  PARTS_NAMESPACES: 'querytrail.parts.namespaces',

  HAZARD_CODE: 'querytrail.hazard.code',
  HAZARD_SEVERITY: 'querytrail.hazard.severity',
  HAZARD_MESSAGE: 'querytrail.hazard.message',
} as const;

export const HAZARD_EVENT = 'querytrail.hazard';
export const HAZARD_COUNTER = 'querytrail.hazards';
export const DURATION_HISTOGRAM = 'db.client.operation.duration';
/** Semantic-convention advice for db.client.operation.duration, in seconds. */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10];
