import { configFromEnv, QuerytrailConfig, QuerytrailOptions, resolveConfig } from './config';
import { DatabaseRegistry } from './database';
import { SiteCapture } from './site-capture';
import { WarningLog, WarningSink } from './report';
import { loadPostgresParser } from './statement';

/** State every instrumentation shares: the config, the database registry, learned sites, the warning log. */
export interface Runtime {
  readonly config: QuerytrailConfig;
  readonly databases: DatabaseRegistry;
  readonly sites: SiteCapture;
  readonly warnings: WarningLog | undefined;
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
  const sink = warningSink?.(config);
  current = {
    config,
    databases: new DatabaseRegistry(config.databases),
    sites: new SiteCapture(config.capture),
    warnings: sink ? new WarningLog(sink, config.warningsPerMinute) : undefined,
  };
  void loadPostgresParser();
  return current;
}

export function getRuntime(): Runtime {
  return current ?? configureRuntime();
}
