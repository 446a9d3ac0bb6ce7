import { internSite } from '../../src/callsite';
import { DatabaseRegistry, parseDatabaseAliases, ServerFacts } from '../../src/database';
import { boundRanMismatch } from '../../src/hazards/bound-ran-mismatch';
import type { QueryExecution } from '../../src/hazards/types';
import { writeOnReplica } from '../../src/hazards/write-on-replica';
import { crossDatabaseQuery } from '../../src/hazards/cross-database-query';
import { crossRequestReuse } from '../../src/hazards/cross-request-reuse';
import { frozenParameter } from '../../src/hazards/frozen-parameter';
import { initQueryInRequest } from '../../src/hazards/init-query-in-request';
import { readAfterWrite } from '../../src/hazards/read-after-write';
import { crossDatabaseTransaction } from '../../src/hazards/cross-database-transaction';
import { memoisedResultReuse } from '../../src/hazards/memoised-result';
import { ScopeLedger } from '../../src/ledger';
import { requestScope } from '../../src/scope';
import { analyzeKeywords } from '../../src/statement';
import { lexSql } from '../../src/sql-lexer';
import { embed as addPart } from '../../src/seam';
import type { Trail, TrailKind } from '../../src/trail';
import { makeTrail as createTrail } from '../support/trails';

const SEQUELIZE = { name: 'sequelize', primaryReadAdvice: 'pass `useMaster: true`, or read in the transaction' };

const registry = new DatabaseRegistry(
  parseDatabaseAliases('main=postgres://db1:5432/app?role=primary,ro=postgres://db2:5432/app?role=replica'),
);
const execSite = internSite('/app/routes/items.js', 42, 7, 'createItem');

function execution(sql: string, host: string, role: 'primary' | 'replica' | undefined): QueryExecution {
  const lexed = lexSql(sql, 'postgresql');
  const ref = registry.ref('postgresql', host, 5432, 'app');
  const server = new ServerFacts(ref);
  if (role) server.setRole(role, `in_hot_standby=${role === 'replica' ? 'on' : 'off'}`);
  return {
    statement: analyzeKeywords(lexed.sanitized, lexed.words),
    ran: ref,
    server,
    bound: ref,
    phase: 'request',
    scope: undefined,
    executionSite: () => execSite,
    parameters: undefined,
    now: Date.now(),
    ledger: undefined,
    read: undefined,
    library: { name: 'pg' },
    nPlusOneThreshold: 5,
  };
}

describe('write_on_replica', () => {
  it('fires for a write sent to a server in recovery, naming the line and the fix', () => {
    const hazard = writeOnReplica(undefined, execution('INSERT INTO items VALUES (1)', 'db2', 'replica'))!;
    expect(hazard).toMatchObject({ code: 'write_on_replica', severity: 'error', site: execSite });
    expect(hazard.message).toBe(
      'INSERT items at /app/routes/items.js:42:7 was sent to ro, a replica (in_hot_standby=on), where it fails with SQLSTATE 25006; send this write to the primary.',
    );
  });

  it.each([
    ['a read on a replica', 'SELECT * FROM items', 'replica'],
    ['a write on a primary', 'INSERT INTO items VALUES (1)', 'primary'],
    ['a write whose server role is not known yet', 'INSERT INTO items VALUES (1)', undefined],
  ] as const)('stays silent for %s', (_what, sql, role) => {
    expect(writeOnReplica(undefined, execution(sql, 'db2', role))).toBeUndefined();
  });

  it('counts locking reads as writes', () => {
    expect(writeOnReplica(undefined, execution('SELECT * FROM items FOR UPDATE', 'db2', 'replica'))?.code).toBe(
      'write_on_replica',
    );
  });

  it("names the query object's construction site when the ORM left no execution site", () => {
    const built = internSite('/app/models/lock.js', 9, 3);
    const trail = createTrail({ library: 'knex', site: built });
    const hazard = writeOnReplica(trail, {
      ...execution('SELECT * FROM items FOR UPDATE', 'db2', 'replica'),
      executionSite: () => undefined,
    })!;
    expect(hazard.site).toBe(built);
    expect(hazard.message).toMatch(
      /^SELECT items \(the knex query built at init at \/app\/models\/lock\.js:9:3\) was sent to ro, a replica/,
    );
  });
});

