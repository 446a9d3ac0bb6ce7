import { trace } from '@opentelemetry/api';
import { guarded } from './guard';
import { getRuntime } from './runtime';
import { jobScope, withScope } from './scope';

/**
 * Marks background work (a queue consumer, a cron tick) so its queries are attributed to the job rather than
 * to `init`, and judged per job like a request's (n_plus_one, duplicate_query). Returns what `fn` returns;
 * for a promise, a promise that settles as it does once the job is over (the one `fn` returned is not
 * observed directly: a handler on it would hide its rejection from Node's unhandled-rejection check). Any
 * other result, a lazy thenable included (awaiting a query builder runs it), ends the job at once.
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
  if (!(result instanceof Promise)) {
    ended();
    return result;
  }
  return result.then(
    (value: unknown) => {
      ended();
      return value;
    },
    (err: unknown) => {
      ended();
      throw err;
    },
  ) as T;
}
