import type { SiteRef } from './callsite';
import type { LearnedCall } from './site-capture';
import type { DatabaseRef } from './database';
import type { Phase } from './scope';

/**
 * What an instrumentation tells the core about its library, once: its name in telemetry and the advice
 * hazard messages give in its terms. The core never names a library itself.
 */
export interface LibraryProfile {
  /** `querytrail.library`: `pg`, `knex`, … */
  readonly name: string;
  /** How to read from the primary with this library (read_after_write), e.g. "pass `useMaster: true`". */
  readonly primaryReadAdvice?: string;
  /** How to fetch per-row lookups in one query with this library (n_plus_one), e.g. "use `whereIn`". */
  readonly batchAdvice?: string;
}

/**
 * `query`: a query object (builder, ORM call, raw SQL the app runs); `fragment`: raw SQL meant to be
 * embedded in a query; `transaction`: a transaction's own statements (BEGIN, COMMIT).
 */
export type TrailKind = 'query' | 'fragment' | 'transaction';

/** What messages call an embedded object of each kind, unless the instrumentation names it. */
export const KIND_LABELS: Readonly<Record<TrailKind, string>> = {
  query: 'sub-query',
  fragment: 'raw fragment',
  transaction: 'transaction',
};

/**
 * The provenance record of a query object: where it was built, in which phase and scope, what it was bound
 * to, which object it was derived from, which query objects it embeds. Instrumentations state these facts
 * through src/seam.ts; the driver layer reads the trail of the query being executed.
 */
export interface Trail {
  readonly library: LibraryProfile;
  readonly kind: TrailKind;
  /** What messages call the object when it is embedded: `sub-query`, `raw fragment`, `include of Tag`. */
  readonly label: string;
  readonly site: SiteRef | undefined;
  readonly phase: Phase;
  /** Request or job id; undefined at init. */
  readonly scopeId: number | undefined;
  readonly createdAt: number;
  /**
   * The database the object is bound to. A library that learns it only when the object first compiles
   * (the binding lives on the executor, not the builder) sets it then.
   */
  binding: DatabaseRef | undefined;
  /** The object this one was derived from (a clone, a chained builder). */
  readonly parent: Trail | undefined;
  /** Query objects compiled into this one (sub-queries, raw fragments), recorded when compiled. */
  parts: Trail[] | undefined;
  /** The library re-bound this object, for good, to the database of the query that embedded it. */
  rebound?: boolean;
  /** The library's name for the pool it picked for this run, where it has several (`read`/`write`, …). */
  pool?: string;
  /** An eager call whose line is learned (src/site-capture.ts): told its first statement, once. */
  learnedCall?: LearnedCall;
  /** The transaction the app handed this object to, when the library runs it outside that transaction. */
  transaction?: Trail;
}

/** The first object of the derivation chain: a request-time clone of an init-time base leads back to it. */
export function lineageRoot(trail: Trail): Trail {
  let root = trail;
  while (root.parent !== undefined) root = root.parent;
  return root;
}
