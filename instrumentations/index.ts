/**
 * Every instrumentation the agent enables, one entry per library, by the name that
 * OTEL_NODE_DISABLED_INSTRUMENTATIONS uses to turn it off. querytrail's request scope
 * (HttpScopeInstrumentation) is not listed: it is always on.
 */
import type { InstrumentationBase, InstrumentationConfig } from '@opentelemetry/instrumentation';
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
  create(config?: InstrumentationConfig): InstrumentationBase;
}

export const INSTRUMENTATIONS: readonly InstrumentationEntry[] = [
  { name: 'pg', create: (config) => new PgInstrumentation(config) },
  { name: 'knex', create: (config) => new KnexInstrumentation(config) },
  { name: 'drizzle', create: (config) => new DrizzleInstrumentation(config) },
  { name: 'kysely', create: (config) => new KyselyInstrumentation(config) },
  { name: 'sequelize', create: (config) => new SequelizeInstrumentation(config) },
  { name: 'typeorm', create: (config) => new TypeormInstrumentation(config) },
  { name: 'prisma', create: (config) => new PrismaInstrumentation(config) },
  // OpenTelemetry's own, for the request spans that query spans sit under; loaded only when enabled
  {
    name: 'http',
    create: (config) => new (require('@opentelemetry/instrumentation-http').HttpInstrumentation)(config),
  },
  {
    name: 'express',
    create: (config) => new (require('@opentelemetry/instrumentation-express').ExpressInstrumentation)(config),
  },
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
