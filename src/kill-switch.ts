/** How QUERYTRAIL_* booleans are spelled. Kept apart so the agent's entry reads the kill switch alone. */
export const TRUE_VALUES = ['1', 'true', 'yes', 'on'];
export const FALSE_VALUES = ['0', 'false', 'no', 'off'];

/** QUERYTRAIL_ENABLED says no (a value it cannot read does not switch querytrail off: config says so). */
export function switchedOff(env: Record<string, string | undefined>): boolean {
  return FALSE_VALUES.includes((env.QUERYTRAIL_ENABLED ?? '').trim().toLowerCase());
}
