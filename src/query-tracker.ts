import { Attributes, context, Histogram, Meter, Span, SpanKind, SpanStatusCode, Tracer } from '@opentelemetry/api';
import { ATTR, DURATION_BUCKETS, DURATION_HISTOGRAM } from './attributes';
import { resolveSite, SiteRef } from './callsite';
import type { DatabaseRef, ServerFacts } from './database';
import { guarded } from './guard';
import { Hazard, HAZARD_RULES, HazardRule, QueryExecution } from './hazards';
import { HazardContext, HazardReporter, QueryTrailHazardError } from './report';
import type { Runtime } from './runtime';
import { currentScope, describeScope, Phase, phaseOf, routeOf, Scope } from './scope';
import type { StatementInfo } from './statement';
import { executingTrail, Trail } from './trail';

/** What a driver instrumentation knows when the app hands it a query. */
export interface QueryStart {
  /** The driver (`pg`); an ORM's trail in the context overrides it. */
  library: string;
  statement: StatementInfo;
  /** The connection that will run it. */
  server: ServerFacts;
  /** Where the driver was called (see ExecutionSites). */
  site: SiteRef | undefined;
  parameters?: readonly unknown[];
}

/** One query in flight. */
export interface TrackedQuery {
  readonly span: Span;
  readonly start: QueryStart;
  readonly trail: Trail | undefined;
  readonly phase: Phase;
  readonly scope: Scope | undefined;
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
    const ran = start.server.ref;
    const bound = trail?.binding ?? ran;
    const now = Date.now();
    const attributes: Attributes = {
      ...ran.serverAttributes,
      ...start.statement.attributes,
      ...start.server.ranAttributes,
      ...bound.boundAttributes,
      [ATTR.LIBRARY]: trail?.library ?? start.library,
      [ATTR.EXECUTION_PHASE]: phase,
      [ATTR.CONSTRUCTION_PHASE]: trail?.phase ?? phase,
      [ATTR.CONSTRUCTION_AGE_MS]: trail ? now - trail.createdAt : 0,
    };
    const route = routeOf(scope);
    if (route !== undefined) attributes[ATTR.ROUTE] = route;
    if (this.runtime.config.recordParameters && start.parameters) {
      start.parameters.forEach((value, i) => (attributes[`db.query.parameter.${i}`] = String(value)));
    }
    const span = this.tracer().startSpan(start.statement.summary, { kind: SpanKind.CLIENT, attributes }, ctx);
    const query: TrackedQuery = { span, start, trail, phase, scope, startedAt: performance.now(), hazardsPending: start.server.role === undefined, finished: false };
    if (query.hazardsPending) return { query };
    const hazards = this.judge(query);
    if (hazards.length === 0) return { query };
    return { query, rejection: this.strictError(hazards) };
  }

  /** Ends the span. `errorType` is the driver's classification of `error` (SQLSTATE for pg). */
  finish(query: TrackedQuery, error?: unknown, errorType?: string): void {
    if (query.finished) return;
    query.finished = true;
    const { span, start, trail } = query;
    guarded('query finish', () => {
      if (query.hazardsPending && start.server.role !== undefined) this.judge(query);
      let type: string | undefined;
      if (error !== undefined) {
        type = errorType ?? (error instanceof Error ? error.name : 'Error');
        span.setAttribute(ATTR.ERROR_TYPE, type);
        if (errorType !== undefined) span.setAttribute(ATTR.DB_RESPONSE_STATUS_CODE, errorType);
        span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      }
      if (span.isRecording()) this.recordSites(query);
      const metric: Attributes = {
        ...start.server.ref.serverAttributes,
        [ATTR.CONSTRUCTION_PHASE]: trail?.phase ?? query.phase,
      };
      if (start.statement.operation) metric[ATTR.DB_OPERATION_NAME] = start.statement.operation;
      if (start.server.role) metric[ATTR.RAN_ROLE] = start.server.role;
      if (type !== undefined) metric[ATTR.ERROR_TYPE] = type;
      this.histogram?.record((performance.now() - query.startedAt) / 1000, metric);
    });
    span.end();
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
    if (site) span.setAttributes(site.codeAttributes);
    const construction = trail ? resolveSite(trail.site) : site;
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
        if (site === undefined) this.runtime.sites.captureNextTime(start.statement.text);
        return site;
      },
    };
    const hazards: Hazard[] = [];
    for (const rule of this.rules) {
      const hazard = guarded('hazard rule', () => rule(trail, execution));
      if (hazard) hazards.push(hazard);
    }
    if (hazards.length) {
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

function describeDatabase(ref: DatabaseRef, role: string | undefined, how: string): string {
  const where = `${ref.address ?? 'localhost'}:${ref.port ?? ''}/${ref.namespace ?? ''}`;
  const name = ref.alias === where ? where : `${ref.alias} (${where})`;
  return role ? `${name}, ${how} ${role}` : name;
}
