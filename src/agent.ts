/**
 * `node --require querytrail/agent app.js`: starts OpenTelemetry with querytrail's instrumentations and
 * the HTTP/express ones. Loaded twice, it starts once; it never throws into the app. With
 * QUERYTRAIL_ENABLED=false it loads nothing else: the app runs as without it.
 */
import { switchedOff } from './kill-switch';

const STARTED = Symbol.for('querytrail.agent.started');
const holder = globalThis as { [STARTED]?: { shutdown(): Promise<void> } | null };
if (holder[STARTED] === undefined) {
  if (switchedOff(process.env)) {
    holder[STARTED] = null;
  } else {
    try {
      holder[STARTED] = (require('./agent-start') as typeof import('./agent-start')).start() ?? null;
    } catch (err) {
      holder[STARTED] = null;
      process.stderr.write(`querytrail: the agent could not start and is disabled: ${(err as Error).message}\n`);
    }
  }
}
