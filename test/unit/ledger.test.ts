import { internSite } from '../../src/callsite';
import { DatabaseRegistry } from '../../src/database';
import { hashRead, MAX_READ_GROUPS, ScopeLedger, tableKey, transactionControlOf } from '../../src/ledger';
import { analyzeKeywords } from '../../src/statement';
import { lexSql } from '../../src/sql-lexer';

const statement = (sql: string) => {
  const lexed = lexSql(sql, 'postgresql');
  return analyzeKeywords(lexed.sanitized, lexed.words);
};

describe('transaction control', () => {
  it.each([
    ['BEGIN', 'begin'],
    ['begin isolation level serializable', 'begin'],
    ['START TRANSACTION READ WRITE', 'begin'],
    ['COMMIT', 'end'],
    ['END', 'end'],
    ['ROLLBACK', 'end'],
    ['ROLLBACK TO SAVEPOINT sp1', undefined],
    ['SAVEPOINT sp1', undefined],
    ['SELECT 1', undefined],
  ])('%s → %s', (sql, control) => {
    expect(transactionControlOf(statement(sql))).toBe(control);
  });
});

describe('ScopeLedger', () => {
  it('knows a table by its name whatever the schema', () => {
    expect(tableKey('public.Items')).toBe('items');
    const ledger = new ScopeLedger();
    ledger.recordWrite('app', ['public.items'], undefined);
    expect(ledger.writeTo('app', ['items'])).toMatchObject({ namespace: 'app', table: 'public.items' });
    expect(ledger.writeTo('analytics', ['items'])).toBeUndefined();
  });

  it('keeps the first write of a table, and at most 64 tables', () => {
    const ledger = new ScopeLedger();
    const first = internSite('/app/a.js', 1, 1);
    ledger.recordWrite('app', ['t0'], first);
    ledger.recordWrite('app', ['t0'], internSite('/app/a.js', 2, 1));
    expect(ledger.writeTo('app', ['t0'])?.site).toBe(first);
    for (let i = 1; i <= 64; i++) ledger.recordWrite('app', [`t${i}`], undefined);
    expect(ledger.writeTo('app', ['t0'])).toBeUndefined();
    expect(ledger.writeTo('app', ['t64'])).toBeDefined();
  });
});

