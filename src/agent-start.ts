/** The agent proper (src/agent.ts loads it unless QUERYTRAIL_ENABLED=false). */
import { diag, DiagConsoleLogger, DiagLogLevel, metrics } from '@opentelemetry/api';
import { Instrumentation, registerInstrumentations } from '@opentelemetry/instrumentation';
import { detectResources, envDetector, hostDetector, processDetector } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import { SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ConsoleSpanProcessor } from '../exporters/console';
import { JsonLinesSpanProcessor } from '../exporters/jsonl';
import { metricReadersFromEnv, spanProcessorsFromEnv } from '../exporters/otel';
import { HttpScopeInstrumentation, INSTRUMENTATIONS } from '../instrumentations';
import { configureQuerytrail } from './index';

const problem = (line: string) => process.stderr.write(`${line}\n`);

export interface Agent {
  shutdown(): Promise<void>;
}

/** Starts OpenTelemetry with querytrail's instrumentations and the HTTP/express ones. */
export function start(): Agent | undefined {
  const env = process.env;
  const runtime = configureQuerytrail();
  if (!runtime.config.enabled) return undefined;
  const logLevel = env.OTEL_LOG_LEVEL?.trim();
  if (logLevel) {
    const level = DiagLogLevel[logLevel.toUpperCase() as keyof typeof DiagLogLevel];
    if (level === undefined) {
      const accepted = Object.keys(DiagLogLevel).filter((k) => Number.isNaN(Number(k)));
      problem(`querytrail: OTEL_LOG_LEVEL="${logLevel}" is not valid; accepted: ${accepted.join(', ')}; using INFO`);
    }
    diag.setLogger(new DiagConsoleLogger(), level ?? DiagLogLevel.INFO);
  }
  checkResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES);

  const resource = detectResources({ detectors: [envDetector, processDetector, hostDetector] });
  const spanProcessors: SpanProcessor[] = spanProcessorsFromEnv(env, problem);
  if (runtime.config.exportFile) spanProcessors.push(new JsonLinesSpanProcessor(runtime.config.exportFile));
  if (runtime.config.console === 'spans') spanProcessors.push(new ConsoleSpanProcessor());
  const tracerProvider = new NodeTracerProvider({ resource, spanProcessors });
  tracerProvider.register();
  const meterProvider = new MeterProvider({ resource, readers: metricReadersFromEnv(env, problem) });
  metrics.setGlobalMeterProvider(meterProvider);

  // querytrail's HTTP scope first: its emit wrapper then runs inside the OTel HTTP span's context.
  const disabled = new Set((env.OTEL_NODE_DISABLED_INSTRUMENTATIONS ?? '').split(',').map((s) => s.trim()));
  const instrumentations: Instrumentation[] = [
    new HttpScopeInstrumentation(),
    ...INSTRUMENTATIONS.filter((entry) => !disabled.has(entry.name)).map((entry) => entry.create()),
  ];
  registerInstrumentations({ instrumentations, tracerProvider, meterProvider });

  let stopping: Promise<void> | undefined;
  const shutdown = () =>
    (stopping ??= Promise.allSettled([tracerProvider.shutdown(), meterProvider.shutdown()]).then(() => undefined));
  // The flush at exit is bounded: a collector that is down or slow must not hold the app's exit.
  const bound = runtime.config.shutdownTimeoutMs;
  const notFlushed = () =>
    problem(
      `querytrail: telemetry was not flushed within ${bound} ms (QUERYTRAIL_SHUTDOWN_TIMEOUT_MS): ` +
        'the collector did not answer in time, and what was left is dropped',
    );
  process.once('beforeExit', () => {
    // beforeExit: the app was done. Past the bound, exporters' sockets and retry timers do not keep it alive.
    const deadline = setTimeout(() => {
      notFlushed();
      process.exit();
    }, bound);
    void shutdown().finally(() => clearTimeout(deadline));
  });
  process.once('SIGTERM', () => {
    // Our listener replaced Node's default (exit); restore it once flushed, unless the app has its own.
    const appHandlesIt = process.listenerCount('SIGTERM') > 0;
    let deadline: NodeJS.Timeout | undefined;
    const bounded = new Promise<void>((resolve) => (deadline = setTimeout(resolve, bound)));
    void Promise.race([shutdown().then(() => true), bounded.then(() => false)]).then((flushed) => {
      if (!flushed) notFlushed();
      clearTimeout(deadline);
      if (!appHandlesIt) process.kill(process.pid, 'SIGTERM');
    });
  });
  return { shutdown };
}

/**
 * OTEL_RESOURCE_ATTRIBUTES is `key=value,key=value` (values percent-encoded): the SDK drops a malformed
 * list in the diag log only. The entries it keeps are its business; the line says which ones it drops.
 */
function checkResourceAttributes(raw: string | undefined): void {
  if (!raw?.trim()) return;
  const bad = raw
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => {
      const eq = entry.indexOf('=');
      if (eq <= 0) return true;
      try {
        decodeURIComponent(entry.slice(eq + 1));
        return false;
      } catch {
        return true;
      }
    });
  if (bad.length) {
    problem(
      `querytrail: OTEL_RESOURCE_ATTRIBUTES has entries that are not key=value: ${bad.map((b) => `"${b}"`).join(', ')}`,
    );
  }
}
