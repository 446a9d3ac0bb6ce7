import {
  InstrumentationBase,
  InstrumentationConfig,
  InstrumentationNodeModuleFile,
  isWrapped,
} from '@opentelemetry/instrumentation';
import { ResultReuseReporter } from '../src/result-reuse';

export type Method = (this: any, ...args: any[]) => any; // eslint-disable-line @typescript-eslint/no-explicit-any
export type Proto = Record<string, Method>;
export type ClassExports = Record<string, { prototype: Proto } | undefined> & { prototype?: Proto };

/** On a replaced export: what it replaced, to put back on unpatch. */
const REPLACED = Symbol('querytrail.replaced');

/**
 * ORM instrumentations patch methods of classes inside a library's own files (builders, compilers,
 * runners). This base wires a file's classes to wrappers, and unwraps whatever it wrapped.
 */
export abstract class PrototypeInstrumentation<C extends InstrumentationConfig> extends InstrumentationBase<C> {
  private resultReuse: ResultReuseReporter | undefined;

  /** For ORMs whose query objects keep their result (see src/result-reuse.ts); made on first use. */
  protected get reuse(): ResultReuseReporter {
    return (this.resultReuse ??= new ResultReuseReporter(() => this.meter));
  }

  // InstrumentationBase calls this from its constructor too, before this class's fields exist.
  protected override _updateMetricInstruments(): void {
    this.resultReuse?.updateInstruments();
  }

  /** `patch` receives the file's exports and calls `wrapMethod` on its classes; it may return other exports to use. */
  protected patchFile(
    name: string,
    versions: string[],
    patch: (exports: ClassExports) => ClassExports | void,
  ): InstrumentationNodeModuleFile {
    return new InstrumentationNodeModuleFile(
      name,
      versions,
      (exports: ClassExports) => patch(exports) ?? exports,
      (exports: ClassExports | undefined) => {
        for (const [key, value] of Object.entries(exports ?? {})) {
          const original = (value as { [REPLACED]?: unknown } | undefined)?.[REPLACED];
          if (original !== undefined) (exports as Record<string, unknown>)[key] = original;
        }
        for (const target of [exports, ...Object.values(exports ?? {})]) {
          if (typeof target !== 'function' && typeof target !== 'object') continue;
          // the class itself (static methods) and its prototype
          for (const holder of [target as unknown as Proto, (target as { prototype?: Proto } | undefined)?.prototype]) {
            if (holder === undefined || holder === null) continue;
            for (const key of Object.getOwnPropertyNames(holder)) if (isWrapped(holder[key])) this._unwrap(holder, key);
          }
        }
      },
    );
  }

  /** Wraps an own method of a class; a class or method missing in this version is skipped. */
  protected wrapMethod(
    target: { prototype?: Proto } | undefined,
    name: string,
    wrapper: (original: Method) => Method,
  ): void {
    const proto = target?.prototype;
    if (proto === undefined || !Object.prototype.hasOwnProperty.call(proto, name)) return;
    if (isWrapped(proto[name])) this._unwrap(proto, name);
    this._wrap(proto, name, wrapper);
  }

  /** Wraps an own static method of a class (inherited by the app's subclasses, e.g. sequelize models). */
  protected wrapStatic(target: unknown, name: string, wrapper: (original: Method) => Method): void {
    const holder = target as Proto | undefined;
    if (typeof holder !== 'function' || !Object.prototype.hasOwnProperty.call(holder, name)) return;
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
    // eslint-disable-line @typescript-eslint/no-explicit-any
    const current = (exports as Record<string, unknown>)[name] as { [REPLACED]?: unknown } | undefined;
    if (typeof current !== 'function') return;
    const original = current[REPLACED] ?? current;
    const replaced = replacement(original) as { [REPLACED]?: unknown };
    replaced[REPLACED] = original;
    (exports as Record<string, unknown>)[name] = replaced;
  }
}
