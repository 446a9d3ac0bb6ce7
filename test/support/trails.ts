// Trails for pure tests, built as the seam builds them (src/seam.ts) from a library name and a site.
import type { SiteRef } from '../../src/callsite';
import type { DatabaseRef } from '../../src/database';
import { currentScope, phaseOf } from '../../src/scope';
import { KIND_LABELS, LibraryProfile, Trail, TrailKind } from '../../src/trail';

const PROFILES: Record<string, LibraryProfile> = {};
/** One profile per library name, as each instrumentation registers one. */
export function profile(name: string): LibraryProfile {
  return (PROFILES[name] ??= { name });
}

export function makeTrail(init: {
  library: string;
  site: SiteRef | undefined;
  binding?: DatabaseRef;
  parent?: Trail;
  kind?: TrailKind;
  label?: string;
}): Trail {
  const scope = currentScope();
  const kind = init.kind ?? 'query';
  return {
    library: profile(init.library),
    kind,
    label: init.label ?? KIND_LABELS[kind],
    site: init.site,
    phase: phaseOf(scope),
    scopeId: scope?.id,
    createdAt: Date.now(),
    binding: init.binding ?? init.parent?.binding,
    parent: init.parent,
    parts: undefined,
  };
}
