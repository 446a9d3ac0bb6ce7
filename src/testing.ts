/**
 * querytrail inside a test process that drives the app in-process (supertest): jest loads modules through
 * its own registry, which `--require querytrail/agent`'s hooks never see, and vitest's workers start without
 * it. `instrumentInProcess()` patches the libraries this process loads, through the same `require` the
 * app's modules get, and records every hazard so a test can fail with its message.
 */
import * as fs from 'node:fs';
import { isBuiltin } from 'node:module';
import * as path from 'node:path';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import type { InstrumentationModuleDefinition } from '@opentelemetry/instrumentation';
import { satisfies } from 'semver';
import { ConsoleWarnings } from '../exporters/console';
import { HttpScopeInstrumentation, INSTRUMENTATIONS } from '../instrumentations';
import type { QuerytrailOptions } from './config';
import { guarded } from './guard';
import type { Hazard } from './hazards/types';
import { configureQuerytrail } from './index';

export interface InProcessOptions extends QuerytrailOptions {
  /**
   * The `require` that loads the app's libraries. Default: querytrail's own, which under jest is the test
   * file's registry and resolves the libraries installed beside querytrail.
   */
  require?: NodeRequire;
}

/** The hazards seen in this process since the last `assertNoHazards()` or `takeHazards()`. */
export interface HazardRecorder {
  takeHazards(): Hazard[];
  /** Throws, with every hazard's readable warning, when any was seen; forgets them either way. */
  assertNoHazards(): void;
}

/** OpenTelemetry's own HTTP and express instrumentations make spans only: a test needs neither. */
const SPANS_ONLY = new Set(['http', 'express']);

/**
 * Configures querytrail (options over QUERYTRAIL_* variables: `strict`, `nPlusOneThreshold`, ...; `capture`
 * defaults to `auto` here) and patches
 * every supported library `require` can load now, with their inner files, so the ones the app loads later
 * are the patched ones. Call it in a setup file that runs before the app is imported: jest's
 * `setupFilesAfterEnv`, vitest's `setupFiles`.
 */
export function instrumentInProcess(options: InProcessOptions = {}): HazardRecorder {
  const { require: load = require, ...querytrailOptions } = options;
  // a test suite pays for every capture, so that a failing test names every site on first sight
  if (querytrailOptions.capture === undefined && !process.env.QUERYTRAIL_CAPTURE) querytrailOptions.capture = 'auto';
  const runtime = configureQuerytrail(querytrailOptions);
  // a request's scope lives in the OpenTelemetry context: without an SDK, nothing would carry it
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  // not enabled: their require hooks would only see what Node itself loads; patched here instead
  const instrumentations = [
    new HttpScopeInstrumentation({ enabled: false }),
    ...INSTRUMENTATIONS.filter((entry) => !SPANS_ONLY.has(entry.name)).map((entry) => entry.create({ enabled: false })),
  ];
  for (const instrumentation of instrumentations) {
    for (const definition of instrumentation.getModuleDefinitions()) patchLoadable(definition, load);
  }
  const seen: { hazard: Hazard; text: string }[] = [];
  const format = (hazard: Hazard, context: Parameters<ConsoleWarnings['warn']>[1]) => {
    let text = '';
    new ConsoleWarnings((line) => (text += line), runtime.config.codeFrames).warn(hazard, context);
    return text;
  };
  runtime.hazards.observe((hazard, context) => seen.push({ hazard, text: format(hazard, context()) }));
  return {
    takeHazards: () => seen.splice(0).map((s) => s.hazard),
    assertNoHazards: () => {
      const found = seen.splice(0);
      if (found.length === 0) return;
      throw new Error(
        `querytrail found ${found.length} ${found.length === 1 ? 'hazard' : 'hazards'}:\n\n` +
          found.map((s) => s.text).join('\n'),
      );
    },
  };
}

/** What OpenTelemetry does when Node's require loads a module, done with the test runner's `load`. */
function patchLoadable(definition: InstrumentationModuleDefinition, load: NodeRequire): void {
  // Node's own modules (http) have no package and no version to check, as under OpenTelemetry's hook
  const builtin = isBuiltin(definition.name);
  const found = builtin ? undefined : guarded('package lookup', () => packageOf(definition.name, load));
  if (!builtin && found === undefined) return; // not installed, or not loadable from here
  const version = found?.version;
  const supported = (ranges: string[]) => version === undefined || ranges.some((range) => satisfies(version, range));
  const patch = (name: string, target: { moduleExports?: unknown }, apply: (exports: unknown) => unknown) => {
    const exports = tryLoad(name, load);
    if (exports === undefined) return;
    target.moduleExports = exports;
    guarded(`patching ${name}`, () => apply(exports));
  };
  if (definition.patch !== undefined && supported(definition.supportedVersions)) {
    patch(definition.name, definition, (exports) => definition.patch!(exports, version));
  }
  if (found === undefined) return;
  for (const file of definition.files) {
    if (!supported(file.supportedVersions)) continue;
    // by its path: the package's exports map may not list the inner file (its own code requires it by path)
    const filePath = path.join(found.dir, path.relative(definition.name, file.name));
    patch(filePath, file, (exports) => file.patch(exports, version));
  }
}

/** The directory and version of the package `load` resolves `name` to (its exports may hide package.json). */
function packageOf(name: string, load: NodeRequire): { dir: string; version?: string } | undefined {
  let dir: string;
  try {
    dir = path.dirname(load.resolve(name));
  } catch {
    return undefined;
  }
  for (; dir !== path.dirname(dir); dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (!fs.existsSync(file)) continue;
    const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === name) return { dir, version: pkg.version };
  }
  return undefined;
}

function tryLoad(name: string, load: NodeRequire): unknown {
  try {
    return load(name);
  } catch {
    return undefined; // a file another version of the library has
  }
}
