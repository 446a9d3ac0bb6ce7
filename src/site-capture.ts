import { CallSite, resolveSite, SiteRef, StackCapture } from './callsite';
import type { CapturePolicy } from './config';
import type { Phase } from './scope';
import type { StatementInfo } from './statement';
import { lineageRoot, Trail } from './trail';

/**
 * A statement shape confirmed at one site this many times is then only re-checked: on its SAMPLE_EVERY-th run,
 * then at twice the interval after each re-check that names the same site, MAX_DOUBLINGS times at most. A
 * re-check costs a stack capture (at prisma's depth ~120 000 instructions): at 1 in 64, 1 900 a prisma call.
 */
const CONFIRMATIONS = 3;
const SAMPLE_EVERY = 64;
const MAX_DOUBLINGS = 4; // 64 → 1 024
/** Statements an eager call's line is known to send (a find and its batched form); past this, always capture. */
const MAX_CALL_STATEMENTS = 4;
const MAX_SHAPES = 10_000;
/** Under `lean`, how long every construction is captured after a hazard lacked a site. */
const ON_DEMAND_MS = 10 * 60_000;

interface ShapeSites {
  /** The site its captures named; undefined when they named none (no application frame on that stack). */
  site: CallSite | undefined;
  /** An eager call's: the statements its first queries sent (see eagerCallSent). */
  statements?: StatementInfo[];
  confirmed: number;
  sinceCheck: number;
  /** Seen at more than one site, or a hazard fired without one: always capture. */
  alwaysCapture: boolean;
}

/** Where a query object, or the first of its derivation chain, was built. */
export type SiteKind = 'construction' | 'origin';
/** Routes and job names whose sites are learned apart; past this many, the rest share the table of no scope. */
const MAX_SCOPES = 1000;

/**
 * Statement shapes and their sites, learned apart per route or job (siteScopeOf): the same statement sent
 * from two routes is sent from two lines, and a site learned in one must not name the other's.
 */
class LearnedSites {
  private readonly byScope = new Map<unknown, Map<string, ShapeSites>>();

  shapes(scopeKey: unknown): Map<string, ShapeSites> {
    let shapes = this.byScope.get(scopeKey);
    if (shapes === undefined) {
      if (this.byScope.size >= MAX_SCOPES && scopeKey !== undefined) return this.shapes(undefined);
      this.byScope.set(scopeKey, (shapes = new Map()));
    }
    return shapes;
  }
}

/** A call that runs what it builds: what its line is learned per, besides the patched function. */
export interface EagerCall {
  /** The model, repository or client the app called it on; undefined: never learned, always captured. */
  receiver: object | undefined;
  /** The route or job (siteScopeOf). */
  scopeKey: unknown;
  /** Set by constructionSite: where its line is learned, for eagerCallSent. */
  learning?: LearnedCall;
}

/** Where an eager call's line is learned (opaque outside this file). */
export type LearnedCall = object;

/** Eager calls' lines, per route or job, patched function and receiver. */
class LearnedCalls {
  private readonly byScope = new Map<unknown, WeakMap<Function, WeakMap<object, ShapeSites>>>();
  /**
   * The slot found last: the same call again (a loop, a handler's calls of one model) skips the three lookups
   * (optimised, in a loop: 314 instructions a lookup, 78 remembered; a miss costs 40 more). Slots are never
   * dropped: a remembered one stays right. It holds one receiver strongly (the tables hold them weakly) until
   * another call takes its place.
   */
  private lastScopeKey: unknown;
  private lastBelow: Function | undefined;
  private lastReceiver: object | undefined;
  private lastSlot: ShapeSites | undefined;

  slot(scopeKey: unknown, below: Function, receiver: object): ShapeSites {
    const last = this.lastSlot;
    if (
      last !== undefined &&
      this.lastReceiver === receiver &&
      this.lastBelow === below &&
      this.lastScopeKey === scopeKey
    ) {
      return last;
    }
    const slot = this.find(scopeKey, below, receiver);
    this.lastScopeKey = scopeKey;
    this.lastBelow = below;
    this.lastReceiver = receiver;
    this.lastSlot = slot;
    return slot;
  }

  private find(scopeKey: unknown, below: Function, receiver: object): ShapeSites {
    let byFunction = this.byScope.get(scopeKey);
    if (byFunction === undefined) {
      if (this.byScope.size >= MAX_SCOPES && scopeKey !== undefined) return this.find(undefined, below, receiver);
      this.byScope.set(scopeKey, (byFunction = new WeakMap()));
    }
    let byReceiver = byFunction.get(below);
    if (byReceiver === undefined) byFunction.set(below, (byReceiver = new WeakMap()));
    let slot = byReceiver.get(receiver);
    if (slot === undefined) byReceiver.set(receiver, (slot = unlearned()));
    return slot;
  }
}

