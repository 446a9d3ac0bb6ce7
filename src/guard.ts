import { diag } from '@opentelemetry/api';

/**
 * querytrail must never break the host app: every patch runs its own logic through `guarded`, which
 * swallows and counts the error. The count is exposed so tests and `diag` users can see that something
 * went wrong inside querytrail without the app ever noticing.
 */
let internalErrors = 0;

export function guarded<T>(what: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (err) {
    internalErrorOccurred(what, err);
    return undefined;
  }
}

export function internalErrorOccurred(what: string, err: unknown): void {
  internalErrors++;
  diag.error(`querytrail: internal error in ${what} (swallowed)`, err);
}

export function internalErrorCount(): number {
  return internalErrors;
}
