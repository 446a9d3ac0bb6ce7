import { DatabaseRegistry, parseDatabaseAliases, ServerFacts } from '../../src/database';

describe('DatabaseRegistry', () => {
  const registry = new DatabaseRegistry(
    parseDatabaseAliases(
      'main=postgres://127.0.0.1:5432/app?role=primary,ro=postgres://127.0.0.1:5433/app?role=replica,any=postgres://db9',
    ),
  );

  it('interns one ref per endpoint, whatever the loopback spelling', () => {
    const a = registry.ref('postgresql', 'localhost', '5432', 'app');
    expect(registry.ref('postgresql', '127.0.0.1', 5432, 'app')).toBe(a);
    expect(registry.ref('postgresql', '::1', 5432, 'app')).toBe(a);
    expect(registry.ref('postgresql', '127.0.0.1', 5432, 'other')).not.toBe(a);
  });

  it('names declared databases by alias with their declared role', () => {
    const ref = registry.ref('postgresql', '127.0.0.1', 5433, 'app');
    expect(ref).toMatchObject({ alias: 'ro', declaredRole: 'replica' });
    expect(ref.boundAttributes).toEqual({ 'querytrail.bound.alias': 'ro', 'querytrail.bound.role': 'replica' });
    // sent only when the binding is not where the query ran
    expect(ref.boundLocationAttributes).toEqual({
      'querytrail.bound.address': '127.0.0.1',
      'querytrail.bound.port': 5433,
      'querytrail.bound.namespace': 'app',
    });
    expect(ref.serverAttributes).toEqual({
      'db.system.name': 'postgresql',
      'db.namespace': 'app',
      'server.address': '127.0.0.1',
      'server.port': 5433,
    });
  });

  it('matches an alias without a port or database on the default port and any database', () => {
    expect(registry.ref('postgresql', 'DB9', 5432, 'whatever').alias).toBe('any');
    expect(registry.ref('postgresql', 'db9', 6543, 'whatever').alias).toBe('db9:6543/whatever');
  });

  it('names undeclared databases host:port/database', () => {
    expect(registry.ref('postgresql', 'db1', 5432, 'x')).toMatchObject({
      alias: 'db1:5432/x',
      declaredRole: undefined,
    });
  });
});

describe('ServerFacts', () => {
  it('recomputes ran attributes only when the role changes (a promotion)', () => {
    const facts = new ServerFacts(new DatabaseRegistry().ref('postgresql', 'h', 5432, 'd'));
    expect(facts.ranAttributes['querytrail.ran.role']).toBeUndefined();
    facts.setRole('replica', 'in_hot_standby=on');
    const replica = facts.ranAttributes;
    expect(replica['querytrail.ran.role']).toBe('replica');
    facts.setRole('replica', 'in_hot_standby=on');
    expect(facts.ranAttributes).toBe(replica);
    facts.setRole('primary', 'in_hot_standby=off');
    expect(facts.ranAttributes['querytrail.ran.role']).toBe('primary');
    expect(facts.roleEvidence).toBe('in_hot_standby=off');
  });
});
