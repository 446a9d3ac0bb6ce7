import Module from 'node:module';
import { internalErrorOccurred } from './guard';

/**
 * Source maps of application files compiled in memory (ts-node, tsx, swc-node, @babel/register): their
 * code never reaches the disk, and Node keeps their maps only under --enable-source-maps. Every CommonJS
 * compiler hands its output to `Module.prototype._compile`, inline map included: it is kept here, as
 * bytes (a slice would keep the whole compiled file alive), and parsed only when a site in that file is.
 */
const maps = new Map<string, Buffer>();
/** TypeScript files a compiler handed over without a map: their compiled positions cannot be mapped back. */
const unmapped = new Set<string>();
const TYPESCRIPT = /\.[cm]?tsx?$/;
const MARKER = 'sourceMappingURL=data:';
const NODE_MODULES = '/node_modules/';
const WATCHING = Symbol.for('querytrail.compiled-sources');

type Compile = (this: unknown, content: string, filename: string, ...rest: unknown[]) => unknown;
const proto = (Module as unknown as { prototype: { _compile: Compile & { [WATCHING]?: true } } }).prototype;

/** Installed once per process, before the app's modules load (the agent, configureQuerytrail). */
export function watchCompiledSources(): void {
  const original = proto._compile;
  if (typeof original !== 'function' || original[WATCHING]) return;
  const watched: Compile & { [WATCHING]?: true } = function _compile(this: unknown, content, filename, ...rest) {
    if (typeof content === 'string' && typeof filename === 'string' && !filename.includes(NODE_MODULES)) {
      try {
        const at = content.lastIndexOf(MARKER);
        if (at >= 0) maps.set(filename, Buffer.from(content.slice(at + MARKER.length - 'data:'.length).trim()));
        else if (TYPESCRIPT.test(filename)) unmapped.add(filename);
      } catch (err) {
        internalErrorOccurred('compiled source map', err);
      }
    }
    return original.call(this, content, filename, ...rest);
  };
  watched[WATCHING] = true;
  proto._compile = watched;
}

/** The `data:` URL of the inline source map a file was compiled with in memory, if any. */
export function compiledSourceMapUrl(file: string): string | undefined {
  return maps.get(file)?.toString();
}

/** A TypeScript file compiled in memory without a source map: querytrail names no line in it. */
export function compiledWithoutMap(file: string): boolean {
  return unmapped.has(file);
}
