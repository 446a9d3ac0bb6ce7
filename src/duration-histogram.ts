import type { Attributes, HrTime } from '@opentelemetry/api';
import { ValueType } from '@opentelemetry/api';
import { hrTime } from '@opentelemetry/core';
import { emptyResource } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  CollectionResult,
  DataPointType,
  HistogramMetricData,
  MetricProducer,
} from '@opentelemetry/sdk-metrics';
import { DURATION_BUCKETS, DURATION_HISTOGRAM } from './attributes';
import { VERSION } from './version';

export const DURATION_DESCRIPTION = 'Duration of database client operations';

/** The SDK's default cardinality limit: past it, measurements go to one overflow point, as the SDK's do. */
const CARDINALITY_LIMIT = 2000;
const OVERFLOW_ATTRIBUTES: Attributes = { 'otel.metric.overflow': true };
const OVERFLOW_KEY = keyOf(OVERFLOW_ATTRIBUTES);

/** One point: the durations of the queries with one attribute set since `startTime`. */
interface Cell {
  readonly attributes: Attributes;
  startTime: HrTime;
  count: number;
  sum: number;
  min: number;
  max: number;
  readonly counts: number[];
}

/**
 * The duration histogram (`db.client.operation.duration`) aggregated by querytrail and handed to a metric
 * reader as a `MetricProducer` (an SDK interface for bridges). The metrics API's `record` hashes its attribute
 * set on every call — keys sorted, `JSON.stringify`, a string hash: ~13 000 instructions for the seven of a
 * query, a fifth of what querytrail adds to a knex query. A query's attribute set is one object per statement
 * shape (the tracker's memo), so a point is found here by that object's identity, hashed only the first time.
 * The data points are the SDK's: same buckets, min and max, the reader's temporality, the cardinality limit.
 */
export class DurationHistogramProducer implements MetricProducer {
  private readonly cellsByObject = new WeakMap<Attributes, Cell>();
  private readonly cellsByKey = new Map<string, Cell>();

  constructor(readonly temporality: AggregationTemporality = AggregationTemporality.CUMULATIVE) {}

  record(seconds: number, attributes: Attributes): void {
    let cell = this.cellsByObject.get(attributes);
    if (cell === undefined) {
      cell = this.cellFor(attributes);
      this.cellsByObject.set(attributes, cell);
    }
    cell.count++;
    cell.sum += seconds;
    if (seconds < cell.min) cell.min = seconds;
    if (seconds > cell.max) cell.max = seconds;
    let bucket = 0;
    // a value on a boundary counts in the bucket it closes, as the SDK (and Prometheus' `le`) count it
    while (bucket < DURATION_BUCKETS.length && seconds > DURATION_BUCKETS[bucket]) bucket++;
    cell.counts[bucket]++;
  }

  async collect(): Promise<CollectionResult> {
    const endTime = hrTime();
    const delta = this.temporality === AggregationTemporality.DELTA;
    const dataPoints: HistogramMetricData['dataPoints'] = [];
    for (const cell of this.cellsByKey.values()) {
      if (cell.count === 0) continue;
      const { attributes, startTime, count, sum, min, max } = cell;
      dataPoints.push({
        attributes,
        startTime,
        endTime,
        value: { buckets: { boundaries: DURATION_BUCKETS, counts: cell.counts.slice() }, count, sum, min, max },
      });
      if (delta) startOver(cell, endTime);
    }
    const metric: HistogramMetricData = {
      descriptor: {
        name: DURATION_HISTOGRAM,
        description: DURATION_DESCRIPTION,
        unit: 's',
        valueType: ValueType.DOUBLE,
      },
      aggregationTemporality: this.temporality,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints,
    };
    const scopeMetrics =
      dataPoints.length === 0 ? [] : [{ scope: { name: 'querytrail', version: VERSION }, metrics: [metric] }];
    return { resourceMetrics: { resource: emptyResource(), scopeMetrics }, errors: [] };
  }

  /** Equal attribute sets in different objects (an error's, a role that changed) share a point. */
  private cellFor(attributes: Attributes): Cell {
    const key = keyOf(attributes);
    let cell = this.cellsByKey.get(key);
    if (cell !== undefined) return cell;
    if (this.cellsByKey.size >= CARDINALITY_LIMIT - 1) {
      attributes = OVERFLOW_ATTRIBUTES;
      cell = this.cellsByKey.get(OVERFLOW_KEY);
      if (cell !== undefined) return cell;
    }
    cell = { attributes, startTime: hrTime(), count: 0, sum: 0, min: Infinity, max: -Infinity, counts: [] };
    startOver(cell, cell.startTime);
    this.cellsByKey.set(attributes === OVERFLOW_ATTRIBUTES ? OVERFLOW_KEY : key, cell);
    return cell;
  }
}

function startOver(cell: Cell, startTime: HrTime): void {
  cell.startTime = startTime;
  cell.count = 0;
  cell.sum = 0;
  cell.min = Infinity;
  cell.max = -Infinity;
  cell.counts.length = 0;
  for (let i = 0; i <= DURATION_BUCKETS.length; i++) cell.counts.push(0);
}

function keyOf(attributes: Attributes): string {
  return JSON.stringify(
    Object.keys(attributes)
      .sort()
      .map((key) => [key, attributes[key]]),
  );
}

/**
 * The producers readers were given: the tracker records every duration in each (one per reader, as each
 * reader has its temporality and collects on its own). Empty, it records through the metrics API instead.
 */
export const durationProducers: DurationHistogramProducer[] = [];

/**
 * A producer of querytrail's duration histogram for a metric reader of your own: pass it in the reader's
 * `metricProducers` (with the temporality the reader's exporter selects for histograms; cumulative by default),
 * before the first query. From then on querytrail records durations in it instead of through the metrics
 * API (the agent does this for the readers it makes).
 */
export function durationMetricProducer(temporality?: AggregationTemporality): DurationHistogramProducer {
  const producer = new DurationHistogramProducer(temporality);
  durationProducers.push(producer);
  return producer;
}
