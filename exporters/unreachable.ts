import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { Counter, diag, metrics } from '@opentelemetry/api';
import { ExportResult, ExportResultCode } from '@opentelemetry/core';

/** After a failed export, the collector is given this long before it is tried again. */
const COOL_DOWN_MS = 30_000;
const SAY_AT_MOST_EVERY_MS = 60_000;
/**
 * Exports under way at once, unless told otherwise: a collector that answers slowly or never (a black hole)
 * would otherwise have every batch of the next timeout held in memory. Past it, batches are dropped, and
 * counted.
 */
const MAX_IN_FLIGHT = 2;
/** Spans (or metric exports) dropped because the collector was down or too slow, by `signal`. */
export const DROPPED_COUNTER = 'querytrail.telemetry.dropped';

let droppedCounter: Counter | undefined;
function countDropped(items: unknown, signal: string): void {
  droppedCounter ??= metrics.getMeter('querytrail').createCounter(DROPPED_COUNTER, {
    description: 'Telemetry dropped because the collector was unreachable or too slow',
    unit: '{item}',
  });
  droppedCounter.add(Array.isArray(items) ? items.length : 1, { signal });
}

interface Exporter<T> {
  export(items: T, done: (result: ExportResult) => void): void;
}

/**
 * Wraps an OTLP exporter so that the collector's health never shows in the app: the SDK is told at once
 * that an export is under way and done (its own timers wait on nothing), the export goes on in the
 * background with I/O that keeps no process alive (exporterIoOptions), and the exporter's shutdown — the
 * bounded flush at exit — still waits for what is in flight. After a failed export (refused, timed out,
 * black-holed, after the exporter's own retries) exports are dropped at once for a while, and one line, at
 * most once a minute, says the collector is unreachable. At most `maxInFlight` exports are under way: what
 * a slow collector cannot take is dropped rather than held. Dropped telemetry is counted
 * (`querytrail.telemetry.dropped`).
 */
export function inBackground<T, E extends Exporter<T>>(
  exporter: E,
  what: string,
  say: (line: string) => void,
  maxInFlight = MAX_IN_FLIGHT,
): E {
  const original = exporter.export.bind(exporter);
  let downUntil = 0;
  let saidAt = -Infinity;
  let inFlight = 0;
  exporter.export = (items: T, done: (result: ExportResult) => void) => {
    if (Date.now() < downUntil || inFlight >= maxInFlight) {
      countDropped(items, what);
      done({ code: ExportResultCode.FAILED, error: new Error(`${what}: collector unreachable or too slow`) });
      return;
    }
    inFlight++;
    original(items, (result) => {
      inFlight--;
      if (result.code !== ExportResultCode.FAILED) return;
      countDropped(items, what);
      const now = Date.now();
      downUntil = now + COOL_DOWN_MS;
      if (now - saidAt < SAY_AT_MOST_EVERY_MS) return;
      saidAt = now;
      const reason = result.error?.message ?? 'no answer';
      say(`querytrail: the OTLP collector did not take the ${what} (${reason}); they are dropped, tried again in 30 s`);
    });
    done({ code: ExportResultCode.SUCCESS });
  };
  return exporter;
}

/**
 * The OTLP exporters' own I/O — sockets to the collector and the timers between retries — must never keep
 * the app's process alive: an app that is done exits as it would without the agent, and the agent's exit
 * flush (bounded, src/agent-start.ts) holds the process only as long as it allows. Sockets: an agent whose
 * connections are unref'd, with the TLS files the OTLP variables name. Retry timers: the exporter base's
 * retrying transport (not exported, reached through its file) gets an unref'd timer; if that file moved in
 * another version, retries keep the process alive as before, and nothing else changes.
 */
export function exporterIoOptions(signal: 'TRACES' | 'METRICS'): { httpAgentOptions: HttpAgentFactory } {
  unrefRetryTimers();
  return {
    httpAgentOptions: async (protocol: string) => {
      const module = protocol === 'http:' ? await import('node:http') : await import('node:https');
      const options = protocol === 'http:' ? { keepAlive: true } : { keepAlive: true, ...tlsFromEnv(signal) };
      const agent = new module.Agent(options);
      const unrefd = agent as unknown as { createConnection: CreateConnection };
      const createConnection = unrefd.createConnection;
      unrefd.createConnection = function unrefConnection(this: unknown, ...args: unknown[]) {
        const socket = createConnection.apply(this, args);
        socket?.unref?.();
        return socket;
      };
      return agent;
    },
  };
}

type CreateConnection = (this: unknown, ...args: unknown[]) => { unref?: () => void } | undefined;
type HttpAgentFactory = (protocol: string) => Promise<http.Agent>;

function tlsFromEnv(signal: 'TRACES' | 'METRICS'): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  const read = (name: string) => {
    const file = process.env[`OTEL_EXPORTER_OTLP_${signal}_${name}`] ?? process.env[`OTEL_EXPORTER_OTLP_${name}`];
    if (!file) return undefined;
    try {
      return fs.readFileSync(path.resolve(process.cwd(), file));
    } catch {
      return undefined; // the exporter itself says so in the diag log, as without querytrail
    }
  };
  return { ca: read('CERTIFICATE'), cert: read('CLIENT_CERTIFICATE'), key: read('CLIENT_KEY') };
}

let retriesUnrefd = false;

function unrefRetryTimers(): void {
  if (retriesUnrefd) return;
  retriesUnrefd = true;
  try {
    const base = path.dirname(require.resolve('@opentelemetry/otlp-exporter-base'));
    const { createRetryingTransport } = require(path.join(base, 'retrying-transport.js')) as {
      createRetryingTransport(options: { transport: unknown }): object;
    };
    const proto = Object.getPrototypeOf(createRetryingTransport({ transport: {} })) as {
      retry?: unknown;
    };
    if (typeof proto.retry !== 'function') return;
    proto.retry = function retry(
      this: { _transport: { send(data: unknown, timeoutMillis: number): Promise<unknown> } },
      data: unknown,
      timeoutMillis: number,
      inMillis: number,
    ) {
      return new Promise((resolve, reject) => {
        setTimeout(() => this._transport.send(data, timeoutMillis).then(resolve, reject), inMillis).unref();
      });
    };
  } catch (err) {
    diag.debug('querytrail: the OTLP retry timers stay as they are', err);
  }
}
