import { CallSite, resolveSite, SiteRef, StackCapture } from './callsite';
import type { CapturePolicy } from './config';
import type { Phase } from './scope';
import { lineageRoot, Trail } from './trail';

/** A statement shape confirmed at one site this many times is then only re-checked every SAMPLE_EVERY runs. */
const CONFIRMATIONS = 3;
const SAMPLE_EVERY = 64;
const MAX_SHAPES = 10_000;
/** Under `lean`, how long every construction is captured after a hazard lacked a site. */
const ON_DEMAND_MS = 10 * 60_000;

interface ShapeSites {
  site: CallSite | undefined;
  confirmed: number;
  sinceCheck: number;
  /** Seen at more than one site, or a hazard fired without one: always capture. */
  alwaysCapture: boolean;
}

/**
 * When querytrail pays for a stack capture; each instrumentation's `capture` option is its policy.
 * Query objects are captured where they are built — unformatted, formatted only if a span or a hazard
 * needs the site — except under `off`. Execution sites repeat the same statement from the same place,
 * and a capture costs about half of what the whole OTel pg instrumentation adds per query, so under
 * `auto` each statement shape is captured until it has been seen at one site three times, then re-checked
 * on every 64th run; a shape seen at two sites is captured every time. `lean` is `auto` with constructions
 * in requests and jobs captured on demand (see constructionSite).
 */
export class SiteCapture {
  private readonly shapes = new Map<string, ShapeSites>();
  private captureConstructionsUntil = 0;

  /**
   * Called synchronously where a query object is built; `below` is querytrail's patched function.
   * A capture costs ~20 µs here, so `lean` takes one at init (rare, and what init hazards name) and,
   * in requests and jobs, only for a while after a hazard involved an object built without one.
   */
  constructionSite(below: Function, phase: Phase, policy: CapturePolicy): SiteRef | undefined {
    if (policy === 'off') return undefined;
    if (policy === 'lean' && phase !== 'init' && Date.now() >= this.captureConstructionsUntil) return undefined;
    return new StackCapture(below);
  }

  /** Called synchronously in the application's call into the driver; `below` is the driver entry point. */
  executionSite(shape: string, below: Function, policy: CapturePolicy): SiteRef | undefined {
    if (policy === 'off') return undefined;
    if (policy !== 'all') {
      const learned = this.learnedSite(shape);
      if (learned !== undefined) return learned;
    }
    return new StackCapture(below);
  }

  /**
   * The site of a query object for span attributes. Formatting a capture costs as much as taking it,
   * so per (library, statement shape) captures are formatted until one site is confirmed, then one in
   * 64; hazard messages always format their own capture.
   */
  siteForSpan(shape: string, ref: SiteRef | undefined): CallSite | undefined {
    if (!(ref instanceof StackCapture) || ref.isResolved) return resolveSite(ref);
    const learned = this.learnedSite(shape);
    if (learned !== undefined) return learned;
    const site = ref.resolve();
    this.learn(shape, ref, site);
    return site;
  }

  /** The confirmed site of a shape, except on every SAMPLE_EVERY-th run, when it is checked again. */
  private learnedSite(shape: string): CallSite | undefined {
    const known = this.shapes.get(shape);
    if (known === undefined || known.alwaysCapture || known.confirmed < CONFIRMATIONS) return undefined;
    if (++known.sinceCheck < SAMPLE_EVERY) return known.site;
    known.sinceCheck = 0; // reset now: concurrent runs must not all sample before this one is learned
    return undefined;
  }

  /** Feeds back a capture once resolved (at span end), so the next runs can skip capturing. */
  learn(shape: string, ref: SiteRef | undefined, site: CallSite | undefined): void {
    if (!(ref instanceof StackCapture)) return;
    let known = this.shapes.get(shape);
    if (known === undefined) {
      if (this.shapes.size >= MAX_SHAPES) return;
      this.shapes.set(shape, (known = { site, confirmed: 1, sinceCheck: 0, alwaysCapture: false }));
    } else if (known.site === site) {
      known.confirmed++;
    } else {
      known.alwaysCapture = true;
    }
  }

  /**
   * A hazard fired: where a site it should name was not recorded, make sure the next occurrence has it —
   * the execution site of this shape every time, and (under `lean`) constructions for a while.
   */
  hazardFired(shape: string, executed: CallSite | undefined, trail: Trail | undefined): void {
    if (executed === undefined && trail === undefined) this.captureEveryTime(shape);
    if (trail !== undefined && [trail, lineageRoot(trail), ...(trail.parts ?? [])].some((t) => t.site === undefined)) {
      this.captureConstructionsUntil = Date.now() + ON_DEMAND_MS;
    }
  }

  private captureEveryTime(shape: string): void {
    const known = this.shapes.get(shape);
    if (known) known.alwaysCapture = true;
    else if (this.shapes.size < MAX_SHAPES) {
      this.shapes.set(shape, { site: undefined, confirmed: 0, sinceCheck: 0, alwaysCapture: true });
    }
  }
}