/**
 * When querytrail pays for a stack capture; each instrumentation's `capture` option is its policy. A capture
 * in a real request costs more than the whole OTel pg instrumentation adds per query, so sites are learned
 * wherever they repeat: per statement shape and route or job, a site is captured until seen at one line three
 * times, then re-checked on its 64th run, and at doubling intervals while re-checks confirm it, up to every
 * 1 024th; seen at two lines, captured every time. A shape whose captures name no application frame (a
 * thenable sending from its own `then`: drizzle) learns that too, and is not captured at the driver; its
 * completion site is learned the same way. Query objects built at init are always captured (unformatted until
 * a span or hazard needs them). `auto` captures every other one where it is built; `lean` learns the line of
 * calls that run what they build, and captures other objects made in requests and jobs only on demand (see
 * constructionSite); `all` also every driver call; `off` nothing.
 */
export class SiteCapture {
  private readonly executions = new LearnedSites();
  private readonly eagerCalls = new LearnedCalls();
  private readonly completions = new LearnedSites();
  /** Formatted construction and origin sites, per library. */
  private readonly objectSites: Record<SiteKind, Map<string, LearnedSites>> = {
    construction: new Map(),
    origin: new Map(),
  };
  private captureConstructionsUntil = 0;

  /**
   * Called synchronously where a query object is built; `below` is querytrail's patched function.
   * A capture costs 5–20 µs here (V8 materialises the app's optimised frames). `lean` takes one at init
   * (rare, and what init hazards name); for a call that runs what it builds (`eager`: the capture is its
   * execution site), until its line is learned per route or job, patched function and receiver (the model,
   * repository or client: see eagerSite); and for other objects made in requests and jobs only for a while
   * after a hazard named an object built without one. `auto` captures every one.
   */
  constructionSite(below: Function, phase: Phase, policy: CapturePolicy, eager?: EagerCall): SiteRef | undefined {
    if (policy === 'off') return undefined;
    if (policy !== 'lean' || phase === 'init') return new StackCapture(below);
    if (eager !== undefined) return this.eagerSite(below, eager);
    return Date.now() < this.captureConstructionsUntil ? new StackCapture(below) : undefined;
  }

  /**
   * An eager call's line, learned like execution sites: captured until three captures named one line, then
   * re-checked like them (recheckInterval); captured every time once two lines were seen for the same (route or
   * job, patched function, receiver) — the same model method called from two lines of one handler.
   */
  private eagerSite(below: Function, call: EagerCall): SiteRef | undefined {
    const { receiver, scopeKey } = call;
    if (receiver === undefined) return new StackCapture(below);
    const learned = this.eagerCalls.slot(scopeKey, below, receiver);
    call.learning = learned;
    if (!learned.alwaysCapture && learned.confirmed >= CONFIRMATIONS) {
      if (++learned.sinceCheck < recheckInterval(learned)) return learned.site;
      learned.sinceCheck = 0;
    }
    const capture = new StackCapture(below);
    if (!learned.alwaysCapture) {
      // resolved now, not when a span formats it: prisma sends concurrent calls as one query, under one of
      // their trails, and a capture no span formats would teach nothing (learning would not end)
      const site = capture.resolve();
      if (!capture.cutShort) confirm(learned, site);
    }
    return capture;
  }

  /**
   * The first query of an eager call. A call learned at one line that sends a statement that line has not
   * sent (by fingerprint: `IN` lists of any length are one) may come from another line (the same model
   * method elsewhere in the handler) or from the same line in another form (prisma batches concurrent
   * `findUnique`s into one `IN` query): the line is checked again, its next calls captured until two more
   * captures name it; one naming another line has them captured for good (confirm).
   */
  eagerCallSent(learning: LearnedCall, statement: StatementInfo): void {
    const learned = learning as ShapeSites;
    const sent = (learned.statements ??= []);
    if (sent.some((s) => s.fingerprint === statement.fingerprint && s.parsed === statement.parsed)) return;
    if (sent.length >= MAX_CALL_STATEMENTS) {
      learned.alwaysCapture = true;
      return;
    }
    // a keyword analysis made before the parser was loaded has another fingerprint: not another statement
    const another = sent.some((s) => s.parsed === statement.parsed);
    sent.push(statement);
    if (another && learned.confirmed > 1) {
      learned.confirmed = 1;
      learned.sinceCheck = 0;
    }
  }

  /** Called synchronously in the application's call into the driver; `below` is the driver entry point. */
  executionSite(shape: string, below: Function, policy: CapturePolicy, scopeKey: unknown): SiteRef | undefined {
    if (policy === 'off') return undefined;
    if (policy !== 'all') {
      const learned = confirmedSites(this.executions.shapes(scopeKey), shape);
      if (learned !== undefined) return learned.site;
    }
    return new StackCapture(below);
  }

