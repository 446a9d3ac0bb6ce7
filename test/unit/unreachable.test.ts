// The OTLP exporters' wrapper: a collector that never answers holds at most two exports; the rest are
// dropped at once and counted.
import { metrics } from '@opentelemetry/api';
import { ExportResult, ExportResultCode } from '@opentelemetry/core';
import {
  AggregationTemporality,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { DROPPED_COUNTER, inBackground } from '../../exporters/unreachable';

describe('exports in the background', () => {
  it('keeps two exports under way at most, and counts what it drops', async () => {
    const reader = new PeriodicExportingMetricReader({
      exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE),
      exportIntervalMillis: 3_600_000,
    });
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
    const received: string[][] = [];
    // never calls back
    const blackHole = { export: (items: string[], _done: (r: ExportResult) => void) => void received.push(items) };
    const lines: string[] = [];
    const exporter = inBackground(blackHole, 'spans', (line) => lines.push(line));
    const results: ExportResult[] = [];
    for (let i = 0; i < 5; i++) exporter.export(['a', 'b', 'c'], (r) => results.push(r));
    expect(received).toHaveLength(2); // the collector was handed two batches; the SDK was answered at once
    expect(results.map((r) => r.code)).toEqual([
      ExportResultCode.SUCCESS,
      ExportResultCode.SUCCESS,
      ExportResultCode.FAILED,
      ExportResultCode.FAILED,
      ExportResultCode.FAILED,
    ]);
    const { resourceMetrics } = await reader.collect();
    const dropped = resourceMetrics.scopeMetrics
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === DROPPED_COUNTER)!;
    expect(dropped.dataPoints).toEqual([expect.objectContaining({ attributes: { signal: 'spans' }, value: 9 })]);
    expect(lines).toEqual([]); // nothing failed yet: it is only slow
    metrics.disable();
  });

  it('lets as many exports under way as it is told (the agent: smaller span batches, more of them)', () => {
    const received: string[][] = [];
    const blackHole = { export: (items: string[], _done: (r: ExportResult) => void) => void received.push(items) };
    const exporter = inBackground(blackHole, 'spans', () => undefined, 8);
    for (let i = 0; i < 10; i++) exporter.export(['a'], () => undefined);
    expect(received).toHaveLength(8);
  });
});
