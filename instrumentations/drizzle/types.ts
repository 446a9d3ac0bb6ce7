import type { InstrumentationConfig } from '@opentelemetry/instrumentation';

export type DrizzleInstrumentationConfig = InstrumentationConfig;

/** A drizzle pg-core builder: its session holds the pg Pool or Client it will run on. */
export interface DrizzleBuilder {
  session?: { client?: unknown };
  [key: symbol]: unknown;
}
