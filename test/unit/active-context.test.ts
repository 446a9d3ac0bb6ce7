import { context, Context, createContextKey, ROOT_CONTEXT } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { activeContext, withContext } from '../../src/active-context';
import { internalErrorCount } from '../../src/guard';

const KEY = createContextKey('test key');

/** A manager that does more than read its storage: it marks every context it hands out. */
class MarkingManager extends AsyncLocalStorageContextManager {
  override active(): Context {
    return super.active().setValue(KEY, `marked ${String(super.active().getValue(KEY))}`);
  }
}

function register(manager: AsyncLocalStorageContextManager): void {
  context.disable();
  context.setGlobalContextManager(manager.enable());
}

afterEach(() => {
  jest.restoreAllMocks();
  context.disable();
});

describe('activeContext and withContext', () => {
  it('is ROOT_CONTEXT, and runs the function, when no manager is registered', () => {
    context.disable();
    expect(activeContext()).toBe(ROOT_CONTEXT);
    expect(withContext(ROOT_CONTEXT.setValue(KEY, 1), (arg: number) => arg + 1, 1)).toBe(2);
  });

  it("reads and runs an AsyncLocalStorageContextManager's storage without calling the manager", async () => {
    register(new AsyncLocalStorageContextManager());
    const active = jest.spyOn(AsyncLocalStorageContextManager.prototype, 'active');
    const run = jest.spyOn(AsyncLocalStorageContextManager.prototype, 'with');
    const ctx = ROOT_CONTEXT.setValue(KEY, 'entered');
    const seen = await withContext(
      ctx,
      async (arg: string) => {
        const before = activeContext();
        await new Promise((resolve) => setImmediate(resolve));
        return [arg, before, activeContext(), context.active()];
      },
      'arg',
    );
    expect(seen).toEqual(['arg', ctx, ctx, ctx]);
    expect(active).toHaveBeenCalledTimes(1); // the test's own context.active()
    expect(run).not.toHaveBeenCalled();
    expect(activeContext()).toBe(ROOT_CONTEXT);
  });

  it('goes through the API for a manager that overrides what it reads, and follows the manager registered last', () => {
    register(new MarkingManager());
    const ctx = ROOT_CONTEXT.setValue(KEY, 'entered');
    expect(withContext(ctx, () => activeContext().getValue(KEY), undefined)).toBe('marked entered');
    register(new AsyncLocalStorageContextManager());
    expect(withContext(ctx, () => activeContext().getValue(KEY), undefined)).toBe('entered');
    register(new MarkingManager());
    expect(activeContext().getValue(KEY)).toBe('marked undefined');
  });

  it('goes through the API for a manager whose methods were replaced on the instance', () => {
    const manager = new AsyncLocalStorageContextManager();
    const original = manager.active.bind(manager);
    manager.active = () => original().setValue(KEY, 'replaced');
    register(manager);
    expect(activeContext().getValue(KEY)).toBe('replaced');
  });

  it('goes through the API, and counts an internal error, when looking at the manager throws', () => {
    const manager = new AsyncLocalStorageContextManager();
    const storage = (manager as unknown as { _asyncLocalStorage: unknown })._asyncLocalStorage;
    let reads = 0;
    // the first read (querytrail's) throws; the manager's own reads work
    Object.defineProperty(manager, '_asyncLocalStorage', {
      get() {
        if (reads++ === 0) throw new Error('not readable');
        return storage;
      },
    });
    const errors = internalErrorCount();
    register(manager);
    const ctx = ROOT_CONTEXT.setValue(KEY, 'entered');
    expect(withContext(ctx, () => activeContext(), undefined)).toBe(ctx);
    expect(internalErrorCount()).toBe(errors + 1);
  });
});
