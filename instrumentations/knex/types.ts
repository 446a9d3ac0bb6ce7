import type { QuerytrailInstrumentationConfig } from '../../src/config';

export type KnexInstrumentationConfig = QuerytrailInstrumentationConfig;

/** The parts of a knex Client that querytrail reads. Transaction clients share `connectionSettings`. */
export interface KnexClient {
  dialect?: string;
  connectionSettings?: { host?: string; port?: number | string; database?: string };
  [key: symbol]: unknown;
}

/** A QueryBuilder or a Raw. */
export interface KnexQueryObject {
  client: KnexClient;
  [key: symbol]: unknown;
}
