// querytrail/testing in jest's own registry: its defaults for a test suite.
import { getRuntime } from '../../src/runtime';
import { instrumentInProcess } from '../../src/testing';

describe('instrumentInProcess', () => {
  it('captures every query object where it is built, unless told otherwise: a failing test names every site', () => {
    const fromEnv = process.env.QUERYTRAIL_CAPTURE;
    delete process.env.QUERYTRAIL_CAPTURE;
    try {
      instrumentInProcess();
      expect(getRuntime().config.capture).toBe('auto');
      instrumentInProcess({ capture: 'lean' });
      expect(getRuntime().config.capture).toBe('lean');
    } finally {
      if (fromEnv !== undefined) process.env.QUERYTRAIL_CAPTURE = fromEnv;
    }
  });
});
