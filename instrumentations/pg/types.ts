import type { InstrumentationConfig } from '@opentelemetry/instrumentation';

export type PgInstrumentationConfig = InstrumentationConfig;

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
