import { hazardsOf, runFixture, topology } from '../support/run-fixture';

describe('request, job and init scopes', () => {
  const check = async (env: Record<string, string>) => {
    const run = await runFixture('http-app.js', { env: { QT_PRIMARY: topology().primary, ...env } });
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('[{"name":"beta"}]\nok\n');
    const byText = (fragment: string) =>
      run.spans.filter((s) => String(s.attributes['db.query.text']).includes(fragment));
    const [init] = byText('at_init');
    expect(init.attributes['querytrail.execution.phase']).toBe('init');
    expect(init.attributes['querytrail.route']).toBeUndefined();
    const inRoute = [...byText('WHERE id = $1'), ...byText('count(*)')];
    expect(inRoute.length).toBe(2);
    for (const span of inRoute) {
      expect(span.attributes['querytrail.execution.phase']).toBe('request');
      expect(span.attributes['querytrail.route']).toBe('GET /items/:id');
    }
    const [plain] = byText('plain');
    expect(plain.attributes['querytrail.execution.phase']).toBe('request');
    expect(plain.attributes['querytrail.route']).toBeUndefined();
    const [job] = byText('in_job');
    expect(job.attributes['querytrail.execution.phase']).toBe('job');
    for (const span of run.spans) expect(hazardsOf(span)).toEqual([]);
    return { init, inRoute, plain };
  };

  it('knows requests and express routes with the OTel HTTP and express instrumentations, under the request span', async () => {
    const { init, inRoute } = await check({});
    expect(init.parentSpanId).toBeUndefined();
    // both queries of the request sit in the same trace, under a span of the request
    expect(inRoute[0].traceId).toBe(inRoute[1].traceId);
    expect(inRoute[0].parentSpanId).toBeDefined();
  });

  it('knows requests and routes without them', async () => {
    const { inRoute } = await check({ OTEL_NODE_DISABLED_INSTRUMENTATIONS: 'http,express' });
    expect(inRoute[0].parentSpanId).toBeUndefined();
  });
});

describe('programmatic use with the app’s own SDK', () => {
  it('records request-scoped query spans under the request span', async () => {
    const run = await runFixture('programmatic.js', { env: { QT_PRIMARY: topology().primary }, nodeArgs: [] });
    expect(run.code).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.spans.length).toBe(1);
    expect(run.spans[0].attributes['querytrail.execution.phase']).toBe('request');
    expect(run.spans[0].parentSpanId).toBeDefined();
  });
});
