import { Attributes, context, Histogram, Meter, Span, SpanKind, SpanStatusCode, Tracer } from '@opentelemetry/api';
import { ATTR, DURATION_BUCKETS, DURATION_HISTOGRAM } from './attributes';
import { resolveSite, SiteRef } from './callsite';
import type { DatabaseRef, ServerFacts } from './database';
import { internalErrorOccurred } from './guard';
import { Hazard, HAZARD_RULES, HazardRule, QueryExecution } from './hazards';
import { describeBinding } from './hazards/describe';
import { ScopeLedger, transactionControlOf } from './ledger';
import { HazardContext, HazardReporter, QueryTrailHazardError } from './report';
import type { Runtime } from './runtime';
import { currentScope, describeScope, Phase, phaseOf, routeOf, Scope } from './scope';
import type { StatementInfo } from './statement';
import { executingTrail, lineageRoot, Trail } from './trail';

/** What a driver instrumentation knows when the app hands it a query. */
export interface QueryStart {
  /** The driver (`pg`); an ORM's trail in the context overrides it. */
  library: string;
  statement: StatementInfo;
  /** The connection that will run it. */
  server: ServerFacts;
  /** Where the driver was called (see SiteCapture). */
  site: SiteRef | undefined;
  parameters?: readonly unknown[];
}

interface AttributeMemo {
  ran: Attributes;
  bound: DatabaseRef;
  library: string;
  phase: Phase;
  constructionPhase: Phase;
  /** The semantic-convention attributes samplers may read, given at span creation. */
  creation: Attributes;
  /** querytrail's provenance attributes, added only to spans that are recording. */
  provenance: Attributes;
  /** The duration histogram's attributes for a successful run. */
  metric: Attributes;
}

/** One query in flight. */
export interface TrackedQuery {
  readonly span: Span;
  readonly start: QueryStart;
  readonly trail: Trail | undefined;
  readonly phase: Phase;
  readonly scope: Scope | undefined;
  readonly memo: AttributeMemo;
  readonly startedAt: number;
  /** The server's role was unknown at start (pre-14 PostgreSQL, probe pending): hazards are judged at finish. */
  hazardsPending: boolean;
  finished: boolean;
}

/**
 * The driver-independent life of one query: exactly one CLIENT span with the telemetry contract's
 * attributes, hazard rules, hazard reporting, the duration histogram. Driver instrumentations call
 * `start` in the app's call and `finish` when the driver reports the outcome.
 */
export class QueryTracker {
  private histogram: Histogram | undefined;
  private readonly reporter: HazardReporter;
  /** One entry per statement shape: the last combination it ran with (see memoFor). */
  private readonly attributeMemo = new WeakMap<StatementInfo, AttributeMemo>();

  constructor(
    private readonly tracer: () => Tracer,
    private readonly runtime: Runtime,
    private readonly rules: readonly HazardRule[] = HAZARD_RULES,
  ) {
    this.reporter = new HazardReporter(runtime.warnings);
  }

