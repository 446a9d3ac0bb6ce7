import { types } from 'node:util';
import type { Context, MeterProvider } from '@opentelemetry/api';
import {
  InstrumentationBase,
  InstrumentationNodeModuleDefinition,
  InstrumentationNodeModuleFile,
  isWrapped,
} from '@opentelemetry/instrumentation';
import { CapturePolicy, capturePolicyOf, QuerytrailInstrumentationConfig, stripUndefined } from '../src/config';
import { guarded } from '../src/guard';
import { getRuntime } from '../src/runtime';
import type { SiteRef } from '../src/callsite';
import { entrySite, startTrail, TrailFacts } from '../src/seam';
import type { LibraryProfile, Trail } from '../src/trail';
import { VERSION } from '../src/version';
import { checkSupportedVersion, reportOnce } from '../src/versions';

export type Method = (this: any, ...args: any[]) => any;
export type Proto = Record<string, Method>;
export type ClassExports = Record<string, { prototype: Proto } | undefined> & { prototype?: Proto };
/** Receives a file's exports and wraps what it needs; may return other exports to use instead. */
type Patch = (exports: ClassExports) => ClassExports | void;

/** On a replaced export: what it replaced, to put back on unpatch. */
const REPLACED = Symbol('querytrail.replaced');

/**
 * The base of querytrail's library instrumentations: options over the runtime's defaults (the
 * environment's, for the agent), the meter provider passed on to the core, the seam's "built here"
 * bound to this library and its `capture` option, and the patching of classes inside a library's own
 * files (builders, compilers, runners) with an unpatch that undoes every wrap.
 */
export abstract class QuerytrailInstrumentation<
  C extends QuerytrailInstrumentationConfig = QuerytrailInstrumentationConfig,
