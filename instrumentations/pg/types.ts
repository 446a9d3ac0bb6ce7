import type { QuerytrailInstrumentationConfig } from '../../src/config';

export interface PgInstrumentationConfig extends QuerytrailInstrumentationConfig {
  /**
   * A span for every new connection.
   * @default QUERYTRAIL_CONNECT_SPANS, else false
   */
  connectSpans?: boolean;
  /**
   * Record parameter values as `db.query.parameter.<index>` (they can be personal data).
   * @default QUERYTRAIL_RECORD_PARAMETERS, else false
   */
  recordParameters?: boolean;
}

/** The parts of pg's Client that querytrail reads; pg's own types are not a runtime dependency. */
export interface PgClient {
  connectionParameters?: { host?: string; port?: number | string; database?: string };
  connection?: PgConnection;
  _Promise?: PromiseConstructor;
  [key: symbol]: unknown;
}

export interface PgConnection {
  on(event: 'parameterStatus', listener: (msg: { parameterName: string; parameterValue: string }) => void): unknown;
  once(event: 'readyForQuery', listener: () => void): unknown;
}

/** A Query object or custom submittable (pg-cursor, pg-query-stream). */
export interface PgSubmittable {
  submit: Function;
  text?: string;
  values?: unknown[];
  cursor?: { text?: string; values?: unknown[] };
  handleError(err: unknown, connection?: unknown): void;
  handleReadyForQuery(connection?: unknown): void;
}

export type PgCallback = (err: unknown, result?: unknown) => void;
