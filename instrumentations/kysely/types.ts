import type { QuerytrailInstrumentationConfig } from '../../src/config';

export type KyselyInstrumentationConfig = QuerytrailInstrumentationConfig;

/**
 * A kysely query executor. Builders, the dialect, the driver and the executor keep their state in
 * `#private` fields; the adapter is the one thing an executor shows that is unique to its Kysely
 * instance (every `new Kysely()` asks its dialect for a new one).
 */
export interface KyselyExecutor {
  readonly adapter: object;
}

/** The node a builder compiles to; operation nodes are frozen plain objects named by `kind`. */
export interface KyselyNode {
  readonly kind: string;
  readonly [key: string]: unknown;
}

/** A compiled query, as handed to `executeQuery` and `stream`. */
export interface KyselyCompiledQuery {
  readonly query: KyselyNode;
  readonly queryId: object;
  readonly sql: string;
}

/** `new PostgresDialect(config)`: the pool, or a function that returns it. */
export interface KyselyPostgresDialectConfig {
  pool?: unknown;
}
