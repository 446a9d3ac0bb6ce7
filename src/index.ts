/** querytrail's programmatic API: for apps that run their own NodeSDK instead of `--require querytrail/agent`. */
import { ConsoleWarnings } from '../exporters/console';
import type { QuerytrailOptions } from './config';
import { configureRuntime, Runtime } from './runtime';

export { PgInstrumentation } from '../instrumentations/pg/instrumentation';
export type { PgInstrumentationConfig } from '../instrumentations/pg/types';
export { DrizzleInstrumentation } from '../instrumentations/drizzle/instrumentation';
export type { DrizzleInstrumentationConfig } from '../instrumentations/drizzle/types';
export { KnexInstrumentation } from '../instrumentations/knex/instrumentation';
export type { KnexInstrumentationConfig } from '../instrumentations/knex/types';
export { KyselyInstrumentation } from '../instrumentations/kysely/instrumentation';
export type { KyselyInstrumentationConfig } from '../instrumentations/kysely/types';
export { SequelizeInstrumentation } from '../instrumentations/sequelize/instrumentation';
export type { SequelizeInstrumentationConfig } from '../instrumentations/sequelize/types';
export { PrismaInstrumentation } from '../instrumentations/prisma/instrumentation';
export type { PrismaInstrumentationConfig } from '../instrumentations/prisma/types';
export { TypeormInstrumentation } from '../instrumentations/typeorm/instrumentation';
export type { TypeormInstrumentationConfig } from '../instrumentations/typeorm/types';
export { HttpScopeInstrumentation } from '../instrumentations/http/instrumentation';
export { JsonLinesSpanProcessor } from '../exporters/jsonl';
export { ConsoleSpanProcessor, ConsoleWarnings } from '../exporters/console';
export { QueryTrailHazardError } from './report';
export { runInJob, currentScope } from './scope';
export type { Phase, Scope } from './scope';
export type { Hazard, HazardCode, HazardSeverity } from './hazards/types';
export { HAZARD_CODES } from './hazards/types';
export type { QuerytrailConfig, QuerytrailOptions, CapturePolicy } from './config';
export { ATTR } from './attributes';
export { VERSION } from './version';

/**
 * Configures querytrail (options over QUERYTRAIL_* variables) before you create its instrumentations.
 * Readable hazard warnings go to stderr unless `console: 'off'`.
 */
export function configureQuerytrail(options: QuerytrailOptions = {}): Runtime {
  return configureRuntime(options, (config) => (config.console === 'off' ? undefined : new ConsoleWarnings()));
}
