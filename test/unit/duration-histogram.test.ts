// querytrail's own aggregation of the duration histogram gives the points the SDK's histogram gives.
import { Attributes } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  HistogramMetricData,
  MeterProvider,
  MetricReader,
  ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { DURATION_BUCKETS, DURATION_HISTOGRAM } from '../../src/attributes';
import { DURATION_DESCRIPTION, DurationHistogramProducer } from '../../src/duration-histogram';
import { VERSION } from '../../src/version';

class ReaderOf extends MetricReader {
  constructor(temporality: AggregationTemporality) {
    super({ aggregationTemporalitySelector: () => temporality });
  }
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

function histogramOf(result: ResourceMetrics): HistogramMetricData | undefined {
  const metric = result.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === DURATION_HISTOGRAM);
  return metric as HistogramMetricData | undefined;
}

/** The points without their times, in a stable order. */
function points(metric: HistogramMetricData | undefined) {
  return (metric?.dataPoints ?? [])
    .map((p) => ({ attributes: p.attributes, value: p.value }))
    .sort((a, b) => JSON.stringify(a.attributes).localeCompare(JSON.stringify(b.attributes)));
}

const select: Attributes = { 'db.namespace': 'app', 'db.operation.name': 'SELECT', 'querytrail.ran.role': 'primary' };
const failed: Attributes = { ...select, 'error.type': '57014' };
// every bucket, both sides of a boundary, the boundaries themselves
const durations = [0, 0.0005, 0.001, 0.0011, 0.004, 0.005, 0.02, 0.05, 0.07, 0.1, 0.3, 0.5, 1, 2, 5, 10, 12];

describe.each([AggregationTemporality.CUMULATIVE, AggregationTemporality.DELTA])('temporality %s', (temporality) => {
  it("gives the SDK histogram's points over two collections", async () => {
    const reader = new ReaderOf(temporality);
    const histogram = new MeterProvider({ readers: [reader] })
      .getMeter('querytrail')
      .createHistogram(DURATION_HISTOGRAM, {
        description: DURATION_DESCRIPTION,
        unit: 's',
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      });
    const producer = new DurationHistogramProducer(temporality);
    const both = (seconds: number, attributes: Attributes) => {
      histogram.record(seconds, attributes);
      producer.record(seconds, attributes);
    };

    for (const d of durations) both(d, select);
    both(0.2, { ...failed }); // equal sets in other objects are one point
    both(0.03, { ...failed });
    const sdk1 = histogramOf((await reader.collect()).resourceMetrics);
    const own1 = histogramOf((await producer.collect()).resourceMetrics);
    expect(points(own1)).toEqual(points(sdk1));
    expect(points(own1)).toHaveLength(2);
    expect(own1?.dataPointType).toBe(DataPointType.HISTOGRAM);
    expect(own1?.aggregationTemporality).toBe(temporality);
    expect(own1?.descriptor).toMatchObject({
      name: sdk1?.descriptor.name,
      unit: sdk1?.descriptor.unit,
      description: sdk1?.descriptor.description,
      valueType: sdk1?.descriptor.valueType,
    });

    both(0.003, select);
    const sdk2 = histogramOf((await reader.collect()).resourceMetrics);
    const own2 = histogramOf((await producer.collect()).resourceMetrics);
    expect(points(own2)).toEqual(points(sdk2));
    // delta: only the set that had a query since, and its start is the previous collection
    expect(points(own2)).toHaveLength(temporality === AggregationTemporality.DELTA ? 1 : 2);
    if (temporality === AggregationTemporality.DELTA)
      expect(own2!.dataPoints[0].startTime).toEqual(own1!.dataPoints[0].endTime);
  });
});

it('puts attribute sets past the cardinality limit in one overflow point, as the SDK does', async () => {
  const reader = new ReaderOf(AggregationTemporality.CUMULATIVE);
  const histogram = new MeterProvider({ readers: [reader] })
    .getMeter('querytrail')
    .createHistogram(DURATION_HISTOGRAM, { advice: { explicitBucketBoundaries: DURATION_BUCKETS } });
  const producer = new DurationHistogramProducer();
  for (let i = 0; i < 2100; i++) {
    histogram.record(0.01, { 'db.namespace': `db${i}` });
    producer.record(0.01, { 'db.namespace': `db${i}` });
  }
  const collected = (await producer.collect()).resourceMetrics;
  expect(collected.scopeMetrics.map((s) => s.scope)).toEqual([{ name: 'querytrail', version: VERSION }]);
  const own = histogramOf(collected)!;
  expect(points(own)).toEqual(points(histogramOf((await reader.collect()).resourceMetrics)));
  expect(own.dataPoints).toHaveLength(2000);
  expect(own.dataPoints.find((p) => p.attributes['otel.metric.overflow'] === true)?.value.count).toBe(101);
});

it('gives no metric before the first query', async () => {
  expect((await new DurationHistogramProducer().collect()).resourceMetrics.scopeMetrics).toEqual([]);
});
