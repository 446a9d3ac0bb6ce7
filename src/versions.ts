import { diag } from '@opentelemetry/api';
import { satisfies } from 'semver';

const reported = new Set<string>();

/**
 * A library loaded at a version outside every range an instrumentation supports is never patched by
 * OpenTelemetry, silently. Said once per (library, version), on stderr and in the diag log, with what
 * still works.
 */
export function checkSupportedVersion(
  library: string,
  version: string | undefined,
  ranges: readonly string[],
  consequence: string,
  write?: (line: string) => void,
): boolean {
  if (version === undefined || ranges.some((range) => satisfies(version, range))) return true;
  reportOnce(
    `querytrail: ${library} ${version} is not supported (supported: ${ranges.join(', ')}); ${consequence}`,
    write,
  );
  return false;
}

/** One stderr line and a diag warning, once per text. */
export function reportOnce(line: string, write: (line: string) => void = (text) => process.stderr.write(`${text}\n`)) {
  if (reported.has(line)) return;
  reported.add(line);
  write(line);
  diag.warn(line);
}
