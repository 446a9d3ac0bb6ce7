import type { SiteRef } from './callsite';
import type { CapturePolicy } from './config';
import { Scope, siteScopeOf } from './scope';
import type { Execution } from './seam';
import type { SiteCapture } from './site-capture';

/**
 * Which application line ran a query (`code.*`): the one place that decides it. Driver instrumentations
 * call it synchronously where the driver is called; `below` is that patched entry point.
 *
 * - The site the instrumentation took where the app called it synchronously (`entrySite`), used where
 *   no async frame leads back to the app (streams).
 * - An object run by the call that built it (an eager ORM call, `from: 'construction'`): that call's
 *   construction capture, when one was taken.
 * - Otherwise a capture here, at the driver: for raw driver calls the app's own frame is on the stack; an
 *   ORM reaches the driver after its own awaits, and V8's async stack trace then lists the app frame that
 *   awaited the query object (`at async handler (app.js:12)`). Captures here are learned per statement
 *   shape (SiteCapture.executionSite), so a hot query is not captured on every run.
 */
export function executionSite(
  execution: Execution | undefined,
  shape: string,
  below: Function,
  capture: CapturePolicy,
  sites: SiteCapture,
  scope: Scope | undefined,
): SiteRef | undefined {
  const from = execution?.from;
  if (typeof from === 'object') return from;
  if (from === 'construction' && execution?.trail.site !== undefined) return execution.trail.site;
  return sites.executionSite(shape, below, capture, siteScopeOf(scope));
}
