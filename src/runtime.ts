import { Meter, MeterProvider, metrics } from '@opentelemetry/api';
import { watchCompiledSources } from './compiled-sources';
import { configFromEnv, nPlusOneThresholdOf, QuerytrailConfig, QuerytrailOptions, resolveConfig } from './config';
import { DatabaseRegistry } from './database';
import { QueryTracker } from './query-tracker';
import { HazardPipeline, WarningLog, WarningSink } from './report';
import { SiteCapture } from './site-capture';
import { loadPostgresParser } from './statement';
import { VERSION } from './version';

/**
 * State every instrumentation shares: the config, the database registry, learned sites, the hazard
 * pipeline and the query tracker, with one meter for querytrail's metrics.
 */
export class Runtime {
  readonly databases: DatabaseRegistry;
  readonly sites = new SiteCapture();
  readonly hazards: HazardPipeline;
  readonly tracker: QueryTracker;
  private meterProvider: MeterProvider | undefined;

  constructor(
    readonly config: QuerytrailConfig,
    sink: WarningSink | undefined,
  ) {
    this.databases = new DatabaseRegistry(config.databases);
    this.hazards = new HazardPipeline(sink ? new WarningLog(sink, config.warningsPerMinute) : undefined, config.strict);
    this.tracker = new QueryTracker(this.sites, this.hazards, nPlusOneThresholdOf(config));
    this.useMeterProvider(metrics.getMeterProvider());
  }

  /** Instrumentations pass on the meter provider they are given; every one of them is given the same. */
  useMeterProvider(provider: MeterProvider): void {
    if (provider === this.meterProvider) return;
    this.meterProvider = provider;
    const meter: Meter = provider.getMeter('querytrail', VERSION);
    this.hazards.useMeter(meter);
    this.tracker.useMeter(meter);
  }
}

let current: Runtime | undefined;

/**
 * Sets the shared state. The agent calls it once; programmatic users may call it before creating the
 * instrumentations (otherwise the config comes from the environment on first use).
 */
export function configureRuntime(
  options: QuerytrailOptions = {},
  warningSink?: (config: QuerytrailConfig) => WarningSink | undefined,
): Runtime {
  const config = resolveConfig(
    configFromEnv(process.env, (line) => process.stderr.write(`${line}\n`)),
    options,
  );
  current = new Runtime(config, warningSink?.(config));
  watchCompiledSources();
  void loadPostgresParser();
  return current;
}

export function getRuntime(): Runtime {
  return current ?? configureRuntime();
}
