import { configFromEnv, DEFAULT_CONFIG, nPlusOneThresholdOf, resolveConfig } from '../../src/config';
import { HAZARD_CODES } from '../../src/hazards/types';

const read = (env: Record<string, string>) => {
  const problems: string[] = [];
  return { config: configFromEnv(env, (l) => problems.push(l)), problems };
};

describe('config from the environment', () => {
  it('has secure, quiet defaults', () => {
    const { config, problems } = read({});
    expect(problems).toEqual([]);
    expect(config).toEqual(DEFAULT_CONFIG);
    expect(config.recordParameters).toBe(false);
    expect(config.strict.size).toBe(0);
  });

  it('reads every setting', () => {
    const { config, problems } = read({
      QUERYTRAIL_ENABLED: 'false',
      QUERYTRAIL_CAPTURE: 'ALL',
      QUERYTRAIL_STRICT: 'write_on_replica, bound_ran_mismatch',
      QUERYTRAIL_EXPORT_FILE: '/tmp/x.jsonl',
      QUERYTRAIL_CONSOLE: 'spans',
      QUERYTRAIL_RECORD_PARAMETERS: '1',
      QUERYTRAIL_CONNECT_SPANS: 'yes',
      QUERYTRAIL_WARNINGS_PER_MINUTE: '5',
      QUERYTRAIL_DATABASES: 'main=postgres://u:pw@db1:5432/app?role=primary, ro=postgres://db2/app?role=replica',
    });
    expect(problems).toEqual([]);
    expect(config).toMatchObject({
      enabled: false,
      capture: 'all',
      exportFile: '/tmp/x.jsonl',
      console: 'spans',
      recordParameters: true,
      connectSpans: true,
      warningsPerMinute: 5,
    });
    expect([...config.strict]).toEqual(['write_on_replica', 'bound_ran_mismatch']);
    expect(config.databases).toEqual([
      { alias: 'main', address: 'db1', port: 5432, namespace: 'app', role: 'primary' },
      { alias: 'ro', address: 'db2', port: undefined, namespace: 'app', role: 'replica' },
    ]);
    expect(JSON.stringify(config.databases)).not.toContain('pw');
  });

  it('takes an N+1 threshold, else 5, or 2 when n_plus_one fails the query', () => {
    expect(nPlusOneThresholdOf(read({}).config)).toBe(5);
    expect(nPlusOneThresholdOf(read({ QUERYTRAIL_STRICT: 'n_plus_one' }).config)).toBe(2);
    expect(nPlusOneThresholdOf(read({ QUERYTRAIL_STRICT: 'write_on_replica' }).config)).toBe(5);
    expect(nPlusOneThresholdOf(read({ QUERYTRAIL_STRICT: '1', QUERYTRAIL_N_PLUS_ONE_THRESHOLD: '4' }).config)).toBe(4);
  });

  it('QUERYTRAIL_STRICT=1 means every hazard', () => {
    expect(read({ QUERYTRAIL_STRICT: '1' }).config.strict.size).toBe(HAZARD_CODES.length);
  });

  it.each([
    ['QUERYTRAIL_ENABLED', 'maybe', 'accepted: true, false (or 1, 0)'],
    ['QUERYTRAIL_CAPTURE', 'sometimes', 'accepted: auto, lean, all, off'],
    ['QUERYTRAIL_CONSOLE', 'loud', 'accepted: warnings, spans, off'],
    ['QUERYTRAIL_STRICT', 'write_everywhere', 'names unknown hazard write_everywhere'],
    ['QUERYTRAIL_WARNINGS_PER_MINUTE', '-3', 'a whole number above 0'],
    ['QUERYTRAIL_N_PLUS_ONE_THRESHOLD', '1', 'a whole number of 2 or more'],
  ])('a bad %s=%s is one line, and the default stays', (name, value, says) => {
    const { config, problems } = read({ [name]: value });
    expect(problems.length).toBe(1);
    expect(problems[0]).toContain(name);
    expect(problems[0]).toContain(says);
    expect(problems[0]).toMatch(/using the default$/);
    expect(config).toEqual(DEFAULT_CONFIG);
  });

  it.each([
    ['main=postgres://h/app?role=leader', 'alias "main" has role "leader"; accepted roles: primary, replica'],
    ['main=nota url', 'alias "main" has no valid url'],
  ])('a bad QUERYTRAIL_DATABASES entry (%s) is one line, and the valid entries stay', (bad, says) => {
    const { config, problems } = read({ QUERYTRAIL_DATABASES: `${bad},ro=postgres://db2:5433/app?role=replica` });
    expect(problems).toEqual([
      `querytrail: QUERYTRAIL_DATABASES: ${says}; that entry is ignored ` +
        '(expected alias=postgres://host:port/database?role=primary|replica, comma-separated)',
    ]);
    expect(config.databases).toEqual([{ alias: 'ro', address: 'db2', port: 5433, namespace: 'app', role: 'replica' }]);
  });

  it('never echoes a password from a bad database url', () => {
    const { problems } = read({ QUERYTRAIL_DATABASES: 'postgres://user:hunter2@h/app' });
    expect(problems[0]).not.toContain('hunter2');
  });

  it('programmatic options override the environment', () => {
    const config = resolveConfig(DEFAULT_CONFIG, { capture: 'off', strict: true, exportFile: undefined });
    expect(config.capture).toBe('off');
    expect(config.strict.size).toBe(HAZARD_CODES.length);
    expect(resolveConfig(DEFAULT_CONFIG, { strict: ['write_on_replica'] }).strict.has('write_on_replica')).toBe(true);
  });
});
