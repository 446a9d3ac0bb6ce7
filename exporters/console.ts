import * as fs from 'node:fs';
import type { ReadableSpan, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR, HAZARD, HAZARD_EVENT } from '../src/attributes';
import type { CallSite } from '../src/callsite';
import type { Hazard } from '../src/hazards/types';
import type { HazardContext, WarningSink } from '../src/report';

type Write = (line: string) => void;
const toStderr: Write = (text) => process.stderr.write(text);

/** Colour on a terminal, unless NO_COLOR is set (no-color.org); never in a pipe or a file. */
export function colourOn(stream: { isTTY?: boolean }): boolean {
  return stream.isTTY === true && !process.env.NO_COLOR;
}

type Paint = (text: string) => string;
const plain: Paint = (text) => text;
const sgr =
  (open: number, close: number): Paint =>
  (text) =>
    `\u001b[${open}m${text}\u001b[${close}m`;
const PAINT = { bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), yellow: sgr(33, 39), cyan: sgr(36, 39) };

/** Readable hazard warnings on stderr: the message, the code to change, bound vs ran, where it happened. */
export class ConsoleWarnings implements WarningSink {
  private readonly paint: Record<keyof typeof PAINT, Paint>;

  /**
   * `codeFrames`: the source lines around the site (credentials masked); QUERYTRAIL_CODE_FRAMES=false.
   * `colour`: ANSI colours (default: when stderr is a terminal and NO_COLOR is not set).
   */
  constructor(
    private readonly write: Write = toStderr,
    private readonly codeFrames = true,
    colour = write === toStderr && colourOn(process.stderr),
  ) {
    this.paint = colour ? PAINT : { bold: plain, dim: plain, red: plain, yellow: plain, cyan: plain };
  }

  warn(hazard: Hazard, context: HazardContext): void {
    const { bold, dim, red, yellow, cyan } = this.paint;
    const severity = hazard.severity === 'error' ? red : yellow;
    const lines = [`${severity(`querytrail ${hazard.severity}`)}: ${bold(hazard.code)}`, `  ${hazard.message}`];
    if (hazard.site && this.codeFrames) {
      lines.push(...codeFrame(hazard.site).map((l) => `    ${l.startsWith('>') ? cyan(l) : dim(l)}`));
    }
    lines.push(dim(`  bound: ${context.bound}`), dim(`  ran:   ${context.ran}`), dim(`  in:    ${context.scope}`));
    this.write(lines.join('\n') + '\n');
  }

  suppressed(count: number): void {
    this.write(
      `querytrail: ${count} more hazard warnings in the last minute were not printed ` +
        '(see the querytrail.hazards metric)\n',
    );
  }
}

/** QUERYTRAIL_CONSOLE=spans: one line per query span, for demos and local debugging. */
export class ConsoleSpanProcessor implements SpanProcessor {
  constructor(private readonly write: Write = toStderr) {}

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    if (!span.instrumentationScope.name.startsWith('querytrail')) return;
    const a = span.attributes;
    // a query built where it ran (raw driver calls, eager ORM calls) has no construction site but code.*,
    // one built in the file that ran it no construction file
    const file = a[ATTR.CONSTRUCTION_FILE] ?? a[ATTR.CODE_FILE_PATH];
    const line = a[ATTR.CONSTRUCTION_LINE] ?? a[ATTR.CODE_LINE_NUMBER];
    // no construction phase: it was built in the phase it ran in
    const phase = a[ATTR.CONSTRUCTION_PHASE] ?? a[ATTR.EXECUTION_PHASE];
    const built = file ? ` built at ${file}:${line} (${phase})` : '';
    const hazards = span.events.filter((e) => e.name === HAZARD_EVENT).map((e) => e.attributes?.[HAZARD.CODE]);
    const ms = span.duration[0] * 1e3 + span.duration[1] / 1e6;
    this.write(
      `querytrail span: ${span.name} ${ms.toFixed(1)}ms ran on ${a[ATTR.RAN_ALIAS]} ` +
        `(${a[ATTR.RAN_ROLE] ?? 'role unknown'})${built}` +
        (a[ATTR.ERROR_TYPE] ? ` error ${a[ATTR.ERROR_TYPE]}` : '') +
        (hazards.length ? ` hazards: ${hazards.join(', ')}` : '') +
        '\n',
    );
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }

  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const frames = new Map<string, string[]>();

/** Two lines either side of the site, read once per site. */
function codeFrame(site: CallSite): string[] {
  const key = `${site.file}:${site.line}`;
  let frame = frames.get(key);
  if (frame === undefined) {
    frame = [];
    try {
      const source = fs.readFileSync(site.file, 'utf8').split('\n');
      for (let n = Math.max(1, site.line - 2); n <= Math.min(source.length, site.line + 2); n++) {
        frame.push(`${n === site.line ? '>' : ' '} ${String(n).padStart(4)} | ${maskSecrets(source[n - 1])}`);
      }
    } catch {
      // the source is not readable here (deployed without it): the message still names file:line
    }
    frames.set(key, frame);
  }
  return frame;
}

/** `scheme://user:password@host`: the password part. */
const URL_CREDENTIALS = /(\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@'"`]*:)[^\s@'"`]+@/gi;
/** `password: 'x'`, `apiKey = "x"`, `secret=x`, `token: x`: the value. */
const SECRET_NAME = String.raw`pass(?:word|wd)?|secret|token|api[_-]?key|credential|private[_-]?key`;
const QUOTES = `'"\``;
const SECRET_VALUE = new RegExp(
  String.raw`(\b[\w$]*(?:${SECRET_NAME})[\w$]*["']?\s*[:=]\s*)([${QUOTES}]?)([^${QUOTES}\s,;)}]+)\2`,
  'gi',
);

/**
 * Source lines shown in a warning's code frame may hold credentials written into the code (a connection
 * string, a password option): they are masked before anything is printed.
 */
export function maskSecrets(line: string): string {
  return line.replace(URL_CREDENTIALS, '$1***@').replace(SECRET_VALUE, '$1$2***$2');
}
