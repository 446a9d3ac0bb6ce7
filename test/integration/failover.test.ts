// A standby promoted under the app: every connection opened before the promotion reports the new role from
// its first query on, and strict mode lets its writes through (the role is confirmed before refusing one).
import { ExportedSpan, hazardsOf, runFixture } from '../support/run-fixture';

const byText = (spans: ExportedSpan[], fragment: string) =>
  spans.filter((s) => String(s.attributes['db.query.text']).includes(fragment));

describe.each([
  ['by default', {}],
  ['in strict mode', { QUERYTRAIL_STRICT: '1' }],
])('a standby promoted mid-run, %s', (_mode, env) => {
  it('labels the first query after the promotion primary and never refuses the promoted primary its writes', async () => {
    const run = await runFixture('failover.js', { env, timeoutMs: 90_000 });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ read: 3, write: 'ok', again: 'ok', built: 1 });
    const role = (fragment: string) => byText(run.spans, fragment).map((s) => s.attributes['querytrail.ran.role']);
    expect(role('reader_before')).toEqual(['replica']);
    expect(role('writer_before')).toEqual(['replica']);
    expect(role('after_promotion')).toEqual(['primary']); // in_hot_standby=off came back with this very response
    expect(role('WHERE id = ?')).toEqual(['primary', 'primary']);
    // the knex builder's write keeps its provenance through the role check
    const [built] = byText(run.spans, 'update "items"');
    expect(built.attributes).toMatchObject({ 'querytrail.library': 'knex', 'querytrail.ran.role': 'primary' });
    for (const span of run.spans) expect(hazardsOf(span)).toEqual([]);
  }, 100_000);
});