describe('ScopeLedger reads (n_plus_one, duplicate_query)', () => {
  const databases = new DatabaseRegistry();
  const shard1 = databases.ref('postgresql', 'db1', 5432, 'shard1');
  const shard2 = databases.ref('postgresql', 'db2', 5432, 'shard2');
  const loop = internSite('/app/routes/articles.js', 20, 5);
  const other = internSite('/app/routes/articles.js', 30, 5);
  const byId = statement('SELECT * FROM users WHERE id = $1');
  const read = (ledger: ScopeLedger, values: unknown[], site = loop, database = shard1, sql = byId) =>
    ledger.recordRead(sql, database, site, hashRead(sql.text, values))!;

  it('counts runs of one shape from one site on one database, and how many had new values', () => {
    const ledger = new ScopeLedger();
    for (const id of [1, 2, 3, 2]) read(ledger, [id]);
    const facts = read(ledger, [4]);
    expect(facts.group).toMatchObject({ runs: 5, distinctRuns: 4, site: loop, database: shard1 });
  });

  it('keeps another site, another database (a shard) and another shape apart', () => {
    const ledger = new ScopeLedger();
    read(ledger, [1]);
    expect(read(ledger, [2], other).group.runs).toBe(1);
    expect(read(ledger, [3], loop, shard2).group.runs).toBe(1);
    expect(read(ledger, [4], loop, shard1, statement('SELECT * FROM posts WHERE id = $1')).group.runs).toBe(1);
    expect(read(ledger, [5]).group.runs).toBe(2);
  });

  it('calls a read with the same text and values a repeat, from any line, until a write to its tables', () => {
    const ledger = new ScopeLedger();
    expect(read(ledger, [1]).repeated).toBeUndefined();
    expect(read(ledger, [1], other).repeated).toEqual({ count: 2, firstSite: loop });
    expect(read(ledger, [2]).repeated).toBeUndefined();
    ledger.recordWrite('shard1', ['posts'], undefined); // another table: still a repeat
    expect(read(ledger, [1]).repeated?.count).toBe(3);
    ledger.recordWrite('shard1', ['public.users'], undefined);
    expect(read(ledger, [1]).repeated).toBeUndefined(); // re-read after a write: legitimate
    expect(read(ledger, [1], other).repeated).toEqual({ count: 2, firstSite: loop });
    expect(read(ledger, [1], loop, shard2).repeated).toBeUndefined(); // the same read on another database
  });

  it('tells literals apart though they share a shape', () => {
    const ledger = new ScopeLedger();
    const one = statement('SELECT * FROM users WHERE id = 1');
    const two = statement('SELECT * FROM users WHERE id = 2');
    ledger.recordRead(one, shard1, loop, hashRead('SELECT * FROM users WHERE id = 1', undefined));
    const facts = ledger.recordRead(two, shard1, loop, hashRead('SELECT * FROM users WHERE id = 2', []));
    expect(facts?.repeated).toBeUndefined();
    expect(facts?.group.distinctRuns).toBe(2);
  });

  it(`tracks at most ${MAX_READ_GROUPS} shapes per request, then says so`, () => {
    const ledger = new ScopeLedger();
    for (let i = 0; i < MAX_READ_GROUPS; i++)
      expect(read(ledger, [i], internSite('/app/a.js', i + 1, 1))).toBeDefined();
    expect(ledger.recordRead(byId, shard1, internSite('/app/a.js', 9999, 1), 1)).toBeUndefined();
    expect(ledger.recordRead(byId, shard1, internSite('/app/a.js', 1, 1), 1)?.group.runs).toBe(2); // known: counted
  });

  it('forgets no write: past its write ceiling, any table may have been written', () => {
    const ledger = new ScopeLedger();
    read(ledger, [1]);
    for (let i = 0; i <= 64; i++) ledger.recordWrite('shard1', [`t${i}`], undefined);
    ledger.recordWrite('shard1', ['users'], undefined);
    for (let i = 65; i <= 130; i++) ledger.recordWrite('shard1', [`t${i}`], undefined); // users is evicted
    expect(read(ledger, [1]).repeated).toBeUndefined();
  });
});

describe('hashRead', () => {
  it('hashes text and values alike for equal inputs, and never keeps a value', () => {
    const at = new Date(0);
    const a = hashRead('SELECT $1', ['secret', 1, at, Buffer.from('x'), { a: 1 }, null]);
    expect(hashRead('SELECT $1', ['secret', 1, new Date(0), Buffer.from('x'), { a: 1 }, null])).toBe(a);
    expect(hashRead('SELECT $1', ['secret', '1', at, Buffer.from('x'), { a: 1 }, null])).not.toBe(a);
    expect(Number.isSafeInteger(a)).toBe(true);
    expect(hashRead('SELECT $1', ['secret'])).not.toBe(hashRead('SELECT $1', ['secre', 't']));
    expect(hashRead('SELECT 1', undefined)).toBe(hashRead('SELECT 1', []));
    // integers are hashed without text: apart from each other, from their text and from other numbers
    const ids = [0, 1, -1, 65536, 65537, 2 ** 31 - 1, -(2 ** 31)].map((id) => hashRead('SELECT $1', [id]));
    expect(new Set(ids).size).toBe(ids.length);
    expect(hashRead('SELECT $1', [7])).toBe(hashRead('SELECT $1', [7]));
    expect(hashRead('SELECT $1', [7])).not.toBe(hashRead('SELECT $1', ['7']));
    expect(hashRead('SELECT $1', [7])).not.toBe(hashRead('SELECT $1', [7.5]));
    expect(hashRead('SELECT $1', [1, 2])).not.toBe(hashRead('SELECT $1', [2, 1]));
    expect(hashRead('SELECT $1', [2 ** 31])).not.toBe(hashRead('SELECT $1', [-(2 ** 31)]));
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(hashRead('SELECT $1', [circular])).not.toBe(hashRead('SELECT $1', [circular]));
  });
});
