import * as fs from 'node:fs';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * QUERYTRAIL_EXPORT_FILE: every finished query span of querytrail, one JSON object per line. Written
 * synchronously, so the file is complete even when the app calls process.exit().
 */
export class JsonLinesSpanProcessor implements SpanProcessor {
  private fd: number | undefined;

  constructor(private readonly file: string) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (!span.instrumentationScope.name.startsWith('querytrail')) return;
    this.fd ??= fs.openSync(this.file, 'a');
    fs.writeSync(this.fd, JSON.stringify(toJson(span)) + '\n');
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
    return Promise.resolve();
  }
}

export function toJson(span: ReadableSpan) {
  return {
    name: span.name,
    traceId: span.spanContext().traceId,
    spanId: span.spanContext().spanId,
    parentSpanId: span.parentSpanContext?.spanId,
    kind: SpanKind[span.kind],
    startTime: new Date(hrTimeToMilliseconds(span.startTime)).toISOString(),
    durationMs: hrTimeToMilliseconds(span.duration),
    status: { code: SpanStatusCode[span.status.code], message: span.status.message },
    attributes: span.attributes,
    events: span.events.map((e) => ({ name: e.name, attributes: e.attributes ?? {} })),
  };
}
