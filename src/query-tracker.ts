import {
  Attributes,
  Context,
  Counter,
  Histogram,
  Meter,
  Span,
  SpanKind,
  SpanStatusCode,
  Tracer,
} from '@opentelemetry/api';
import {
  ATTR,
  DURATION_BUCKETS,
  DURATION_HISTOGRAM,
  HAZARD_COUNTER_ROUTE,
  REQUEST_QUERIES_BUCKETS,
  REQUEST_QUERIES_HISTOGRAM,
  SCOPE_JOB,
  UNTRACKED_READS_COUNTER,
  IN_FLIGHT_GAUGE,
} from './attributes';
import { CONSTRUCTION_KEYS, ORIGIN_KEYS, resolveSite, setSiteAttributes, SiteRef, StackCapture } from './callsite';
import type { CapturePolicy } from './config';
import type { DatabaseRef, DbRole, ServerFacts } from './database';
import { DURATION_DESCRIPTION, durationProducers } from './duration-histogram';
import { internalErrorOccurred } from './guard';
import { applyHazardRules, Hazard, NAMES_QUERY_OBJECT, QueryExecution } from './hazards';
import { describeBinding } from './hazards/describe';
import { hashRead, ReadFacts, ScopeLedger, transactionControlOf } from './ledger';
import { HazardPipeline, QueryTrailHazardError } from './report';
import { describeScope, Phase, phaseOf, routeOf, Scope, siteScopeOf } from './scope';
import type { SiteCapture } from './site-capture';
import type { StatementInfo } from './statement';
import { LibraryProfile, lineageRoot, Trail } from './trail';

/** How long a finished query's span waits for the answer to a question about its server's role. */
const ROLE_ANSWER_WAIT_MS = 2000;
/**
 * Through the metrics API (no reader was given querytrail's producer: src/duration-histogram.ts), query
 * durations are handed to the histogram in batches of this many (and all of them before every metric
 * collection): recorded one by one between the driver's work, the SDK's attribute hashing cost ~3× more.
 */
const DURATION_BATCH = 128;

/** Everything the tracker needs to know about one query, given by the driver instrumentation. */
export interface QueryStart {
  /** The driver's instrumentation: its spans carry its instrumentation scope. */
  tracer: Tracer;
  /** The driver's profile; the trail's library, when an ORM runs the query, names it instead. */
  driver: LibraryProfile;
  /** The context the app called the driver in: the span's parent. */
  ctx: Context;
  scope: Scope | undefined;
  /** The query object being executed (src/seam.ts), if an ORM instrumentation said so. */
  trail: Trail | undefined;
  /** Where the app ran it (src/execution-site.ts). */
  site: SiteRef | undefined;
  statement: StatementInfo;
  /** The text as sent (with its literals): hashed with the values for duplicate_query, never kept. */
  text: string;
  /** The connection that will run it. */
  server: ServerFacts;
  parameters?: readonly unknown[];
  /** Opt-in: record parameter values on the span. */
  recordParameters: boolean;
  /** The driver instrumentation's capture policy. */
  capture: CapturePolicy;
}

interface AttributeMemo {
  ran: Attributes;
  bound: DatabaseRef;
  library: LibraryProfile;
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
  readonly phase: Phase;
  readonly memo: AttributeMemo;
  readonly startedAt: number;
  /**
   * Hazards are judged at finish: the server's role was unknown at start (pre-14 PostgreSQL, probe pending),
   * or a write goes to a connection last seen as a replica, which a promotion may have made a primary (the
   * server says so with this query's response); in strict mode the driver confirms the role first instead.
   */
  hazardsPending: boolean;
  /** The role the connection had when the query started. */
  readonly roleAtStart: DbRole | undefined;
  /** A read in a request or job: its place in the scope's ledger. */
  read: ReadFacts | undefined;
  finished: boolean;
}

/**
 * The driver-independent life of one query: exactly one CLIENT span with the telemetry contract's
 * attributes, hazard rules, hazard reporting, the duration histogram. Driver instrumentations call
 * `start` in the app's call and `finish` when the driver reports the outcome.
 */
