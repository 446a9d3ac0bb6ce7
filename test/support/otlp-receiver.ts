import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

// The OTLP protobuf schema, from the last otlp-transformer release that shipped its generated root.
const root = require('otlp-proto-root/build/src/generated/root');
const TraceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;
const MetricsRequest = root.opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest;
const TraceResponse = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse;

type Json = Record<string, any>;

/** A real OTLP/HTTP (protobuf) receiver on 127.0.0.1, standing in for a collector, Jaeger or Tempo. */
export class OtlpReceiver {
  readonly traces: Json[] = [];
  readonly metrics: Json[] = [];
  /** Every request body as received, for byte-level checks. */
  readonly bodies: Buffer[] = [];
  private server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      this.bodies.push(body);
      const toObject = (type: Json) =>
        type.toObject(type.decode(body), { longs: String, enums: Number, bytes: String, defaults: false });
      if (req.url === '/v1/traces') this.traces.push(toObject(TraceRequest));
      else if (req.url === '/v1/metrics') this.metrics.push(toObject(MetricsRequest));
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      res.end(TraceResponse.encode({}).finish());
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  stop(): Promise<void> {
    return new Promise((r) => this.server.close(() => r()));
  }

  spans(): Json[] {
    return this.traces.flatMap((request) => spansOf(request));
  }

  /** Spans per export request, in the order received. */
  spansPerRequest(): number[] {
    return this.traces.map((request) => spansOf(request).length);
  }

  /** Every export's metric of that name, in the order received. */
  metricsNamed(name: string): Json[] {
    return this.metrics
      .flatMap((m) => m.resourceMetrics ?? [])
      .flatMap((rm: Json) => rm.scopeMetrics ?? [])
      .flatMap((sm: Json) => sm.metrics ?? [])
      .filter((m: Json) => m.name === name);
  }

  metricPoints(name: string): Json[] {
    return this.metricsNamed(name).flatMap((m: Json) => m.sum?.dataPoints ?? m.histogram?.dataPoints ?? []);
  }
}

export function attrs(list: Json[] | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const kv of list ?? []) {
    const v = kv.value ?? {};
    out[kv.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.boolValue ?? v.doubleValue));
  }
  return out;
}

function spansOf(request: Json): Json[] {
  return (request.resourceSpans ?? []).flatMap((rs: Json) =>
    (rs.scopeSpans ?? []).flatMap((ss: Json) =>
      (ss.spans ?? []).map((s: Json) => ({ ...s, scope: ss.scope?.name, resource: rs.resource })),
    ),
  );
}
