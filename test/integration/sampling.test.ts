// Hazards are never lost to sampling: with a low trace ratio or no traces at all, every hazard still reaches
// the counter, the readable warning and strict mode (only the span event needs a recorded span).
import { attrs, OtlpReceiver } from '../support/otlp-receiver';
import { ormFixtureEnv, runFixture } from '../support/run-fixture';

const SAMPLERS: [string, Record<string, string>][] = [
  ['always_off', { OTEL_TRACES_SAMPLER: 'always_off' }],
  [
    'parentbased_traceidratio at 0.0001',
    { OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.0001' },
  ],
];
const ROUTES = ['/loop', '/twice', '/loop'];

describe.each(SAMPLERS)('with OTEL_TRACES_SAMPLER=%s', (_name, sampler) => {
  it('counts every hazard and prints its warning; no span is recorded', async () => {
    const receiver = new OtlpReceiver();
    const endpoint = await receiver.start();
    try {
      const run = await runFixture('redundant/pg.js', {
        env: {
          ...ormFixtureEnv(),
          ...sampler,
          OTEL_TRACES_EXPORTER: 'otlp',
          OTEL_METRICS_EXPORTER: 'otlp',
          OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
        },
        args: ROUTES,
      });
      expect(run.code).toBe(0);
      expect(run.spans).toEqual([]); // nothing sampled: not even the JSON-lines file gets a span
      const counted = receiver
        .metricPoints('querytrail.hazards')
        .map((p) => [attrs(p.attributes).code, attrs(p.attributes).route, Number(p.asDouble ?? p.asInt)]);
      expect(counted).toEqual(
        expect.arrayContaining([
          ['n_plus_one', 'GET /loop', 2], // once per request
          ['duplicate_query', 'GET /twice', 1],
        ]),
      );
      expect(run.stderr).toContain('querytrail warning: n_plus_one');
      expect(run.stderr).toContain('querytrail warning: duplicate_query');
    } finally {
      await receiver.stop();
    }
  });

  it('fails the query in strict mode', async () => {
    const run = await runFixture('redundant/pg.js', {
      env: { ...ormFixtureEnv(), ...sampler, QUERYTRAIL_STRICT: 'n_plus_one' },
      args: ['/loop'],
    });
    expect(run.stdout).toBe('/loop 500 {"name":"QueryTrailHazardError","code":"n_plus_one"}\n');
  });
});
