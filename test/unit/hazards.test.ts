import { internSite } from '../../src/callsite';
import { DatabaseRegistry, parseDatabaseAliases, ServerFacts } from '../../src/database';
import { boundRanMismatch } from '../../src/hazards/bound-ran-mismatch';
import type { QueryExecution } from '../../src/hazards/types';
import { writeOnReplica } from '../../src/hazards/write-on-replica';
import { analyzeKeywords } from '../../src/statement';
import { lexSql } from '../../src/sql-lexer';
import { createTrail } from '../../src/trail';

const registry = new DatabaseRegistry(parseDatabaseAliases('main=postgres://db1:5432/app?role=primary,ro=postgres://db2:5432/app?role=replica'));
const execSite = internSite('/app/routes/items.js', 42, 7, 'createItem');

function execution(sql: string, host: string, role: 'primary' | 'replica' | undefined): QueryExecution {
  const lexed = lexSql(sql, 'postgresql');
  const ref = registry.ref('postgresql', host, 5432, 'app');
  const server = new ServerFacts(ref);
  if (role) server.setRole(role, `in_hot_standby=${role === 'replica' ? 'on' : 'off'}`);
  return { statement: analyzeKeywords(lexed.sanitized, lexed.words), ran: ref, server, bound: ref, phase: 'request', scope: undefined, executionSite: () => execSite };
}

describe('write_on_replica', () => {
  it('fires for a write sent to a server in recovery, naming the line and the fix', () => {
    const hazard = writeOnReplica(undefined, execution('INSERT INTO items VALUES (1)', 'db2', 'replica'))!;
    expect(hazard).toMatchObject({ code: 'write_on_replica', severity: 'error', site: execSite });
    expect(hazard.message).toBe('INSERT items at /app/routes/items.js:42:7 was sent to ro, a replica (in_hot_standby=on), where it fails with SQLSTATE 25006; send this write to the primary.');
  });

  it.each([
    ['a read on a replica', 'SELECT * FROM items', 'replica'],
    ['a write on a primary', 'INSERT INTO items VALUES (1)', 'primary'],
    ['a write whose server role is not known yet', 'INSERT INTO items VALUES (1)', undefined],
  ] as const)('stays silent for %s', (_what, sql, role) => {
    expect(writeOnReplica(undefined, execution(sql, 'db2', role))).toBeUndefined();
  });

  it('counts locking reads as writes', () => {
    expect(writeOnReplica(undefined, execution('SELECT * FROM items FOR UPDATE', 'db2', 'replica'))?.code).toBe('write_on_replica');
  });
});

describe('bound_ran_mismatch', () => {
  it('fires when the database declared primary answers as a replica', () => {
    const hazard = boundRanMismatch(undefined, execution('SELECT 1', 'db1', 'replica'))!;
    expect(hazard.code).toBe('bound_ran_mismatch');
    expect(hazard.message).toBe(
      'The query at /app/routes/items.js:42:7 ran on main, declared primary in QUERYTRAIL_DATABASES, but the server says it is a replica (in_hot_standby=on); fix the connection settings used there, or the declaration.',
    );
    expect(hazard.attributes).toEqual({ 'querytrail.hazard.declared_role': 'primary', 'querytrail.hazard.server_role': 'replica' });
  });

  it('fires when a declared replica answers as a primary (e.g. after a failover)', () => {
    expect(boundRanMismatch(undefined, execution('SELECT 1', 'db2', 'primary'))?.attributes?.['querytrail.hazard.server_role']).toBe('primary');
  });

  it('names the construction site of an ORM query object rather than the execution site', () => {
    const built = internSite('/app/models/report.js', 5, 1);
    const trail = createTrail({ library: 'knex', site: built });
    expect(boundRanMismatch(trail, execution('SELECT 1', 'db1', 'replica'))?.site).toBe(built);
  });

  it.each([
    ['roles agree', 'db1', 'primary'],
    ['no role was declared', 'db3', 'replica'],
    ['the server has not said', 'db1', undefined],
  ] as const)('stays silent when %s', (_what, host, role) => {
    expect(boundRanMismatch(undefined, execution('SELECT 1', host, role))).toBeUndefined();
  });
});