  /**
   * A thenable that sends its query synchronously from its own `then` (drizzle) reaches the driver before
   * V8 has linked the app's `await` to anything: the capture at the call finds no application frame. The
   * driver's completion handler runs in the awaiting chain, so a capture there names the awaiting line.
   * Called when a query object's span is recorded without an execution site; `below` is that handler.
   */
  completionSite(shape: string, below: Function, policy: CapturePolicy, scopeKey: unknown): CallSite | undefined {
    if (policy === 'off') return undefined;
    const shapes = this.completions.shapes(scopeKey);
    const learned = policy === 'all' ? undefined : confirmedSites(shapes, shape);
    if (learned !== undefined) return learned.site;
    const capture = new StackCapture(below);
    const site = capture.resolve();
    if (!capture.cutShort) learn(shapes, shape, site);
    return site;
  }

  /**
   * The construction (or derivation origin) site of a query object, for span attributes and request
   * ledgers. Formatting a capture costs as much as taking it, so per (library, statement shape) captures are
   * formatted until one site is confirmed, then at its re-checks; hazard messages always format their own
   * capture.
   */
  objectSite(
    kind: SiteKind,
    library: string,
    shape: string,
    ref: SiteRef | undefined,
    scopeKey: unknown,
  ): CallSite | undefined {
    if (!(ref instanceof StackCapture) || ref.isResolved) return resolveSite(ref);
    let sites = this.objectSites[kind].get(library);
    if (sites === undefined) this.objectSites[kind].set(library, (sites = new LearnedSites()));
    const byShape = sites.shapes(scopeKey);
    const learned = confirmedSites(byShape, shape);
    if (learned !== undefined) return learned.site;
    const site = ref.resolve();
    if (!ref.cutShort) learn(byShape, shape, site);
    return site;
  }

  /** Feeds back an execution-site capture once resolved (when its query finishes). */
  learn(shape: string, ref: SiteRef | undefined, site: CallSite | undefined, scopeKey: unknown): void {
    if (ref instanceof StackCapture && !ref.cutShort) learn(this.executions.shapes(scopeKey), shape, site);
  }

  /**
   * A hazard fired: where a site it should name was not recorded, make sure the next occurrence has it —
   * the execution site of this shape every time, and (under `lean`) constructions for a while, when the
   * hazard names where its query object was built (or named no site at all).
   */
  hazardFired(
    shape: string,
    executed: CallSite | undefined,
    trail: Trail | undefined,
    namesObject: boolean,
    scopeKey: unknown,
  ): void {
    if (executed === undefined && trail === undefined) this.captureEveryTime(shape, scopeKey);
    if (
      namesObject &&
      trail !== undefined &&
      [trail, lineageRoot(trail), ...(trail.parts ?? [])].some((t) => t.site === undefined)
    ) {
      this.captureConstructionsUntil = Date.now() + ON_DEMAND_MS;
    }
  }

  private captureEveryTime(shape: string, scopeKey: unknown): void {
    const shapes = this.executions.shapes(scopeKey);
    const known = shapes.get(shape);
    // captures that named no application frame would name none again (a line of the app's own that does
    // call it is still found by the re-checks); capturing on every run would only cost
    if (known?.confirmed !== undefined && known.confirmed >= CONFIRMATIONS && known.site === undefined) return;
    if (known) known.alwaysCapture = true;
    else if (shapes.size < MAX_SHAPES) {
      shapes.set(shape, { site: undefined, confirmed: 0, sinceCheck: 0, alwaysCapture: true });
    }
  }
}

/** Runs of a confirmed shape between two re-checks: doubled by each re-check that confirmed its site. */
function recheckInterval(known: ShapeSites): number {
  return SAMPLE_EVERY << Math.min(known.confirmed - CONFIRMATIONS, MAX_DOUBLINGS);
}

/** The confirmed sites of a shape, except on the runs where it is checked again (recheckInterval). */
function confirmedSites(shapes: Map<string, ShapeSites>, shape: string): ShapeSites | undefined {
  const known = shapes.get(shape);
  if (known === undefined || known.alwaysCapture || known.confirmed < CONFIRMATIONS) return undefined;
  if (++known.sinceCheck < recheckInterval(known)) return known;
  known.sinceCheck = 0; // reset now: concurrent runs must not all sample before this one is learned
  return undefined;
}

function learn(shapes: Map<string, ShapeSites>, shape: string, site: CallSite | undefined): void {
  let known = shapes.get(shape);
  if (known === undefined) {
    if (shapes.size >= MAX_SHAPES) return;
    shapes.set(shape, (known = unlearned()));
  }
  confirm(known, site);
}

function unlearned(): ShapeSites {
  return { site: undefined, confirmed: 0, sinceCheck: 0, alwaysCapture: false };
}

/** One more capture named `site`: it confirms the site learned, or shows a second one. */
function confirm(known: ShapeSites, site: CallSite | undefined): void {
  if (known.confirmed === 0) {
    known.site = site;
    known.confirmed = 1;
  } else if (known.site === site) {
    known.confirmed++;
  } else {
    known.alwaysCapture = true;
  }
}
