import * as fs from 'node:fs';
import * as path from 'node:path';
import { findSourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { Attributes, Span } from '@opentelemetry/api';
import { SourceMapConsumer, RawSourceMap } from 'source-map-js';
import { ATTR } from './attributes';
import { compiledSourceMapUrl, compiledWithoutMap } from './compiled-sources';
import { guarded } from './guard';

/** A resolved application frame. Interned: one object per (file, line, column). */
export interface CallSite {
  readonly file: string;
  readonly line: number;
  readonly column: number;
  readonly function?: string;
  /** `code.*` attributes for an execution site, precomputed. */
  readonly codeAttributes: Attributes;
}

/** One line is one site for hazards: a statement's call and its await differ only in the column. */
export function sameLine(a: CallSite | undefined, b: CallSite | undefined): boolean {
  return a === b || (a !== undefined && b !== undefined && a.line === b.line && a.file === b.file);
}

export function formatSite(site: CallSite | undefined): string {
  return site ? `${site.file}:${site.line}:${site.column}` : 'a site not recorded (QUERYTRAIL_CAPTURE)';
}

/**
 * Frames above the app: ORMs and drivers add 10–40 of them, so the limit is raised (only around the
 * capture) to reach past them. A capture costs in proportion to the frames it takes (2.5 µs for 4, 10 µs
 * for 40 under a 25-frame request handler), so each patched function's captures learn how deep its
 * application frame lies and take that many frames and a margin (see CaptureDepth).
 */
const CAPTURE_DEPTH = 40;
const DEPTH_MARGIN = 4;
/** Captures formatted before a patched function's depth is trusted. */
const DEPTH_SAMPLES = 3;

/** How deep below one patched function the captures formatted so far found their application frame. */
interface CaptureDepth {
  needed: number;
  samples: number;
  limit: number;
  /** A shortened capture was cut short once: the whole depth from then on. */
  deep: boolean;
}
const captureDepths = new WeakMap<Function, CaptureDepth>();

/** An unformatted stack, turned into a CallSite only when somebody needs it. */
export class StackCapture {
  private holder: { stack?: unknown } | undefined;
  private site: CallSite | undefined;
  private readonly depth: CaptureDepth;
  private readonly limit: number;
  /** Resolved to no site only because it took too few frames: it says nothing about its shape's site. */
  cutShort = false;

  /** `below` is the outermost querytrail function on the stack: it and the frames above it are cut. */
  constructor(below: Function) {
    let depth = captureDepths.get(below);
    if (depth === undefined)
      captureDepths.set(below, (depth = { needed: 0, samples: 0, limit: CAPTURE_DEPTH, deep: false }));
    this.depth = depth;
    this.limit = depth.limit;
    const holder: { stack?: unknown } = {};
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = this.limit;
    Error.captureStackTrace(holder, below);
    Error.stackTraceLimit = limit;
    this.holder = holder;
  }

  get isResolved(): boolean {
    return this.holder === undefined;
  }

  resolve(): CallSite | undefined {
    if (this.holder !== undefined) {
      const holder = this.holder;
      this.holder = undefined; // the Error-sized holder is dropped once resolved; only the interned site stays
      this.site = guarded('call-site resolution', () => {
        const frames = structuredFrames(holder);
        const index = frames.findIndex(isApplicationFrame);
        this.cutShort = learnDepth(this.depth, this.limit, frames.length, index);
        return index < 0 ? undefined : siteOf(frames[index]);
      });
    }
    return this.site;
  }
}

/**
 * Once a few captures found their application frame, later ones take that many frames and a margin. A
 * shortened capture that found none because it was cut short (it is full) means a deeper path: from then
 * on that function's captures take the whole depth (the site of that one object is lost).
 */
function learnDepth(depth: CaptureDepth, limit: number, frames: number, index: number): boolean {
  if (index >= 0) {
    depth.needed = Math.max(depth.needed, index + 1);
    if (++depth.samples >= DEPTH_SAMPLES && !depth.deep) {
      depth.limit = Math.min(CAPTURE_DEPTH, depth.needed + DEPTH_MARGIN);
    }
  } else if (frames >= limit && limit < CAPTURE_DEPTH) {
    depth.deep = true;
    depth.limit = CAPTURE_DEPTH;
    return true;
  }
  return false;
}

/** A construction or execution site: resolved already, or a capture resolved on first use. */
export type SiteRef = CallSite | StackCapture;

export function resolveSite(ref: SiteRef | undefined): CallSite | undefined {
  return ref instanceof StackCapture ? ref.resolve() : ref;
}

function structuredFrames(holder: { stack?: unknown }): NodeJS.CallSite[] {
  const previous = Error.prepareStackTrace;
  Error.prepareStackTrace = (_err, frames) => frames;
  try {
    const frames = holder.stack;
    return Array.isArray(frames) ? (frames as NodeJS.CallSite[]) : [];
  } finally {
    Error.prepareStackTrace = previous;
  }
}

/** querytrail's root: two levels up from dist/src when compiled, one from src under ts-jest. */
function packageRoot(): string {
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}
const PACKAGE_ROOT = packageRoot();
/** querytrail's own code, compiled or (under ts-jest) as source; examples and tests are application code. */
const OWN_DIRS = ['dist', 'src', 'instrumentations', 'exporters'].map((d) => path.join(PACKAGE_ROOT, d) + path.sep);
const NODE_MODULES = `${path.sep}node_modules${path.sep}`;

export function isApplicationFile(file: string): boolean {
  if (file.startsWith('node:') || file.startsWith('internal/') || !(file.startsWith('/') || /^[A-Za-z]:\\/.test(file)))
    return false;
  if (file.includes(NODE_MODULES)) return false;
  return !OWN_DIRS.some((dir) => file.startsWith(dir));
}

const FORMATTED_POSITION = /\(?((?:file:\/\/)?(?:[A-Za-z]:)?[^():]+):(\d+):(\d+)\)?\s*$/;

/**
 * A stack formatter installed by someone else maps positions of code it transformed: jest's
 * source-map-support maps what babel-jest or ts-jest compiled in memory, where no file or inline map
 * reaches querytrail. The frame is formatted with it (only when a site is resolved) and its position read.
 */
function positionByStackFormatter(frame: NodeJS.CallSite): { file: string; line: number; column: number } | undefined {
  const format = Error.prepareStackTrace;
  if (format === undefined) return undefined;
  return guarded('stack formatter', () => {
    const formatted: unknown = format(new Error(), [frame]);
    if (typeof formatted !== 'string') return undefined;
    const match = FORMATTED_POSITION.exec(formatted.slice(formatted.lastIndexOf('\n') + 1));
    if (match === null) return undefined;
    const written = match[1].replace(/^\s*at\s+(?:async\s+)?/, '');
    const file = written.startsWith('file://') ? fileURLToPath(written) : written;
    // a formatter that names something else than application code is not one to trust here
    if (!isApplicationFile(file)) return undefined;
    return { file, line: Number(match[2]), column: Number(match[3]) };
  });
}

function isApplicationFrame(frame: NodeJS.CallSite): boolean {
  const file = frame.getFileName();
  if (!file || frame.isNative()) return false;
  return isApplicationFile(file.startsWith('file://') ? fileURLToPath(file) : file);
}

function siteOf(frame: NodeJS.CallSite): CallSite | undefined {
  let file = frame.getFileName()!;
  if (file.startsWith('file://')) file = fileURLToPath(file);
  if (unmappable(file)) return undefined;
  const line = frame.getLineNumber() ?? 0;
  const column = frame.getColumnNumber() ?? 0;
  const fn = frame.getFunctionName() ?? frame.getMethodName() ?? undefined;
  const format = Error.prepareStackTrace;
  if (format === undefined) return internSite(file, line, column, fn ?? undefined);
  // what an installed formatter maps a position to is fixed: asked once per position (it costs ~8 µs)
  let byPosition = sitesByFormatter.get(format);
  if (byPosition === undefined) sitesByFormatter.set(format, (byPosition = new Map()));
  const position = `${file}:${line}:${column}`;
  let site = byPosition.get(position);
  if (site === undefined) {
    const mapped = positionByStackFormatter(frame);
    site = mapped
      ? internSite(mapped.file, mapped.line, mapped.column, fn ?? undefined)
      : internSite(file, line, column, fn ?? undefined);
    if (byPosition.size < MAX_INTERNED) byPosition.set(position, site);
  }
  return site;
}

/** Sites by generated position, per installed stack formatter (see positionByStackFormatter). */
const sitesByFormatter = new WeakMap<Function, Map<string, CallSite>>();

const MAX_INTERNED = 50_000;
const interned = new Map<string, CallSite>();

/** One CallSite object per generated position, mapped through the file's source map when it has one. */
export function internSite(file: string, line: number, column: number, fn?: string): CallSite {
  const key = `${file}:${line}:${column}`;
  let site = interned.get(key);
  if (site === undefined) {
    const original = originalPosition(file, line, column);
    site = makeSite(original?.file ?? file, original?.line ?? line, original?.column ?? column, fn);
    if (interned.size < MAX_INTERNED) interned.set(key, site);
  }
  return site;
}

function makeSite(file: string, line: number, column: number, fn: string | undefined): CallSite {
  const codeAttributes: Attributes = {
    [ATTR.CODE_FILE_PATH]: file,
    [ATTR.CODE_LINE_NUMBER]: line,
    [ATTR.CODE_COLUMN_NUMBER]: column,
  };
  if (fn) codeAttributes[ATTR.CODE_FUNCTION_NAME] = fn;
  return Object.freeze({ file, line, column, function: fn, codeAttributes });
}

/** The attribute names of a site on a span: the file, line, column and function it names. */
export interface SiteKeys {
  readonly file: string;
  readonly line: string;
  readonly column: string;
  readonly function: string;
}

export const CONSTRUCTION_KEYS: SiteKeys = {
  file: ATTR.CONSTRUCTION_FILE,
  line: ATTR.CONSTRUCTION_LINE,
  column: ATTR.CONSTRUCTION_COLUMN,
  function: ATTR.CONSTRUCTION_FUNCTION,
};
export const ORIGIN_KEYS: SiteKeys = {
  file: ATTR.ORIGIN_FILE,
  line: ATTR.ORIGIN_LINE,
  column: ATTR.ORIGIN_COLUMN,
  function: ATTR.ORIGIN_FUNCTION,
};

/**
 * A site's attributes on a span, relative to a nearer site the span already names (the construction site
 * to `code.*`, the origin to the construction site): its line and column always, its file and function
 * only when they are not the nearer site's. Most query objects are built in the file and function that run
 * them, and a span's size matters (src/query-tracker.ts, `start`).
 */
export function setSiteAttributes(span: Span, keys: SiteKeys, site: CallSite, nearer: CallSite | undefined): void {
  if (site.file !== nearer?.file) span.setAttribute(keys.file, site.file);
  span.setAttribute(keys.line, site.line);
  span.setAttribute(keys.column, site.column);
  if (site.function && site.function !== nearer?.function) span.setAttribute(keys.function, site.function);
}

interface SourceMapper {
  map(line: number, column: number): { file: string; line: number; column: number } | undefined;
}

const sourceMappers = new Map<string, SourceMapper | null>();

function sourceMapperOf(file: string): SourceMapper | null {
  let mapper = sourceMappers.get(file);
  if (mapper === undefined) {
    mapper = guarded('source map loading', () => loadSourceMapper(file)) ?? null;
    sourceMappers.set(file, mapper);
  }
  return mapper;
}

function originalPosition(
  file: string,
  line: number,
  column: number,
): { file: string; line: number; column: number } | undefined {
  return sourceMapperOf(file)?.map(line, column);
}

/**
 * A TypeScript file compiled in memory without a source map: its compiled line under the .ts name would
 * be wrong, so no line is named. (Node 22.6+ strips types in place and keeps positions; jest transforms
 * outside Module#_compile and maps its own stack traces.)
 */
function unmappable(file: string): boolean {
  return compiledWithoutMap(file) && sourceMapperOf(file) === null;
}

/**
 * The source map of a file: compiled in memory (src/compiled-sources.ts), in Node's own cache (with
 * --enable-source-maps), else named by the file's own sourceMappingURL comment on disk.
 */
function loadSourceMapper(file: string): SourceMapper | null {
  const compiled = compiledSourceMapUrl(file);
  if (compiled !== undefined) return consumerMapper(sourceMapAt(compiled, path.dirname(file)));
  const nodeMap = findSourceMap(file);
  if (nodeMap) {
    return {
      map(line, column) {
        const entry = nodeMap.findEntry(line - 1, column - 1) as {
          originalSource?: string;
          originalLine?: number;
          originalColumn?: number;
        };
        if (!entry || entry.originalSource === undefined || entry.originalLine === undefined) return undefined;
        const source = entry.originalSource.startsWith('file://')
          ? fileURLToPath(entry.originalSource)
          : path.resolve(path.dirname(file), entry.originalSource);
        return { file: source, line: entry.originalLine + 1, column: (entry.originalColumn ?? 0) + 1 };
      },
    };
  }
  if (/\.[cm]?tsx?$/.test(file)) return null; // the TypeScript source itself: its map, if any, was in memory
  const code = fs.readFileSync(file, 'utf8');
  const at = code.lastIndexOf(SOURCE_MAPPING_URL);
  if (at < 0) return null;
  const url = /^\S+/.exec(code.slice(at + SOURCE_MAPPING_URL.length))?.[0];
  return url ? consumerMapper(sourceMapAt(url, path.dirname(file))) : null;
}

const SOURCE_MAPPING_URL = '# sourceMappingURL=';

/** A source map named by a sourceMappingURL (inline `data:` or a file), and the directory its paths start from. */
function sourceMapAt(url: string, dir: string): { map: RawSourceMap; dir: string } {
  const inline = /^data:application\/json[^,]*?(;base64)?,(.*)$/s.exec(url);
  if (inline) {
    const text = inline[1] ? Buffer.from(inline[2], 'base64').toString('utf8') : decodeURIComponent(inline[2]);
    return { map: JSON.parse(text), dir };
  }
  const mapFile = path.resolve(dir, decodeURIComponent(url));
  return { map: JSON.parse(fs.readFileSync(mapFile, 'utf8')), dir: path.dirname(mapFile) };
}

function consumerMapper(raw: { map: RawSourceMap; dir: string }): SourceMapper {
  const consumer = new SourceMapConsumer(raw.map);
  return {
    map(line, column) {
      const pos = consumer.originalPositionFor({ line, column: column - 1 });
      if (!pos.source || pos.line == null) return undefined;
      const source = pos.source.startsWith('file://')
        ? fileURLToPath(pos.source)
        : path.resolve(raw.dir, raw.map.sourceRoot ?? '', pos.source);
      return { file: source, line: pos.line, column: (pos.column ?? 0) + 1 };
    },
  };
}
