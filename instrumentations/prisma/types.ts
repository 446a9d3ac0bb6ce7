import type { QuerytrailInstrumentationConfig } from '../../src/config';

export type PrismaInstrumentationConfig = QuerytrailInstrumentationConfig;

/** `new PrismaPg(poolOrConfig)`: the driver adapter factory a client is given. */
export interface PrismaPgFactory {
  adapterName?: string;
  externalPool?: unknown;
  config?: { connectionString?: string; host?: string; port?: number | string; database?: string };
}

/**
 * A PrismaClient as its constructor leaves it (the raw instance behind the proxy it returns): the
 * factory of PrismaPromises and the adapter.
 */
export interface PrismaRawClient {
  _originalClient?: PrismaRawClient;
  _engineConfig?: { adapter?: PrismaPgFactory };
  _createPrismaPromise: PrismaPromiseFactory;
}

/**
 * Runs `callback` (the query) on the first `then`, and keeps its result; batches call it per transaction.
 * `params`: a model call's model, action and arguments.
 */
export type PrismaPromiseFactory = (callback: (transaction?: unknown) => unknown, params?: unknown) => PrismaPromise;

export interface PrismaPromise {
  then: (...args: unknown[]) => unknown;
  catch: (...args: unknown[]) => unknown;
  finally: (...args: unknown[]) => unknown;
}

export type PrismaClientClass = new (...args: unknown[]) => object;