> extends InstrumentationBase<C> {
  constructor(
    protected readonly library: LibraryProfile,
    config: C,
  ) {
    super(`querytrail-${library.name}`, VERSION, config);
  }

  /** Options left undefined take the runtime's defaults (QUERYTRAIL_* for the agent). */
  override setConfig(config: C = {} as C): void {
    super.setConfig({ ...this.defaults(), ...stripUndefined(config) } as C);
  }

  protected defaults(): Partial<C> {
    return { capture: capturePolicyOf(getRuntime().config) } as Partial<C>;
  }

  /** This instrumentation's capture policy: its option, else the runtime's default. */
  protected capturePolicy(): CapturePolicy {
    return this.getConfig().capture ?? capturePolicyOf(getRuntime().config);
  }

  /** What still works when the library's version is not supported (said with the version warning). */
  protected readonly unsupportedConsequence: string =
    'its queries are still traced as driver (pg) spans, without provenance';

  /**
   * The definitions, each with a watcher of every version of its module: one outside the supported
   * ranges is reported (OpenTelemetry would skip it without a word).
   */
  protected checkingVersions(
    definitions: InstrumentationNodeModuleDefinition[],
  ): InstrumentationNodeModuleDefinition[] {
    const watchers = definitions.map(
      (definition) =>
        new InstrumentationNodeModuleDefinition(definition.name, ['*'], (exports: unknown, version?: string) => {
          guarded('version check', () => {
            const consequence = this.unsupportedConsequence; // a field: read once the subclass is constructed
            if (!checkSupportedVersion(definition.name, version, definition.supportedVersions, consequence)) return;
            // Node's require() of an ES module: its inner files load as ESM, which only --import can hook
            if (types.isModuleNamespaceObject(exports)) {
              reportOnce(
                `querytrail: ${definition.name} ${version} is an ES module loaded with require(), which querytrail ` +
                  `cannot patch: import it from an ES module, in an app started with --import querytrail/agent; ` +
                  `until then ${consequence}`,
              );
            }
          });
          return exports;
        }),
    );
    return [...definitions, ...watchers];
  }

  override setMeterProvider(meterProvider: MeterProvider): void {
    super.setMeterProvider(meterProvider);
    getRuntime().useMeterProvider(meterProvider);
  }

  /** Where the app called `below`, a patched entry point it calls synchronously (see runAs). */
  protected entrySite(below: Function): SiteRef | undefined {
    return entrySite(below, this.capturePolicy());
  }

  /** "A query object of this library was built here": `below` is the patched function the app called. */
  protected startTrail(below: Function, facts?: TrailFacts, ctx?: Context): Trail {
    return startTrail(this.library, this.capturePolicy(), below, facts, ctx);
  }

  /** A module's main exports: `patch` calls `wrapMethod` on its classes; it may return other exports to use. */
  protected patchModule(name: string, versions: string[], patch: Patch): InstrumentationNodeModuleDefinition {
    return new InstrumentationNodeModuleDefinition(name, versions, ...this.patchAndUnpatch(patch));
  }

  /** A file inside a module: as patchModule. */
  protected patchFile(name: string, versions: string[], patch: Patch): InstrumentationNodeModuleFile {
    return new InstrumentationNodeModuleFile(name, versions, ...this.patchAndUnpatch(patch));
  }

  /**
   * A library whose internals changed (a class gone, a getter that throws, a frozen prototype) must still
   * load: a patch that fails is counted and left out, and the module is returned as it was.
   */
  private patchAndUnpatch(patch: Patch): [(exports: ClassExports) => ClassExports, (exports?: ClassExports) => void] {
    return [
      (exports) => guarded(`patching ${this.library.name}`, () => patch(exports)) ?? exports,
      (exports) => guarded(`unpatching ${this.library.name}`, () => this.unpatchAll(exports)),
    ];
  }

  /**
   * Puts back replaced exports, and unwraps every wrapped method of the exports' classes (and statics).
   * Only data properties are read: a getter (pg-pool's `waitingCount` on the prototype) may throw.
   */
  private unpatchAll(exports: ClassExports | undefined): void {
    if (exports === undefined || exports === null) return;
    const values = exportedValues(exports);
    for (const [key, value] of values) {
      const original = (value as { [REPLACED]?: unknown } | undefined)?.[REPLACED];
      if (original !== undefined) (exports as Record<string, unknown>)[key] = original;
    }
    for (const target of [exports, ...values.map(([, value]) => value)]) {
      if (typeof target !== 'function' && typeof target !== 'object') continue;
      // the class itself (static methods) and its prototype
      const prototype = (target as { prototype?: unknown } | null)?.prototype;
      for (const holder of [target, prototype]) {
        if (holder === undefined || holder === null) continue;
        for (const [key, value] of ownValues(holder)) if (isWrapped(value)) this._unwrap(holder as Proto, key);
      }
    }
  }

  /** Wraps an own method of a class; a class or method missing in this version is skipped. */
  protected wrapMethod(
    target: { prototype?: Proto } | undefined,
    name: string,
    wrapper: (original: Method) => Method,
  ): void {
    const proto = target?.prototype;
    if (proto === undefined || proto === null || !isOwnMethod(proto, name)) return;
    if (isWrapped(proto[name])) this._unwrap(proto, name);
    this._wrap(proto, name, wrapper);
  }

  /** Wraps an own static method of a class (inherited by the app's subclasses, e.g. sequelize models). */
  protected wrapStatic(target: unknown, name: string, wrapper: (original: Method) => Method): void {
    const holder = target as Proto | undefined;
    if (typeof holder !== 'function' || !isOwnMethod(holder, name)) return;
    if (isWrapped(holder[name])) this._unwrap(holder, name);
    this._wrap(holder as Record<string, Method>, name, wrapper as never);
  }

  /**
   * Bundled libraries (esbuild's `__toCommonJS`) export read-only getters: the patch returns a plain copy
   * of the exports, whose functions `replaceExport` can then replace.
   */
  protected writableCopy(exports: ClassExports): ClassExports {
    const copy: Record<string, unknown> = {};
    for (const key of Object.keys(exports)) copy[key] = (exports as Record<string, unknown>)[key];
    if ((exports as { __esModule?: boolean }).__esModule) Object.defineProperty(copy, '__esModule', { value: true });
    return copy as ClassExports;
  }

  /**
   * Replaces a function or class a file exports, for what cannot be reached on a prototype (a class's
   * constructor, a module-level factory). Callers inside the library see it only where they read the
   * export at call time: CommonJS `(0, mod_1.fn)()`, and ESM live bindings under the OTel loader hook.
   */
  protected replaceExport(exports: ClassExports, name: string, replacement: (original: any) => unknown): void {
    const current = (exports as Record<string, unknown>)[name] as { [REPLACED]?: unknown } | undefined;
    if (typeof current !== 'function') return;
    const original = current[REPLACED] ?? current;
    const replaced = replacement(original) as { [REPLACED]?: unknown };
    replaced[REPLACED] = original;
    (exports as Record<string, unknown>)[name] = replaced;
  }
}

/** An own data property holding a function: a getter is not called, a value of another kind is not wrapped. */
function isOwnMethod(holder: object, name: string): boolean {
  const descriptor = Object.getOwnPropertyDescriptor(holder, name);
  return descriptor !== undefined && typeof descriptor.value === 'function';
}

/** A module's exports, getters included (bundlers export through getters). */
function exportedValues(exports: object): [string, unknown][] {
  const values: [string, unknown][] = [];
  for (const key of Object.keys(exports)) {
    try {
      values.push([key, (exports as Record<string, unknown>)[key]]);
    } catch {
      // an export whose getter throws holds nothing querytrail patched
    }
  }
  return values;
}

/** The own data properties of a class or prototype, without calling its getters. */
function ownValues(holder: object): [string, unknown][] {
  const values: [string, unknown][] = [];
  for (const key of Object.getOwnPropertyNames(holder)) {
    const descriptor = Object.getOwnPropertyDescriptor(holder, key);
    if (descriptor !== undefined && 'value' in descriptor) values.push([key, descriptor.value]);
  }
  return values;
}