export class QueryTracker {
  private histogram: Histogram | undefined;
  private queriesPerScope: Histogram | undefined;
  private untrackedReads: Counter | undefined;
  /** Durations (s) not yet handed to the histogram, and their attributes: parallel arrays. */
  private readonly durations: number[] = [];
  private readonly durationAttributes: Attributes[] = [];
  /** Queries started and not finished: the `querytrail.queries.in_flight` gauge. */
  private inFlight = 0;
  /** One entry per statement shape: the last combination it ran with (see memoFor). */
  private readonly attributeMemo = new WeakMap<StatementInfo, AttributeMemo>();

  constructor(
    private readonly sites: SiteCapture,
    private readonly hazards: HazardPipeline,
    private readonly nPlusOneThreshold: number,
  ) {}

  useMeter(meter: Meter): void {
    this.histogram = meter.createHistogram(DURATION_HISTOGRAM, {
      description: DURATION_DESCRIPTION,
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS },
    });
    this.queriesPerScope = meter.createHistogram(REQUEST_QUERIES_HISTOGRAM, {
      description: 'Queries per request (by route) or job (by name)',
      unit: '{query}',
      advice: { explicitBucketBoundaries: REQUEST_QUERIES_BUCKETS },
    });
    this.untrackedReads = meter.createCounter(UNTRACKED_READS_COUNTER, {
      description: 'Reads not checked for n_plus_one and duplicate_query: the request tracked too many shapes',
      unit: '{query}',
    });
    // observed before the SDK collects its histograms: every buffered duration is in each collection
    meter
      .createObservableUpDownCounter(IN_FLIGHT_GAUGE, {
        description: 'Queries sent and not answered yet',
        unit: '{query}',
      })
      .addCallback((result) => {
        this.flushDurations();
        result.observe(this.inFlight);
      });
  }

  /** Hands the buffered durations to the histogram. */
  flushDurations(): void {
    const histogram = this.histogram;
    const { durations, durationAttributes } = this;
    try {
      if (histogram !== undefined) {
        for (let i = 0; i < durations.length; i++) histogram.record(durations[i], durationAttributes[i]);
      }
    } catch (err) {
      internalErrorOccurred('duration histogram', err);
    } finally {
      durations.length = 0;
      durationAttributes.length = 0;
    }
  }

  /**
   * Starts the span; returns the error to fail the call with instead of sending it, in strict mode.
   *
   * Size: the SDK stores attributes one keyed store at a time in a plain object, which V8 turns into a hash
   * table at the 20th property. Such a span cost 12 µs more a query (drizzle, with 22: GC copies the
   * large tables of the spans waiting in the batch processor). Common spans stay at 19 or fewer: the
   * attributes that would repeat another (the construction phase when it is the execution phase, the
   * construction site when it is `code.*`) are not sent (a test in test/unit/query-tracker.test.ts).
   */
  start(start: QueryStart): { query: TrackedQuery; rejection?: QueryTrailHazardError } {
    const { trail, scope } = start;
    if (trail?.learnedCall !== undefined) {
      // once per call, at its first query (a copy made through a pool before that may tell another statement:
      // that only turns captures back on)
      this.sites.eagerCallSent(trail.learnedCall, start.statement);
      trail.learnedCall = undefined;
    }
    const phase = phaseOf(scope);
    const memo = this.memoFor(start, trail, phase);
    // The SDK validates every attribute given at creation twice; provenance is added once, and only
    // to spans that are recorded.
    const span = start.tracer.startSpan(
      start.statement.summary,
      { kind: SpanKind.CLIENT, attributes: memo.creation },
      start.ctx,
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
      if (start.recordParameters && start.parameters) {
        start.parameters.forEach((value, i) =>
          span.setAttribute(`${ATTR.DB_QUERY_PARAMETER_PREFIX}${i}`, String(value)),
        );
      }
    }
    const query: TrackedQuery = {
      span,
      start,
      phase,
      memo,
      startedAt: performance.now(),
      hazardsPending:
        start.server.role === undefined ||
        (start.server.role === 'replica' && start.statement.isWrite && !this.hazards.strictAny),
      roleAtStart: start.server.role,
      read: undefined,
      finished: false,
    };
    this.inFlight++;
    if (scope !== undefined) {
      scope.queries++;
      this.trackTransaction(start, scope);
      if (!start.statement.isWrite && start.statement.reads.length) query.read = this.trackRead(start, scope);
    }
    if (query.hazardsPending) return { query };
    return { query, rejection: this.judge(query) };
  }

  /**
   * The attributes every run of a statement shares while it runs on the same database, in the same
   * role, bound to the same database, from the same library and phase: built once, not per query.
   */
  private memoFor(start: QueryStart, trail: Trail | undefined, phase: Phase): AttributeMemo {
    const ran = start.server.ranAttributes;
    const bound = trail?.binding ?? start.server.ref;
    const library = trail?.library ?? start.driver;
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
    if (bound !== start.server.ref) Object.assign(provenance, bound.boundLocationAttributes);
    provenance[ATTR.LIBRARY] = library.name;
    provenance[ATTR.EXECUTION_PHASE] = phase;
    // only when it tells something (a span's size: see `start`)
    if (constructionPhase !== phase) provenance[ATTR.CONSTRUCTION_PHASE] = constructionPhase;
    const metric: Attributes = Object.assign({}, start.server.ref.serverAttributes);
    metric[ATTR.CONSTRUCTION_PHASE] = constructionPhase;
    if (start.statement.operation) metric[ATTR.DB_OPERATION_NAME] = start.statement.operation;
    if (start.server.role) metric[ATTR.RAN_ROLE] = start.server.role;
    const entry: AttributeMemo = {
      ran,
      bound,
      library,
      phase,
      constructionPhase,
      creation,
      provenance,
      metric: sortedByKey(metric),
    };
    this.attributeMemo.set(start.statement, entry);
    return entry;
  }

  /**
   * Ends the span. `errorType` is the driver's classification of `error` (SQLSTATE for pg). `completion`:
   * the driver's handler of the outcome when it runs in the app's awaiting chain (a promise's reaction).
   */
  finish(query: TrackedQuery, error?: unknown, errorType?: string, completion?: Function): void {
    if (query.finished) return;
    query.finished = true;
    this.inFlight--;
    const { span, start } = query;
    const ms = performance.now() - query.startedAt;
    let type: string | undefined;
    // try/catch rather than guarded(): no closure allocated per query on the hot path
    try {
      if (error !== undefined) {
        type = errorType ?? (error instanceof Error ? error.name : 'Error');
        span.setAttribute(ATTR.ERROR_TYPE, type);
        if (errorType !== undefined) span.setAttribute(ATTR.DB_RESPONSE_STATUS_CODE, errorType);
        span.setStatus({
          code: SpanStatusCode.ERROR,
          message: statusMessage(error, errorType, start.recordParameters),
        });
      }
      // a capture teaches the site of its shape whether or not the span is sampled: unlearned, every run
      // of it would be captured again
      if (start.site instanceof StackCapture && start.site !== start.trail?.site) {
        this.sites.learn(start.statement.text, start.site, start.site.resolve(), siteScopeOf(start.scope));
      }
      // in the driver's completion handler: the awaiting line is on the stack now, not later
      if (span.isRecording()) this.recordSites(query, completion);
      if (error === undefined && start.statement.isWrite && start.scope !== undefined) {
        this.recordWrite(start, start.scope);
      }
      if (start.scope !== undefined) start.scope.queryMs += ms;
      if (query.read !== undefined) {
        query.read.group.finishedRuns++;
        query.read.group.finishedMs += ms;
      }
      if (query.hazardsPending && start.server.role === undefined && start.server.roleAsked) {
        // the server was just asked its role: the span waits for the answer (ending at its own time)
        const endTime = performance.timeOrigin + performance.now();
        start.server.whenRoleKnown(() => this.conclude(query, type, ms, endTime), ROLE_ANSWER_WAIT_MS);
        return;
      }
    } catch (err) {
      internalErrorOccurred('query finish', err);
    }
    this.conclude(query, type, ms);
  }

  /**
   * What needs the server's role: hazards judged late, `querytrail.ran.role` when the role arrived or
   * changed while the query ran (the first query on a connection to a pre-14 server, or the first after a
   * promotion: in_hot_standby comes back with its response), the duration histogram; then the span ends.
   */
  private conclude(query: TrackedQuery, type: string | undefined, ms: number, endTime?: number): void {
    const { span, start } = query;
    try {
      const role = start.server.role;
      const roleChanged = role !== query.roleAtStart && role !== undefined;
      if (roleChanged) span.setAttribute(ATTR.RAN_ROLE, role);
      if (query.hazardsPending && role !== undefined) this.judge(query);
      let metric = query.memo.metric;
      if (type !== undefined || roleChanged) {
        metric = { ...metric };
        if (type !== undefined) metric[ATTR.ERROR_TYPE] = type;
        if (roleChanged) metric[ATTR.RAN_ROLE] = role;
      }
      if (durationProducers.length !== 0) {
        for (let i = 0; i < durationProducers.length; i++) durationProducers[i].record(ms / 1000, metric);
      } else {
        this.durations.push(ms / 1000);
        this.durationAttributes.push(metric);
        if (this.durations.length >= DURATION_BATCH) this.flushDurations();
      }
    } catch (err) {
      internalErrorOccurred('query finish', err);
    }
    try {
      span.end(endTime);
    } catch (err) {
      // a span processor that throws (an exporter's fault) must not reach the app's query
      internalErrorOccurred('span end', err);
    }
  }

  /** BEGIN and COMMIT/ROLLBACK, per connection, in the request's or job's ledger. */
  private trackTransaction(start: QueryStart, scope: Scope): void {
    const control = transactionControlOf(start.statement);
    if (control === 'begin') {
      (scope.ledger ??= new ScopeLedger()).begin(start.server, start.server.ref, start.trail?.site ?? start.site);
    } else if (control === 'end') {
      scope.ledger?.end(start.server);
    }
  }

  /** The tables a request or job wrote (a write that succeeded ran on a primary): read_after_write, duplicates. */
  private recordWrite(start: QueryStart, scope: Scope): void {
    const namespace = start.server.ref.namespace;
    const tables = start.statement.writes;
    if (namespace === undefined || tables.length === 0) return;
    (scope.ledger ??= new ScopeLedger()).recordWrite(namespace, tables, start.trail?.site ?? start.site);
  }

  /**
   * A read in a request or job, counted per (shape, database, site) and hashed with its values, for
   * n_plus_one and duplicate_query. The site is the line that ran it, else the query object's.
   */
  private trackRead(start: QueryStart, scope: Scope): ReadFacts | undefined {
    const { trail } = start;
    const site =
      resolveSite(start.site) ??
      (trail &&
        this.sites.objectSite(
          'construction',
          trail.library.name,
          start.statement.text,
          trail.site,
          siteScopeOf(scope),
        ));
    const hash = hashRead(start.text, start.parameters);
    const read = (scope.ledger ??= new ScopeLedger()).recordRead(start.statement, start.server.ref, site, hash);
    if (read === undefined) this.untrackedReads?.add(1);
    return read;
  }

  /**
   * A request or job is over: its query count on the queries-per-request histogram, and the count and
   * the total query time on its span (the HTTP server span), while that span is still open.
   */
  scopeEnded(scope: Scope): void {
    const attributes: Attributes = {};
    if (scope.kind === 'job') attributes[SCOPE_JOB] = scope.name;
    else {
      const route = routeOf(scope);
      if (route !== undefined) attributes[HAZARD_COUNTER_ROUTE] = route;
    }
    this.queriesPerScope?.record(scope.queries, attributes);
    if (scope.span?.isRecording()) {
      scope.span.setAttribute(ATTR.SCOPE_QUERIES, scope.queries);
      scope.span.setAttribute(ATTR.SCOPE_QUERY_TIME_MS, Math.round(scope.queryMs * 1000) / 1000);
    }
  }

  /**
   * `code.*` (the execution site) on every recorded span. Raw driver calls are built where they run: their
   * construction is `code.*`, not said twice. A query object's construction site, when it is another, and
   * for a derived one the origin of its derivation chain, come from its trail.
   */
  private recordSites(query: TrackedQuery, completion: Function | undefined): void {
    const { span, start } = query;
    const { trail, statement } = start;
    const scopeKey = siteScopeOf(start.scope);
    let site = resolveSite(start.site);
    if (site === undefined && trail !== undefined && completion !== undefined) {
      site = this.sites.completionSite(statement.text, completion, start.capture, scopeKey);
    }
    if (site) span.setAttributes(site.codeAttributes);
    if (trail === undefined) return;
    const library = trail.library.name;
    const construction = this.sites.objectSite('construction', library, statement.text, trail.site, scopeKey);
    if (construction !== undefined && construction !== site)
      setSiteAttributes(span, CONSTRUCTION_KEYS, construction, site);
    if (trail.parent === undefined) return;
    const origin = lineageRoot(trail);
    const originSite = this.sites.objectSite('origin', library, statement.text, origin.site, scopeKey);
    if (originSite !== undefined && originSite !== construction) {
      setSiteAttributes(span, ORIGIN_KEYS, originSite, construction);
    }
    span.setAttribute(ATTR.ORIGIN_PHASE, origin.phase);
    span.setAttribute(ATTR.ORIGIN_AGE_MS, Date.now() - origin.createdAt);
  }

  /** Runs the rules; reports what they find; returns the error strict mode fails the query with. */
  private judge(query: TrackedQuery): QueryTrailHazardError | undefined {
    query.hazardsPending = false;
    const { start } = query;
    const { trail, scope, statement, server } = start;
    const execution: QueryExecution = {
      statement,
      ran: server.ref,
      server,
      bound: trail?.binding ?? server.ref,
      phase: query.phase,
      scope,
      executionSite: () => resolveSite(start.site),
      parameters: start.parameters,
      now: Date.now(),
      ledger: scope?.ledger,
      read: query.read,
      library: trail?.library ?? start.driver,
      nPlusOneThreshold: this.nPlusOneThreshold,
    };
    const hazards: Hazard[] = [];
    try {
      applyHazardRules(trail, execution, hazards);
    } catch (err) {
      internalErrorOccurred('hazard rule', err);
    }
    if (hazards.length === 0) return undefined;
    if (query.read !== undefined && hazards.some((h) => h.code === 'n_plus_one')) query.read.group.reported = true;
    const namesObject = hazards.some((h) => h.site === undefined || NAMES_QUERY_OBJECT.has(h.code));
    this.sites.hazardFired(statement.text, resolveSite(start.site), trail, namesObject, siteScopeOf(scope));
    return this.hazards.report(hazards, {
      span: query.span,
      namespace: execution.ran.namespace,
      route: routeOf(scope),
      context: () => ({
        bound: describeDatabase(execution.bound, execution.bound.declaredRole, 'declared'),
        ran: describeDatabase(execution.ran, server.role, 'server says'),
        scope: describeScope(scope),
      }),
    });
  }
}

/**
 * The metrics SDK hashes every record's attributes after sorting their keys: keys given in order are one run
 * to its sort, found in a pass.
 */
function sortedByKey(attributes: Attributes): Attributes {
  const sorted: Attributes = {};
  for (const key of Object.keys(attributes).sort()) sorted[key] = attributes[key];
  return sorted;
}

/**
 * The span's status message. A server's error text quotes the values it failed on (`invalid input syntax
 * for type integer: "…"`, a literal near an unterminated quote, RAISE messages): unless parameter values
 * are opted in, only the error's name and SQLSTATE are exported. querytrail's own errors carry no values.
 */
function statusMessage(error: unknown, sqlState: string | undefined, valuesAllowed: boolean): string {
  if (error instanceof QueryTrailHazardError || valuesAllowed)
    return error instanceof Error ? error.message : String(error);
  const name = error instanceof Error ? error.name : typeof error;
  return sqlState === undefined ? name : `${name} (SQLSTATE ${sqlState})`;
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
