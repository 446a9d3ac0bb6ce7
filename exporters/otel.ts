import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import {
  AggregationTemporality,
  ConsoleMetricExporter,
  InstrumentType,
  MetricReader,
  PeriodicExportingMetricReader,
  PushMetricExporter,
} from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, ConsoleSpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { durationMetricProducer } from '../src/duration-histogram';
import { exporterIoOptions, inBackground } from './unreachable';

type Env = Record<string, string | undefined>;
type Problem = (line: string) => void;

/** `otlp,console` → ['otlp', 'console'], checked against the accepted names. */
function exporterList(env: Env, name: string, accepted: string[], problem: Problem): string[] {
  const raw = env[name]?.trim();
  if (!raw) return ['otlp'];
  const names = raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  const bad = names.filter((n) => !accepted.includes(n));
  const good = names.filter((n) => accepted.includes(n));
  if (bad.length > 0) {
    const using = good.length ? good.join(',') : 'otlp';
    problem(
      `querytrail: ${name}="${raw}" names unknown ${bad.join(', ')}; accepted: ${accepted.join(', ')}; using ${using}`,
    );
  }
  return (good.length ? good : ['otlp']).filter((n) => n !== 'none');
}

/** An OTLP endpoint that is not a URL would fail every export, silently: said once at start. */
function checkEndpoint(env: Env, signal: 'TRACES' | 'METRICS', problem: Problem): void {
  for (const name of [`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`, 'OTEL_EXPORTER_OTLP_ENDPOINT']) {
    const value = env[name]?.trim();
    if (!value) continue;
    if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
      problem(`querytrail: ${name}="${value}" is not an http(s) URL; ${signal.toLowerCase()} cannot be exported`);
    }
    return;
  }
}

function checkProtocol(env: Env, signal: 'TRACES' | 'METRICS', problem: Problem): void {
  for (const name of [`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`, 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const value = env[name]?.trim();
    if (!value) continue;
    if (value !== 'http/protobuf')
      problem(`querytrail: ${name}="${value}" is not supported; accepted: http/protobuf; using http/protobuf`);
    return;
  }
}

/**
 * Spans per OTLP export, unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE says (the SDK's default is 512). A span waits
 * in the batch processor until its batch is full; querytrail makes one span a query where other
 * instrumentations make two or three, so at 512 its spans wait for 512 queries. Under an ORM that allocates
 * 30–50 KB a query, many outlive two young-generation collections and V8 promotes them to the old generation
 * (sequelize in npm run bench: 800 bytes a query at 512, 160–180 at 128), where the old generation's
 * collector and page faults cost more than the extra exports (docs/performance.md).
 */
export const SPAN_EXPORT_BATCH = 128;
const SPANS_IN_FLIGHT = 1024;

/**
 * Span processors for the standard OTEL_TRACES_EXPORTER (otlp, console, none; default otlp, as the
 * OpenTelemetry spec says). OTLP is http/protobuf; endpoint, headers and timeouts come from the usual
 * OTEL_EXPORTER_OTLP_* variables, read by the exporter itself.
 */
export function spanProcessorsFromEnv(env: Env, problem: Problem): SpanProcessor[] {
  return exporterList(env, 'OTEL_TRACES_EXPORTER', ['otlp', 'console', 'none'], problem).map((name) => {
    if (name === 'console') return new BatchSpanProcessor(new ConsoleSpanExporter());
    checkProtocol(env, 'TRACES', problem);
    checkEndpoint(env, 'TRACES', problem);
    const batch = positive(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', SPAN_EXPORT_BATCH, problem);
    // as many spans under way as two of the SDK's default batches
    const inFlight = Math.max(2, Math.ceil(SPANS_IN_FLIGHT / batch));
    const exporter = inBackground(new OTLPTraceExporter(exporterIoOptions('TRACES')), 'spans', problem, inFlight);
    return new BatchSpanProcessor(exporter, { maxExportBatchSize: batch });
  });
}

function positive(env: Env, name: string, fallback: number, problem: Problem, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (Number.isInteger(n) && n > 0 && n <= max) return n;
  const accepted = max === Number.MAX_SAFE_INTEGER ? 'a whole number above 0' : `a whole number from 1 to ${max}`;
  problem(`querytrail: ${name}="${raw}" is not valid; accepted: ${accepted}; using ${fallback}`);
  return fallback;
}

/**
 * Metric readers for OTEL_METRICS_EXPORTER (otlp, prometheus, console, none; default otlp), each given a
 * producer of querytrail's duration histogram in the temporality its exporter selects (src/duration-histogram.ts).
 */
export function metricReadersFromEnv(env: Env, problem: Problem): MetricReader[] {
  const interval = positive(env, 'OTEL_METRIC_EXPORT_INTERVAL', 60_000, problem);
  return exporterList(env, 'OTEL_METRICS_EXPORTER', ['otlp', 'prometheus', 'console', 'none'], problem).map((name) => {
    if (name === 'prometheus') {
      // Its scrape server is unref'd: it never keeps an app alive that would otherwise exit.
      return new PrometheusExporter({
        host: env.OTEL_EXPORTER_PROMETHEUS_HOST || undefined,
        port: positive(env, 'OTEL_EXPORTER_PROMETHEUS_PORT', 9464, problem, 65535),
        metricProducers: [durationMetricProducer(AggregationTemporality.CUMULATIVE)],
      });
    }
    let exporter: PushMetricExporter;
    if (name === 'console') {
      exporter = new ConsoleMetricExporter();
    } else {
      checkProtocol(env, 'METRICS', problem);
      checkEndpoint(env, 'METRICS', problem);
      exporter = inBackground(new OTLPMetricExporter(exporterIoOptions('METRICS')), 'metrics', problem);
    }
    const temporality = exporter.selectAggregationTemporality?.(InstrumentType.HISTOGRAM);
    return new PeriodicExportingMetricReader({
      exporter,
      exportIntervalMillis: interval,
      metricProducers: [durationMetricProducer(temporality)],
    });
  });
}
