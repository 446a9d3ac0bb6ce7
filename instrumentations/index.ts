/**
 * Every instrumentation the agent enables, one entry per library, by the name that
 * OTEL_NODE_DISABLED_INSTRUMENTATIONS uses to turn it off. querytrail's request scope
 * (HttpScopeInstrumentation) is not listed: it is always on.
 */
import type { Instrumentation } from '@opentelemetry/instrumentation';
import { DrizzleInstrumentation } from './drizzle/instrumentation';
import { KnexInstrumentation } from './knex/instrumentation';
import { KyselyInstrumentation } from './kysely/instrumentation';
import { PgInstrumentation } from './pg/instrumentation';
import { PrismaInstrumentation } from './prisma/instrumentation';
import { SequelizeInstrumentation } from './sequelize/instrumentation';
import { TypeormInstrumentation } from './typeorm/instrumentation';

export interface InstrumentationEntry {
  readonly name: string;
  /** Options come from the environment (QUERYTRAIL_*), through each instrumentation's defaults. */
  create(): Instrumentation;
}

export const INSTRUMENTATIONS: readonly InstrumentationEntry[] = [
  { name: 'pg', create: () => new PgInstrumentation() },
  { name: 'knex', create: () => new KnexInstrumentation() },
  { name: 'drizzle', create: () => new DrizzleInstrumentation() },
  { name: 'kysely', create: () => new KyselyInstrumentation() },
  { name: 'sequelize', create: () => new SequelizeInstrumentation() },
  { name: 'typeorm', create: () => new TypeormInstrumentation() },
  { name: 'prisma', create: () => new PrismaInstrumentation() },
  // OpenTelemetry's own, for the request spans that query spans sit under; loaded only when enabled
  { name: 'http', create: () => new (require('@opentelemetry/instrumentation-http').HttpInstrumentation)() },
  { name: 'express', create: () => new (require('@opentelemetry/instrumentation-express').ExpressInstrumentation)() },
];

export { DrizzleInstrumentation } from './drizzle/instrumentation';
export type { DrizzleInstrumentationConfig } from './drizzle/types';
export { HttpScopeInstrumentation } from './http/instrumentation';
export { KnexInstrumentation } from './knex/instrumentation';
export type { KnexInstrumentationConfig } from './knex/types';
export { KyselyInstrumentation } from './kysely/instrumentation';
export type { KyselyInstrumentationConfig } from './kysely/types';
export { PgInstrumentation } from './pg/instrumentation';
export type { PgInstrumentationConfig } from './pg/types';
export { PrismaInstrumentation } from './prisma/instrumentation';
export type { PrismaInstrumentationConfig } from './prisma/types';
export { SequelizeInstrumentation } from './sequelize/instrumentation';
export type { SequelizeInstrumentationConfig } from './sequelize/types';
export { TypeormInstrumentation } from './typeorm/instrumentation';
export type { TypeormInstrumentationConfig } from './typeorm/types';
