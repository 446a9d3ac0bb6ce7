import { ormFixtureEnv, runFixture } from '../support/run-fixture';

describe('every instrumentation: enable → disable → enable', () => {
  it('unpatches the library (its queries are plain pg spans, or none for pg) and patches it again', async () => {
    const libraries = ['pg', 'knex', 'drizzle', 'kysely', 'sequelize', 'typeorm', 'prisma'];
    // no agent: the fixture registers the instrumentations itself, as programmatic users do
    const run = await runFixture('toggle.js', { env: ormFixtureEnv(), nodeArgs: [], args: libraries });
    expect(run.stderr).toBe('');
    expect(run.stdout.trim().split('\n')).toEqual(
      libraries.map((name) => `${name} ${name},${name === 'pg' ? 'none' : 'pg'},${name}`),
    );
  });
});
