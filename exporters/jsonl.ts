import * as fs from 'node:fs';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { hrTimeToMilliseconds } from '@opentelemetry/core';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';

/**
 * QUERYTRAIL_EXPORT_FILE: every finished query span of querytrail, one JSON object per line. Written
 * synchronously, so the file is complete even when the app calls process.exit(). A file that cannot be
 * opened or written (a missing directory, a directory, a full disk) is said once, and the processor
 * stops: the app's queries never see the failure.
 */
export class JsonLinesSpanProcessor implements SpanProcessor {
  private fd: number | undefined;
  private failed = false;

  constructor(
    private readonly file: string,
    private readonly problem: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
  ) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (this.failed || !span.instrumentationScope.name.startsWith('querytrail')) return;
    try {
      this.fd ??= fs.openSync(this.file, 'a');
      fs.writeSync(this.fd, JSON.stringify(toJson(span)) + '\n');
    } catch (err) {
      this.failed = true;
      const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      this.problem(
        `querytrail: cannot write QUERYTRAIL_EXPORT_FILE="${this.file}" (${code}); spans are not written to it`,
      );
    }
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
