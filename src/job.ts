import { trace } from '@opentelemetry/api';
import { guarded } from './guard';
import { getRuntime } from './runtime';
import { jobScope, withScope } from './scope';

/**
 * Marks background work (a queue consumer, a cron tick) so its queries are attributed to the job rather
 * than to `init`, and judged per job like a request's (n_plus_one, duplicate_query). Returns what `fn`
 * returns; when that is a promise, the job ends when it settles.
 */
export function runInJob<T>(name: string, fn: () => T): T {
  const scope = jobScope(name, trace.getActiveSpan());
  const ended = () => guarded('job end', () => getRuntime().tracker.scopeEnded(scope));
  let result: T;
  try {
    result = withScope(scope, fn);
  } catch (err) {
    ended();
    throw err;
  }
  if (isThenable(result)) result.then(ended, ended);
  else ended();
  return result;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === 'function';
}
