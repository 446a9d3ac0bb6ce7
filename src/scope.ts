import { Context, createContextKey, Span } from '@opentelemetry/api';
import { activeContext, withContext } from './active-context';
import { withValue } from './context-layer';
import type { ScopeLedger } from './ledger';

export type Phase = 'init' | 'request' | 'job';

/** The parts of an HTTP request querytrail reads; express adds `route` and `baseUrl` as it routes. */
export interface RequestLike {
  method?: string;
  url?: string;
  baseUrl?: string;
  route?: { path?: unknown };
}

export interface RequestScope {
  readonly kind: 'request';
  readonly id: number;
  readonly startedAt: number;
  readonly request: RequestLike;
  /** Created on the first query (see QueryTracker). */
  ledger?: ScopeLedger;
  /** Queries run so far, and their total duration in milliseconds. */
  queries: number;
  queryMs: number;
  /** The request's own span (the HTTP server span), which gets the query count and time. */
  span?: Span;
}

export interface JobScope {
  readonly kind: 'job';
  readonly id: number;
  readonly startedAt: number;
  readonly name: string;
  ledger?: ScopeLedger;
  queries: number;
  queryMs: number;
  span?: Span;
}

export type Scope = RequestScope | JobScope;

// The scope lives in the OpenTelemetry context (itself one AsyncLocalStorage): a second ALS would make
// every await in the app pay twice (research/PERFORMANCE.md).
const SCOPE_KEY = createContextKey('querytrail.scope');
let nextScopeId = 1;

export function currentScope(ctx: Context = activeContext()): Scope | undefined {
  return ctx.getValue(SCOPE_KEY) as Scope | undefined;
}

/** Outside any request or job — module load, startup, timers nobody scoped — the phase is `init`. */
export function phaseOf(scope: Scope | undefined): Phase {
  return scope === undefined ? 'init' : scope.kind;
}

export function requestScope(request: RequestLike, span?: Span): RequestScope {
  return { kind: 'request', id: nextScopeId++, startedAt: Date.now(), request, queries: 0, queryMs: 0, span };
}

export function jobScope(name: string, span?: Span): JobScope {
  return { kind: 'job', id: nextScopeId++, startedAt: Date.now(), name, queries: 0, queryMs: 0, span };
}

export function withScope<T>(scope: Scope, fn: () => T, ctx: Context = activeContext()): T {
  return withContext(withValue(ctx, SCOPE_KEY, scope), fn, undefined);
}

/**
 * What call sites are learned per (src/site-capture.ts): the request's matched route (express's route
 * object: one per route), or the job's name; undefined outside both, and for requests no router matched.
 */
export function siteScopeOf(scope: Scope | undefined): unknown {
  if (scope === undefined) return undefined;
  return scope.kind === 'job' ? scope.name : scope.request.route;
}

/**
 * The route template of a request (`GET /patients/:id`) when a router (express) has matched one,
 * read at the moment of the query because routing happens after the request starts.
 */
export function routeOf(scope: Scope | undefined): string | undefined {
  if (scope?.kind !== 'request') return undefined;
  const { method, baseUrl, route } = scope.request;
  if (route === undefined || typeof route.path !== 'string') return undefined;
  return `${method ?? 'GET'} ${baseUrl ?? ''}${route.path}`;
}

/** For messages: the route, or the request line without its query string. */
export function describeScope(scope: Scope | undefined): string {
  if (scope === undefined) return 'init';
  if (scope.kind === 'job') return `job "${scope.name}"`;
  const requestLine = `${scope.request.method ?? ''} ${(scope.request.url ?? '').split('?')[0]}`.trim();
  return `request ${routeOf(scope) ?? requestLine}`;
}
