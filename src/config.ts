import type { InstrumentationConfig } from '@opentelemetry/instrumentation';
import { DatabaseAlias, parseDatabaseAliases } from './database';
import { HAZARD_CODES, HazardCode } from './hazards/types';
import { FALSE_VALUES, TRUE_VALUES } from './kill-switch';

/** When querytrail pays for a stack capture (README, "Configuration"). */
export type CapturePolicy = 'auto' | 'lean' | 'all' | 'off';
export type ConsoleMode = 'warnings' | 'spans' | 'off';

/** Options every querytrail instrumentation takes, beside OpenTelemetry's `enabled`. */
export interface QuerytrailInstrumentationConfig extends InstrumentationConfig {
  /**
   * When this instrumentation pays for a stack capture: `auto`, `lean`, `all` or `off` (README).
   * @default QUERYTRAIL_CAPTURE, else `lean` (`auto` when a hazard is strict)
   */
  capture?: CapturePolicy;
}

/**
 * querytrail's settings. `capture`, `recordParameters` and `connectSpans` are the defaults of the
 * instrumentations' options of the same names (the environment fills them for the agent).
 */
export interface QuerytrailConfig {
  enabled: boolean;
  databases: DatabaseAlias[];
  /** Undefined: `lean`, or `auto` when a hazard is strict (capturePolicyOf). */
  capture?: CapturePolicy;
  /** Hazard codes that make the query reject with QueryTrailHazardError instead of running. */
  strict: ReadonlySet<HazardCode>;
  exportFile?: string;
  console: ConsoleMode;
  /** Opt-in: record parameter values as db.query.parameter.<index>. */
  recordParameters: boolean;
  /** Opt-in: a span for every new pg connection. */
  connectSpans: boolean;
  /** Console warnings per minute, all sites together; the rest are counted and summarised. */
  warningsPerMinute: number;
  /** Console warnings show the source lines around the site, with credentials masked. */
  codeFrames: boolean;
  /** How long exit and SIGTERM wait for telemetry to be flushed, at most. */
  shutdownTimeoutMs: number;
  /**
   * Runs of one read shape from one site in one request or job that make an N+1: 5 (Sentry's count), or 2
   * (Prosopite's) when n_plus_one is strict, since a test's fixtures are small. Undefined: that default.
   */
  nPlusOneThreshold?: number;
}

export const DEFAULT_CONFIG: QuerytrailConfig = Object.freeze({
  enabled: true,
  databases: [],
  strict: new Set<HazardCode>(),
  exportFile: undefined,
  console: 'warnings',
  recordParameters: false,
  connectSpans: false,
  warningsPerMinute: 20,
  codeFrames: true,
  shutdownTimeoutMs: 2000,
});

type Env = Record<string, string | undefined>;

function oneOf<T extends string>(name: string, raw: string, accepted: readonly T[]): T {
  const value = raw.trim().toLowerCase();
  if ((accepted as readonly string[]).includes(value)) return value as T;
  throw new Error(`${name}="${raw}" is not valid; accepted: ${accepted.join(', ')}`);
}

function bool(name: string, raw: string): boolean {
  const value = raw.trim().toLowerCase();
  if (TRUE_VALUES.includes(value)) return true;
  if (FALSE_VALUES.includes(value)) return false;
  throw new Error(`${name}="${raw}" is not valid; accepted: true, false (or 1, 0)`);
}

function strictCodes(name: string, raw: string): Set<HazardCode> {
  const value = raw.trim().toLowerCase();
  if (TRUE_VALUES.includes(value)) return new Set(HAZARD_CODES);
  if (FALSE_VALUES.includes(value) || value === '') return new Set();
  const codes = value
    .split(',')
    .map((c) => c.trim())
    .filter(Boolean);
  const unknown = codes.filter((c) => !(HAZARD_CODES as readonly string[]).includes(c));
  if (unknown.length)
    throw new Error(
      `${name}="${raw}" names unknown hazard ${unknown.join(', ')}; ` +
        `accepted: 1, 0 or a comma-separated list of ${HAZARD_CODES.join(', ')}`,
    );
  return new Set(codes as HazardCode[]);
}

function positiveInt(name: string, raw: string): number {
  const n = Number(raw);
  if (Number.isInteger(n) && n > 0) return n;
  throw new Error(`${name}="${raw}" is not valid; accepted: a whole number above 0`);
}