describe('bound_ran_mismatch', () => {
  it('fires when the database declared primary answers as a replica', () => {
    const hazard = boundRanMismatch(undefined, execution('SELECT 1', 'db1', 'replica'))!;
    expect(hazard.code).toBe('bound_ran_mismatch');
    expect(hazard.message).toBe(
      'The query at /app/routes/items.js:42:7 ran on main, declared primary in QUERYTRAIL_DATABASES, but the server says it is a replica (in_hot_standby=on); fix the connection settings used there, or the declaration.',
    );
    expect(hazard.attributes).toEqual({
      'querytrail.hazard.declared_role': 'primary',
      'querytrail.hazard.server_role': 'replica',
    });
  });

  it('fires when a declared replica answers as a primary (e.g. after a failover)', () => {
    expect(
      boundRanMismatch(undefined, execution('SELECT 1', 'db2', 'primary'))?.attributes?.[
        'querytrail.hazard.server_role'
      ],
    ).toBe('primary');
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

const main = registry.ref('postgresql', 'db1', 5432, 'app');
const analytics = registry.ref('postgresql', 'db1', 5432, 'analytics');
const at = (line: number) => internSite('/app/reports.js', line, 3);
/** A trail as if built `agoMs` before now, in the given scope (undefined: init). */
function built(
  line: number,
  agoMs: number,
  scope?: ReturnType<typeof requestScope>,
  extra: { parent?: Trail; binding?: typeof main; kind?: TrailKind } = {},
): Trail {
  const trail = createTrail({
    library: 'knex',
    site: at(line),
    binding: extra.binding ?? main,
    parent: extra.parent,
    kind: extra.kind,
  });
  return { ...trail, phase: scope ? 'request' : 'init', scopeId: scope?.id, createdAt: Date.now() - agoMs };
}
function inRequest(scope: ReturnType<typeof requestScope>, parameters?: unknown[]): QueryExecution {
  return { ...execution('SELECT 1', 'db1', 'primary'), phase: 'request', scope, parameters };
}

describe('init_query_in_request', () => {
  const scope = requestScope({ method: 'GET', url: '/reports?x=1' });

  it('names the init site of the lineage root, the request and the age', () => {
    const root = built(4, 3_600_000);
    const clone = built(20, 0, scope, { parent: root });
    const hazard = initQueryInRequest(clone, inRequest(scope))!;
    expect(hazard.site).toBe(at(4));
    expect(hazard.message).toBe(
      'The knex query built at init at /app/reports.js:4:3 (derived from it in a request at /app/reports.js:20:3) runs in request GET /reports, 1 h 0 min after it was built, bound to main (db1:5432/app) since then; build it inside the request instead.',
    );
  });

  it('is silent for queries built in the request, and for init queries run at init or in jobs', () => {
    expect(initQueryInRequest(built(20, 0, scope), inRequest(scope))).toBeUndefined();
    expect(initQueryInRequest(built(4, 10), { ...inRequest(scope), phase: 'init', scope: undefined })).toBeUndefined();
    expect(initQueryInRequest(built(4, 10), { ...inRequest(scope), phase: 'job' })).toBeUndefined();
    expect(initQueryInRequest(undefined, inRequest(scope))).toBeUndefined();
  });
});

describe('cross_request_reuse', () => {
  it('fires when the root was built in another request, not in the same one', () => {
    const first = requestScope({ method: 'GET', url: '/a' });
    const second = requestScope({ method: 'GET', url: '/a' });
    const trail = built(7, 100, first);
    expect(crossRequestReuse(trail, inRequest(second))?.message).toBe(
      'The knex query built at /app/reports.js:7:3 in an earlier request runs again in request GET /a: it is cached across requests; build it per request.',
    );
    expect(crossRequestReuse(trail, inRequest(first))).toBeUndefined();
    // init-built: the other rule's business
    expect(crossRequestReuse(built(7, 100), inRequest(second))).toBeUndefined();
  });
});

describe('cross_database_query', () => {
  const scope = requestScope({ method: 'GET', url: '/' });

  it('names both databases and the foreign part, and says when the library re-bound it', () => {
    const outer = built(10, 0, scope);
    const part = built(2, 1000, undefined, { binding: analytics, kind: 'fragment' });
    part.rebound = true;
    addPart(outer, built(11, 0, scope)); // same database: fine
    addPart(outer, part);
    const hazard = crossDatabaseQuery(outer, inRequest(scope))!;
    expect(hazard).toMatchObject({ code: 'cross_database_query', severity: 'error', site: at(10) });
    expect(hazard.attributes).toMatchObject({
      'querytrail.hazard.part.namespace': 'analytics',
      'querytrail.hazard.part.line': 2,
    });
    expect(hazard.message).toBe(
      "The knex query built in a request at /app/reports.js:10:3 (bound to main (db1:5432/app)) embeds a raw fragment built at /app/reports.js:2:3 for db1:5432/analytics, but it is all sent to main (db1:5432/app), so that part reads main (db1:5432/app)'s tables; query db1:5432/analytics separately and pass the values. Knex has also re-bound that raw fragment to main (db1:5432/app) for good: run alone later, it queries main (db1:5432/app).",
    );
  });

  it('is silent when every part is bound to the same database', () => {
    const outer = built(10, 0, scope);
    addPart(outer, built(11, 0, scope));
    expect(crossDatabaseQuery(outer, inRequest(scope))).toBeUndefined();
    expect(crossDatabaseQuery(built(10, 0, scope), inRequest(scope))).toBeUndefined();
  });
});

describe('frozen_parameter', () => {
  const scope = requestScope({ method: 'GET', url: '/posts' });

  it('fires for a Date computed when an init-built query was made', () => {
    const root = built(3, 7_200_000);
    const hazard = frozenParameter(root, inRequest(scope, [1, new Date(root.createdAt + 5)]))!;
    expect(hazard.site).toBe(at(3));
    expect(hazard.message).toMatch(
      /^The knex query built at init at \/app\/reports\.js:3:3 carries a timestamp computed when it was built, 1 h 59 min ago, and sends that stale value on every run/,
    );
  });

  it('fires for an ISO timestamp string, as ORMs serialize Dates', () => {
    const root = built(3, 60_000);
    expect(frozenParameter(root, inRequest(scope, [new Date(root.createdAt + 20).toISOString()]))?.code).toBe(
      'frozen_parameter',
    );
    expect(frozenParameter(root, inRequest(scope, ['2001-01-01 is not now', 'hello']))).toBeUndefined();
  });

  it('fires for a toUTCString() timestamp, whole seconds (drizzle before 0.30), and not for one a minute off', () => {
    const root = built(3, 60_000);
    const sameSecond = new Date(root.createdAt - 900).toUTCString();
    expect(frozenParameter(root, inRequest(scope, [sameSecond]))?.code).toBe('frozen_parameter');
    const minuteOff = new Date(root.createdAt - 60_000).toUTCString();
    expect(frozenParameter(root, inRequest(scope, [minuteOff]))).toBeUndefined();
  });

  it('fires for a millisecond timestamp inherited by a request-time clone', () => {
    const root = built(3, 60_000);
    const clone = built(9, 0, scope, { parent: root });
    expect(frozenParameter(clone, inRequest(scope, [root.createdAt - 200]))?.site).toBe(at(3));
  });

  it('is silent for values computed in the request, far from construction, or not timestamps', () => {
    const inThisRequest = built(9, 0, scope);
    expect(frozenParameter(inThisRequest, inRequest(scope, [new Date()]))).toBeUndefined();
    const root = built(3, 60_000);
    expect(frozenParameter(root, inRequest(scope, [new Date(root.createdAt - 86_400_000)]))).toBeUndefined();
    expect(frozenParameter(root, inRequest(scope, [42, 'text', null]))).toBeUndefined();
    expect(frozenParameter(root, inRequest(scope, undefined))).toBeUndefined();
  });

  it("is silent for a query built and run at init (a library's own `now()` default then equals the build time)", () => {
    const atInit = built(3, 10);
    const runAtInit = {
      ...inRequest(scope, [new Date(atInit.createdAt + 2)]),
      phase: 'init' as const,
      scope: undefined,
    };
    expect(frozenParameter(atInit, runAtInit)).toBeUndefined();
  });
});

describe('read_after_write', () => {
  const scope = requestScope({ method: 'POST', url: '/orders' });
  function readOnReplica(
    sql: string,
    ledger: ScopeLedger,
    role: 'primary' | 'replica' = 'replica',
    phase: QueryExecution['phase'] = 'request',
  ): QueryExecution {
    return { ...execution(sql, 'db2', role), phase, scope, ledger };
  }

  it('fires when the request reads from a replica a table it wrote on the primary, naming both lines', () => {
    const ledger = new ScopeLedger();
    ledger.recordWrite('app', ['public.items'], at(12));
    const hazard = readAfterWrite(
      { ...createTrail({ library: 'sequelize', site: at(30) }), library: SEQUELIZE },
      readOnReplica('SELECT * FROM items WHERE id = 1', ledger),
    )!;
    expect(hazard).toMatchObject({ code: 'read_after_write', severity: 'warning', site: execSite });
    expect(hazard.message).toBe(
      'SELECT items at /app/routes/items.js:42:7 reads public.items from ro, a replica (in_hot_standby=on), after this request wrote it on the primary at /app/reports.js:12:3: with replication lag the read may not see the write; pass `useMaster: true`, or read in the transaction.',
    );
    expect(hazard.attributes).toEqual({
      'querytrail.hazard.table': 'public.items',
      'querytrail.hazard.write.file': '/app/reports.js',
      'querytrail.hazard.write.line': 12,
    });
  });

  it('fires for a join or a sub-select of the written table, naming it as written', () => {
    const ledger = new ScopeLedger();
    ledger.recordWrite('app', ['Followers'], at(12));
    const join = 'SELECT "Users".* FROM "Users" INNER JOIN "Followers" ON "Followers"."userId" = "Users".id';
    expect(readAfterWrite(undefined, readOnReplica(join, ledger))?.message).toMatch(/reads Followers from ro/);
    const sub = 'SELECT * FROM "Users" WHERE id IN (SELECT "userId" FROM "Followers")';
    expect(readAfterWrite(undefined, readOnReplica(sub, ledger))?.code).toBe('read_after_write');
  });

  it.each([
    ['the read goes to the primary', 'SELECT * FROM items', 'primary', 'request'],
    ['another table is read', 'SELECT * FROM tags', 'replica', 'request'],
    ['it is a job, not a request', 'SELECT * FROM items', 'replica', 'job'],
    ['the statement is itself a write', 'UPDATE items SET a = 1', 'replica', 'request'],
  ] as const)('stays silent when %s', (_what, sql, role, phase) => {
    const ledger = new ScopeLedger();
    ledger.recordWrite('app', ['items'], at(12));
    expect(readAfterWrite(undefined, readOnReplica(sql, ledger, role, phase))).toBeUndefined();
  });

  it('stays silent when nothing was written', () => {
    expect(readAfterWrite(undefined, readOnReplica('SELECT * FROM items', new ScopeLedger()))).toBeUndefined();
  });
});

describe('cross_database_transaction', () => {
  const scope = requestScope({ method: 'POST', url: '/transfer' });
  const writeOn = (
    host: string,
    database: string,
    ledger: ScopeLedger,
    sql = 'INSERT INTO audit VALUES (1)',
  ): QueryExecution => {
    const ref = registry.ref('postgresql', host, 5432, database);
    return { ...execution(sql, host, 'primary'), ran: ref, bound: ref, scope, ledger };
  };

  it('fires for a write to another database while a transaction is open, naming where it began', () => {
    const ledger = new ScopeLedger();
    ledger.begin({}, main, at(7));
    const hazard = crossDatabaseTransaction(undefined, writeOn('db1', 'analytics', ledger))!;
    expect(hazard).toMatchObject({ code: 'cross_database_transaction', severity: 'error', site: execSite });
    expect(hazard.message).toMatch(
      /^INSERT audit at \/app\/routes\/items\.js:42:7 writes to db1:5432\/analytics while request POST \/transfer has a transaction open on main \(db1:5432\/app\) \(begun at \/app\/reports\.js:7:3\): this write is not part of it/,
    );
    expect(hazard.attributes).toEqual({
      'querytrail.hazard.transaction.namespace': 'app',
      'querytrail.hazard.transaction.file': '/app/reports.js',
      'querytrail.hazard.transaction.line': 7,
    });
  });

  it('stays silent for writes to the same database, for reads, and once the transaction ended', () => {
    const ledger = new ScopeLedger();
    const connection = {};
    ledger.begin(connection, main, at(7));
    expect(crossDatabaseTransaction(undefined, writeOn('db1', 'app', ledger))).toBeUndefined();
    expect(
      crossDatabaseTransaction(undefined, writeOn('db1', 'analytics', ledger, 'SELECT * FROM audit')),
    ).toBeUndefined();
    ledger.end(connection);
    expect(crossDatabaseTransaction(undefined, writeOn('db1', 'analytics', ledger))).toBeUndefined();
  });

  it("fires for a query object handed to another database's transaction, read or write, with no transaction in the ledger", () => {
    const transaction = createTrail({ library: 'prisma', site: at(7), binding: main, kind: 'transaction' });
    const analytics = registry.ref('postgresql', 'db1', 5432, 'analytics');
    const trail: Trail = {
      ...createTrail({ library: 'prisma', site: internSite('/app/reports.js', 8, 40), binding: analytics }),
      transaction,
    };
    const hazard = crossDatabaseTransaction(trail, {
      ...writeOn('db1', 'analytics', new ScopeLedger(), 'SELECT * FROM audit'),
      executionSite: () => undefined,
    })!;
    expect(hazard).toMatchObject({ code: 'cross_database_transaction', severity: 'error' });
    expect(hazard.message).toMatch(
      /^SELECT audit \(the prisma query built at init at \/app\/reports\.js:8:40\) was given to the transaction started at \/app\/reports\.js:7:3 on main \(db1:5432\/app\), but it belongs to db1:5432\/analytics and runs there, outside that transaction/,
    );
    expect(hazard.attributes).toMatchObject({
      'querytrail.hazard.transaction.namespace': 'app',
      'querytrail.hazard.transaction.line': 7,
    });
    // handed to a transaction of its own database: it is part of it
    expect(
      crossDatabaseTransaction(
        { ...trail, transaction: { ...transaction, binding: analytics } },
        writeOn('db1', 'analytics', new ScopeLedger(), 'SELECT 1'),
      ),
    ).toBeUndefined();
  });
});

describe('a memoised result awaited again (prisma promises)', () => {
  const built = internSite('/app/queries.js', 3, 14);
  const request = requestScope({ method: 'GET', url: '/count' });
  const initTrail = () => createTrail({ library: 'prisma', site: built, binding: main });

  it('is init_query_in_request when the promise was made and first run at init', () => {
    const trail = initTrail();
    const hazard = memoisedResultReuse(trail, { phase: 'init', scopeId: undefined, at: 1_000 }, request, 31_000)!;
    expect(hazard).toMatchObject({
      code: 'init_query_in_request',
      severity: 'warning',
      site: built,
      attributes: { 'querytrail.hazard.age_ms': 30_000, 'querytrail.hazard.memoised': true },
    });
    expect(hazard.message).toBe(
      'The prisma query built at init at /app/queries.js:3:14 is awaited in request GET /count, but it already ran: it sends no query and returns the rows it read from main (db1:5432/app) at init, 30.0 s ago; make the call in the request instead (/app/queries.js:3:14).',
    );
  });

  it('is cross_request_reuse for a promise made in one request and awaited again in another', () => {
    const earlier = requestScope({ method: 'GET', url: '/warm' });
    const trail: Trail = {
      ...createTrail({ library: 'prisma', site: built, binding: main }),
      phase: 'request',
      scopeId: earlier.id,
    };
    expect(memoisedResultReuse(trail, { phase: 'request', scopeId: earlier.id, at: 1_000 }, request, 2_000)?.code).toBe(
      'cross_request_reuse',
    );
  });

  it('stays silent in the request that ran it, and outside requests', () => {
    const trail = initTrail();
    expect(
      memoisedResultReuse(trail, { phase: 'request', scopeId: request.id, at: 1_000 }, request, 2_000),
    ).toBeUndefined();
    expect(
      memoisedResultReuse(trail, { phase: 'init', scopeId: undefined, at: 1_000 }, undefined, 2_000),
    ).toBeUndefined();
  });
});
