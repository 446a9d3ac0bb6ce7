/** querytrail's programmatic API: for apps that run their own NodeSDK instead of `--require querytrail/agent`. */
import { ConsoleWarnings } from '../exporters/console';
import type { QuerytrailOptions } from './config';
import { configureRuntime, Runtime } from './runtime';

export * from '../instrumentations';
export type { QuerytrailInstrumentationConfig } from './config';
export { durationMetricProducer } from './duration-histogram';
export type { DurationHistogramProducer } from './duration-histogram';
export { JsonLinesSpanProcessor } from '../exporters/jsonl';
export { ConsoleSpanProcessor, ConsoleWarnings } from '../exporters/console';
export { QueryTrailHazardError } from './report';
export { currentScope } from './scope';
export { runInJob } from './job';
export type { Phase, Scope } from './scope';
export type { Hazard, HazardCode, HazardSeverity } from './hazards/types';
export { HAZARD_CODES } from './hazards/types';
export type { QuerytrailConfig, QuerytrailOptions, CapturePolicy } from './config';
export { ATTR, HAZARD, HAZARD_EVENT, HAZARD_COUNTER } from './attributes';
export { VERSION } from './version';

/**
 * Configures querytrail (options over QUERYTRAIL_* variables) before you create its instrumentations.
 * Readable hazard warnings go to stderr unless `console: 'off'`.
 */
export function configureQuerytrail(options: QuerytrailOptions = {}): Runtime {
  return configureRuntime(options, (config) =>
    config.console === 'off' ? undefined : new ConsoleWarnings(undefined, config.codeFrames),
  );
}
