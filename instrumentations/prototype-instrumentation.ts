import { InstrumentationBase, InstrumentationConfig, InstrumentationNodeModuleFile, isWrapped } from '@opentelemetry/instrumentation';

export type Method = (this: any, ...args: any[]) => any; // eslint-disable-line @typescript-eslint/no-explicit-any
export type Proto = Record<string, Method>;
export type ClassExports = Record<string, { prototype: Proto } | undefined> & { prototype?: Proto };

/**
 * ORM instrumentations patch methods of classes inside a library's own files (builders, compilers,
 * runners). This base wires a file's classes to wrappers, and unwraps whatever it wrapped.
 */
export abstract class PrototypeInstrumentation<C extends InstrumentationConfig> extends InstrumentationBase<C> {
  /** `patch` receives the file's exports and calls `wrapMethod` on its classes. */
  protected patchFile(name: string, versions: string[], patch: (exports: ClassExports) => void): InstrumentationNodeModuleFile {
    return new InstrumentationNodeModuleFile(
      name,
      versions,
      (exports: ClassExports) => {
        patch(exports);
        return exports;
      },
      (exports: ClassExports | undefined) => {
        for (const target of [exports, ...Object.values(exports ?? {})]) {
          const proto = (target as { prototype?: Proto } | undefined)?.prototype;
          if (proto === undefined) continue;
          for (const key of Object.getOwnPropertyNames(proto)) if (isWrapped(proto[key])) this._unwrap(proto, key);
        }
      },
    );
  }

  /** Wraps an own method of a class; a class or method missing in this version is skipped. */
  protected wrapMethod(target: { prototype?: Proto } | undefined, name: string, wrapper: (original: Method) => Method): void {
    const proto = target?.prototype;
    if (proto === undefined || !Object.prototype.hasOwnProperty.call(proto, name)) return;
    if (isWrapped(proto[name])) this._unwrap(proto, name);
    this._wrap(proto, name, wrapper);
  }
}
