import { internSite } from '../../src/callsite';
import type { Hazard } from '../../src/hazards/types';
import { HazardContext, QueryTrailHazardError, WarningLog, WarningSink } from '../../src/report';

const context: HazardContext = { bound: 'main', ran: 'ro', scope: 'request GET /x' };
const hazard = (line: number, code: Hazard['code'] = 'write_on_replica'): Hazard => ({
  code,
  severity: 'error',
  message: `m${line}`,
  site: internSite('/app/x.js', line, 1),
});

function sink() {
  const warned: string[] = [];
  const suppressed: number[] = [];
  const s: WarningSink = {
    warn: (h) => warned.push(`${h.code}:${h.site?.line}`),
    suppressed: (n) => suppressed.push(n),
  };
  return { s, warned, suppressed };
}

describe('WarningLog', () => {
  afterEach(() => jest.useRealTimers());

  it('warns once per (code, site)', () => {
    const { s, warned } = sink();
    const log = new WarningLog(s, 20);
    for (let i = 0; i < 1000; i++) log.warn(hazard(1), () => context);
    log.warn(hazard(1, 'bound_ran_mismatch'), () => context);
    log.warn(hazard(2), () => context);
    expect(warned).toEqual(['write_on_replica:1', 'bound_ran_mismatch:1', 'write_on_replica:2']);
  });

  it('prints at most N warnings a minute, then says how many it held back, and shows them later', () => {
    jest.useFakeTimers({ now: 0 });
    const { s, warned, suppressed } = sink();
    const log = new WarningLog(s, 2);
    for (let line = 1; line <= 5; line++) log.warn(hazard(line), () => context);
    expect(warned).toEqual(['write_on_replica:1', 'write_on_replica:2']);
    jest.setSystemTime(61_000);
    log.warn(hazard(3), () => context);
    expect(suppressed).toEqual([3]);
    expect(warned).toEqual(['write_on_replica:1', 'write_on_replica:2', 'write_on_replica:3']);
  });

  it('builds the context only for warnings it prints', () => {
    const { s } = sink();
    const log = new WarningLog(s, 20);
    const build = jest.fn(() => context);
    log.warn(hazard(1), build);
    log.warn(hazard(1), build);
    expect(build).toHaveBeenCalledTimes(1);
  });
});

describe('QueryTrailHazardError', () => {
  it('names the hazard in its code and message', () => {
    const err = new QueryTrailHazardError([hazard(7)]);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe('QueryTrailHazardError');
    expect(err.code).toBe('write_on_replica');
    expect(err.message).toBe('querytrail write_on_replica: m7');
  });
});
