import type { QuerytrailInstrumentationConfig } from '../../src/config';

export type DrizzleInstrumentationConfig = QuerytrailInstrumentationConfig;

/** A drizzle pg-core builder: its session holds the pg Pool or Client it will run on. */
export interface DrizzleBuilder {
  session?: { client?: unknown };
  [key: symbol]: unknown;
}
