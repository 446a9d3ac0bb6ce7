import type { QuerytrailInstrumentationConfig } from '../../src/config';

export type DrizzleInstrumentationConfig = QuerytrailInstrumentationConfig;

/** A drizzle pg-core builder: its session holds the pg Pool or Client it will run on. */
export interface DrizzleBuilder {
  session?: { client?: unknown };
  /** A prepared query's result cache settings (drizzle ≥ 0.44), when caching is enabled for it. */
  cacheConfig?: unknown;
  [key: symbol]: unknown;
}