  createInstruments(meter: Meter): void {
    this.histogram = meter.createHistogram(DURATION_HISTOGRAM, {
      description: 'Duration of database client operations',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.reporter.createInstruments(meter);
  }

  /** Starts the span; returns the error to fail the call with instead of sending it, in strict mode. */
  start(start: QueryStart): { query: TrackedQuery; rejection?: QueryTrailHazardError } {
    const ctx = context.active();
    const scope = currentScope(ctx);
    const trail = executingTrail(ctx);
    const phase = phaseOf(scope);
    const memo = this.memoFor(start, trail, phase);
    // The SDK validates every attribute given at creation twice; provenance is added once, and only
    // to spans that are recorded.
    const span = this.tracer().startSpan(
      start.statement.summary,
      { kind: SpanKind.CLIENT, attributes: memo.creation },
      ctx,
    );
    if (span.isRecording()) {
      span.setAttributes(memo.provenance);
      if (trail !== undefined) {
        span.setAttribute(ATTR.CONSTRUCTION_AGE_MS, Date.now() - trail.createdAt);
        if (trail.pool !== undefined) span.setAttribute(ATTR.BOUND_POOL, trail.pool);
        const namespaces = partNamespaces(trail);
        if (namespaces.length > 1) span.setAttribute(ATTR.PARTS_NAMESPACES, namespaces);
      }
      const route = routeOf(scope);
      if (route !== undefined) span.setAttribute(ATTR.ROUTE, route);
      if (this.runtime.config.recordParameters && start.parameters) {
        start.parameters.forEach((value, i) => span.setAttribute(`db.query.parameter.${i}`, String(value)));
      }
    }
    const query: TrackedQuery = {
      span,
      start,
      trail,
      phase,
      scope,
      memo,
      startedAt: performance.now(),
      hazardsPending: start.server.role === undefined,
      finished: false,
    };
    if (scope !== undefined) this.trackTransaction(query, scope);
    if (query.hazardsPending) return { query };
    const hazards = this.judge(query);
    if (hazards.length === 0) return { query };
    return { query, rejection: this.strictError(hazards) };
  }

  /**
   * The attributes every run of a statement shares while it runs on the same database, in the same
   * role, bound to the same database, from the same library and phase: built once, not per query.
   */
  private memoFor(start: QueryStart, trail: Trail | undefined, phase: Phase): AttributeMemo {
    const ran = start.server.ranAttributes;
    const bound = trail?.binding ?? start.server.ref;
    const library = trail?.library ?? start.library;
    const constructionPhase = trail?.phase ?? phase;
    const memo = this.attributeMemo.get(start.statement);
    if (
      memo !== undefined &&
      memo.ran === ran &&
      memo.bound === bound &&
      memo.library === library &&
      memo.phase === phase &&
      memo.constructionPhase === constructionPhase
    ) {
      return memo;
    }
    const creation: Attributes = Object.assign({}, start.server.ref.serverAttributes, start.statement.attributes);
    const provenance: Attributes = Object.assign({}, ran, bound.boundAttributes);
    provenance[ATTR.LIBRARY] = library;
    provenance[ATTR.EXECUTION_PHASE] = phase;
    provenance[ATTR.CONSTRUCTION_PHASE] = constructionPhase;
    if (trail === undefined) provenance[ATTR.CONSTRUCTION_AGE_MS] = 0;
    const metric: Attributes = Object.assign({}, start.server.ref.serverAttributes);
    metric[ATTR.CONSTRUCTION_PHASE] = constructionPhase;
    if (start.statement.operation) metric[ATTR.DB_OPERATION_NAME] = start.statement.operation;
    if (start.server.role) metric[ATTR.RAN_ROLE] = start.server.role;
    const entry: AttributeMemo = { ran, bound, library, phase, constructionPhase, creation, provenance, metric };
    this.attributeMemo.set(start.statement, entry);
    return entry;
  }

  /** Ends the span. `errorType` is the driver's classification of `error` (SQLSTATE for pg). */
  finish(query: TrackedQuery, error?: unknown, errorType?: string): void {
    if (query.finished) return;
    query.finished = true;
    const { span, start } = query;
    // try/catch rather than guarded(): no closure allocated per query on the hot path
    try {
      // The role arrived after the query started (first query on a connection to a pre-14 server).
      const lateRole = query.hazardsPending ? start.server.role : undefined;
      if (lateRole !== undefined) {
        span.setAttribute(ATTR.RAN_ROLE, lateRole);
        this.judge(query);
      }
      let type: string | undefined;
      if (error !== undefined) {
        type = errorType ?? (error instanceof Error ? error.name : 'Error');
        span.setAttribute(ATTR.ERROR_TYPE, type);
        if (errorType !== undefined) span.setAttribute(ATTR.DB_RESPONSE_STATUS_CODE, errorType);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      }
      if (span.isRecording()) this.recordSites(query);
      if (error === undefined && start.statement.isWrite && query.scope?.kind === 'request')
        this.recordWrite(query, query.scope);
      let metric = query.memo.metric;
      if (type !== undefined || lateRole !== undefined) {
        metric = { ...metric };
        if (type !== undefined) metric[ATTR.ERROR_TYPE] = type;
        if (lateRole !== undefined) metric[ATTR.RAN_ROLE] = lateRole;
      }
      this.histogram?.record((performance.now() - query.startedAt) / 1000, metric);
    } catch (err) {
      internalErrorOccurred('query finish', err);
    }
    span.end();
  }

  /** BEGIN and COMMIT/ROLLBACK, per connection, in the request's or job's ledger. */
  private trackTransaction(query: TrackedQuery, scope: Scope): void {
    const control = transactionControlOf(query.start.statement);
    if (control === 'begin')
      (scope.ledger ??= new ScopeLedger()).begin(
        query.start.server,
        query.start.server.ref,
        query.trail?.site ?? query.start.site,
      );
    else if (control === 'end') scope.ledger?.end(query.start.server);
  }

  /** A table this request wrote on a primary, for read_after_write. */
  private recordWrite(query: TrackedQuery, scope: Scope): void {
    const { start, trail } = query;
    const namespace = start.server.ref.namespace;
    if (start.server.role !== 'primary' || namespace === undefined || start.statement.collection === undefined) return;
    (scope.ledger ??= new ScopeLedger()).recordWrite(namespace, start.statement.collection, trail?.site ?? start.site);
  }

  private strictError(hazards: readonly Hazard[]): QueryTrailHazardError | undefined {
    const blocking = hazards.filter((h) => this.runtime.config.strict.has(h.code));
    return blocking.length ? new QueryTrailHazardError(blocking) : undefined;
  }

  /** Execution site on every recorded span; the construction site is the trail's, or the execution site for raw calls. */
  private recordSites(query: TrackedQuery): void {
    const { span, start, trail } = query;
    const site = resolveSite(start.site);
    this.runtime.sites.learn(start.statement.text, start.site, site);
    if (trail === undefined) {
      if (site) span.setAttributes(site.rawCallAttributes);
      return;
    }
    if (site) span.setAttributes(site.codeAttributes);
    const construction = this.runtime.sites.siteForSpan(`${trail.library}\u0000${start.statement.text}`, trail.site);
    if (construction) span.setAttributes(construction.constructionAttributes);
  }

  private judge(query: TrackedQuery): Hazard[] {
    query.hazardsPending = false;
    const { start, trail, scope } = query;
    const execution: QueryExecution = {
      statement: start.statement,
      ran: start.server.ref,
      server: start.server,
      bound: trail?.binding ?? start.server.ref,
      phase: query.phase,
      scope,
      executionSite: () => {
        const site = resolveSite(start.site);
        if (site === undefined && trail === undefined) this.runtime.sites.captureNextTime(start.statement.text);
        return site;
      },
      parameters: start.parameters,
      now: Date.now(),
      ledger: scope?.ledger,
    };
    const hazards: Hazard[] = [];
    for (const rule of this.rules) {
      try {
        const hazard = rule(trail, execution);
        if (hazard) hazards.push(hazard);
      } catch (err) {
        internalErrorOccurred('hazard rule', err);
      }
    }
    if (hazards.length) {
      if (
        trail !== undefined &&
        [trail, lineageRoot(trail), ...(trail.parts ?? [])].some((t) => t.site === undefined)
      ) {
        this.runtime.sites.captureConstructionsForAWhile();
      }
      const context = (): HazardContext => ({
        bound: describeDatabase(execution.bound, execution.bound.declaredRole, 'declared'),
        ran: describeDatabase(execution.ran, start.server.role, 'server says'),
        scope: describeScope(scope),
      });
      this.reporter.report(query.span, hazards, execution.ran.namespace, routeOf(scope), context);
    }
    return hazards;
  }
}

/** The distinct databases of a query object and its embedded parts. */
function partNamespaces(trail: Trail): string[] {
  if (trail.parts === undefined) return [];
  const namespaces = new Set<string>();
  for (const t of [trail, ...trail.parts]) if (t.binding?.namespace !== undefined) namespaces.add(t.binding.namespace);
  return [...namespaces];
}

function describeDatabase(ref: DatabaseRef, role: string | undefined, how: string): string {
  return role ? `${describeBinding(ref)}, ${how} ${role}` : describeBinding(ref);
}
