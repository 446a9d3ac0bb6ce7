// `node --import querytrail/agent app.mjs`: the ESM entry. It registers OpenTelemetry's loader hook so
// ESM builds of libraries can be patched too, then starts the same agent as `--require`.
import { createRequire, register } from 'node:module';
import { switchedOff } from './kill-switch.js';

// QUERYTRAIL_ENABLED=false: no loader hook either, so the app loads exactly as without the agent
if (!switchedOff(process.env)) {
  register('@opentelemetry/instrumentation/hook.mjs', import.meta.url);
  createRequire(import.meta.url)('./agent.js');
}
