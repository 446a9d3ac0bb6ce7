import { boundRanMismatch } from './bound-ran-mismatch';
import type { HazardRule } from './types';
import { writeOnReplica } from './write-on-replica';

export * from './types';

/** Every rule, in the order their hazards are reported. */
export const HAZARD_RULES: readonly HazardRule[] = [writeOnReplica, boundRanMismatch];
