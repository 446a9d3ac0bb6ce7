import { AsyncLocalStorage } from 'node:async_hooks';
import { context, Context, ContextManager, ROOT_CONTEXT } from '@opentelemetry/api';
import { guarded } from './guard';

/** Where the API keeps its globals (`@opentelemetry/api` 1.x): the registered context manager is `.context`. */
const API_GLOBALS = Symbol.for('opentelemetry.js.api.1');

let globals: { context?: ContextManager } | undefined;
let knownManager: ContextManager | undefined;
let storage: AsyncLocalStorage<Context> | undefined;

/**
 * The registered manager's AsyncLocalStorage, when the manager is a plain AsyncLocalStorageContextManager (what
 * the Node SDK registers); undefined for any other manager, or none. querytrail reads the active context two or
 * three times for each ORM call and enters one: through the API, each finds the manager again (two
 * symbol-keyed reads of globalThis and a version check) and `with` passes its arguments through two rest
 * parameters, together ~1 000 instructions a call. The manager is looked at again whenever another is registered.
 */
function managerStorage(): AsyncLocalStorage<Context> | undefined {
  globals ??= (globalThis as Record<symbol, typeof globals>)[API_GLOBALS];
  const manager = globals?.context;
  if (manager !== knownManager) {
    knownManager = manager;
    // looked at once per manager, on the hot path: whatever a manager does when looked at, the app is not told
    storage = manager === undefined ? undefined : guarded('context manager', () => storageOf(manager));
  }
  return storage;
}

function storageOf(manager: ContextManager): AsyncLocalStorage<Context> | undefined {
  // the manager the API itself uses (it ignores globals of an incompatible version)
  const api = context as unknown as { _getContextManager?: () => ContextManager };
  if (api._getContextManager?.() !== manager) return undefined;
  const prototype = Object.getPrototypeOf(manager) as ContextManager | null;
  const als = (manager as { _asyncLocalStorage?: unknown })._asyncLocalStorage;
  // a subclass, or methods replaced on the instance, may do more than read and run the storage
  if (prototype?.constructor?.name !== 'AsyncLocalStorageContextManager' || !(als instanceof AsyncLocalStorage)) {
    return undefined;
  }
  if (manager.active !== prototype.active || manager.with !== prototype.with) return undefined;
  return als as AsyncLocalStorage<Context>;
}

/** `context.active()`. */
export function activeContext(): Context {
  const als = managerStorage();
  return als === undefined ? context.active() : (als.getStore() ?? ROOT_CONTEXT);
}

/** `context.with(ctx, fn, undefined, arg)`: `fn(arg)` in `ctx`. */
export function withContext<T, A>(ctx: Context, fn: (arg: A) => T, arg: A): T {
  const als = managerStorage();
  return als === undefined ? context.with(ctx, fn, undefined, arg) : als.run(ctx, fn, arg);
}