/** Each setting: its variable, how to parse it, and where it lands in the config. */
const SETTINGS: {
  [K in keyof QuerytrailConfig]?: {
    env: string;
    /** Throws for a value it rejects whole; `problem` says what it kept the rest without. */
    parse: (name: string, raw: string, problem: (line: string) => void) => QuerytrailConfig[K];
  };
} = {
  enabled: { env: 'QUERYTRAIL_ENABLED', parse: bool },
  databases: {
    env: 'QUERYTRAIL_DATABASES',
    // one bad entry is said and left out; the others are kept
    parse: (name, raw, problem) =>
      parseDatabaseAliases(raw, (message) =>
        problem(
          `querytrail: ${name}: ${message}; that entry is ignored ` +
            '(expected alias=postgres://host:port/database?role=primary|replica, comma-separated)',
        ),
      ),
  },
  capture: { env: 'QUERYTRAIL_CAPTURE', parse: (n, r) => oneOf(n, r, ['auto', 'lean', 'all', 'off'] as const) },
  strict: { env: 'QUERYTRAIL_STRICT', parse: strictCodes },
  exportFile: { env: 'QUERYTRAIL_EXPORT_FILE', parse: (_n, r) => r.trim() || undefined },
  console: { env: 'QUERYTRAIL_CONSOLE', parse: (n, r) => oneOf(n, r, ['warnings', 'spans', 'off'] as const) },
  recordParameters: { env: 'QUERYTRAIL_RECORD_PARAMETERS', parse: bool },
  connectSpans: { env: 'QUERYTRAIL_CONNECT_SPANS', parse: bool },
  warningsPerMinute: { env: 'QUERYTRAIL_WARNINGS_PER_MINUTE', parse: positiveInt },
  codeFrames: { env: 'QUERYTRAIL_CODE_FRAMES', parse: bool },
  shutdownTimeoutMs: { env: 'QUERYTRAIL_SHUTDOWN_TIMEOUT_MS', parse: positiveInt },
  nPlusOneThreshold: {
    env: 'QUERYTRAIL_N_PLUS_ONE_THRESHOLD',
    parse: (name, raw) => {
      const n = positiveInt(name, raw);
      if (n >= 2) return n;
      throw new Error(`${name}="${raw}" is not valid; accepted: a whole number of 2 or more`);
    },
  },
};

export const N_PLUS_ONE_THRESHOLD = 5;
export const STRICT_N_PLUS_ONE_THRESHOLD = 2;

/** The configured threshold, else the default for whether n_plus_one fails the query. */
export function nPlusOneThresholdOf(config: QuerytrailConfig): number {
  return (
    config.nPlusOneThreshold ?? (config.strict.has('n_plus_one') ? STRICT_N_PLUS_ONE_THRESHOLD : N_PLUS_ONE_THRESHOLD)
  );
}

/**
 * `lean` by default: constructions inside requests and jobs cost a stack capture each (more than the
 * OpenTelemetry pg instrumentation adds per query), so production captures them only after a hazard lacked
 * one. A test suite with strict hazards captures every construction: its failures name every site at once.
 */
export function capturePolicyOf(config: QuerytrailConfig): CapturePolicy {
  return config.capture ?? (config.strict.size > 0 ? 'auto' : 'lean');
}

/** The environment variable of every setting, for docs and tests. */
export const CONFIG_ENV_VARS = Object.values(SETTINGS).map((s) => s!.env);

/**
 * Reads the config from the environment. A bad value never throws: it is reported through `problem`
 * as one line naming the variable and the accepted values, and the default is kept.
 */
export function configFromEnv(env: Env, problem: (line: string) => void): QuerytrailConfig {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const [key, setting] of Object.entries(SETTINGS)) {
    const raw = env[setting!.env];
    if (raw === undefined || raw.trim() === '') continue;
    try {
      config[key] = setting!.parse(setting!.env, raw, problem);
    } catch (err) {
      problem(`querytrail: ${(err as Error).message}; using the default`);
    }
  }
  return config as unknown as QuerytrailConfig;
}

/** Programmatic options: any subset of the config; `strict` may be a boolean or a list of codes. */
export type QuerytrailOptions = Partial<Omit<QuerytrailConfig, 'strict'>> & { strict?: boolean | HazardCode[] };

export function resolveConfig(base: QuerytrailConfig, options: QuerytrailOptions = {}): QuerytrailConfig {
  const { strict, ...rest } = options;
  const config: QuerytrailConfig = { ...base, ...stripUndefined(rest) };
  if (strict !== undefined) config.strict = new Set(strict === true ? HAZARD_CODES : strict === false ? [] : strict);
  return config;
}

export function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
