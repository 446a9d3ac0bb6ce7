import { analyzeKeywords, analyzeStatement, loadPostgresParser } from '../../src/statement';
import { lexSql } from '../../src/sql-lexer';

const keywords = (sql: string) => {
  const lexed = lexSql(sql, 'mysql');
  return analyzeKeywords(lexed.sanitized, lexed.words);
};

describe('statement analysis with the PostgreSQL parser', () => {
  beforeAll(() => loadPostgresParser());

  it.each([
    ['SELECT name FROM items WHERE id = $1', 'SELECT', false, 'SELECT items'],
    ['SELECT * FROM public.items i JOIN tags t ON t.id = i.tag', 'SELECT', false, 'SELECT public.items tags'],
    ['INSERT INTO items (name) VALUES ($1)', 'INSERT', true, 'INSERT items'],
    ['UPDATE items SET name = $1', 'UPDATE', true, 'UPDATE items'],
    ['DELETE FROM items', 'DELETE', true, 'DELETE items'],
    ['SELECT * FROM items FOR UPDATE', 'SELECT', true, 'SELECT items'],
    ['WITH gone AS (DELETE FROM items RETURNING id) SELECT count(*) FROM gone', 'DELETE', true, 'DELETE items SELECT'],
    ["SELECT nextval('items_id_seq')", 'SELECT', true, 'SELECT'],
    ['SELECT * INTO copy FROM items', 'SELECT', true, 'SELECT copy items'],
    ['CREATE TABLE x (id int)', 'CREATE', true, 'CREATE x'],
    ['BEGIN', 'BEGIN', false, 'BEGIN'],
    ['SET search_path = app', 'SET', false, 'SET'],
    ['SHOW server_version', 'SHOW', false, 'SHOW'],
    ['SELECT pg_is_in_recovery()', 'SELECT', false, 'SELECT'],
  ])('%s', (sql, operation, isWrite, summary) => {
    const info = analyzeStatement(sql, 'postgresql');
    expect(info).toMatchObject({ operation, isWrite, summary });
  });

  it.each([
    // the join-after-write that answered "following": false (sequelize, quoted identifiers kept as written)
    [
      'SELECT "User"."id" FROM "Users" AS "User" INNER JOIN "Followers" AS "f" ON "f"."userId" = "User"."id"',
      ['Users', 'Followers'],
      [],
      'SELECT Users Followers',
    ],
    [
      'SELECT * FROM (SELECT * FROM orders o JOIN public.customers c ON true) q WHERE id IN (SELECT id FROM w) ' +
        'UNION SELECT * FROM z',
      ['orders', 'public.customers', 'w', 'z'],
      [],
      'SELECT SELECT orders public.customers SELECT w SELECT z',
    ],
    ['SELECT 1 FROM a WHERE EXISTS (SELECT 1 FROM b WHERE b.a = a.id)', ['a', 'b'], [], 'SELECT a SELECT b'],
    [
      'WITH recent AS (SELECT * FROM orders) SELECT * FROM recent JOIN users ON true',
      ['orders', 'users'],
      [],
      'SELECT orders SELECT users',
    ],
    [
      'WITH moved AS (DELETE FROM a RETURNING *) INSERT INTO "B" SELECT * FROM moved',
      [],
      ['a', 'B'],
      'DELETE a INSERT B SELECT',
    ],
    ['UPDATE t SET x = (SELECT 1 FROM s) FROM u WHERE t.id = u.id', ['s', 'u'], ['t'], 'UPDATE t SELECT s u'],
    [
      'INSERT INTO shipping_details SELECT * FROM orders',
      ['orders'],
      ['shipping_details'],
      'INSERT shipping_details SELECT orders',
    ],
    ['DELETE FROM t USING s WHERE t.id = s.id', ['s'], ['t'], 'DELETE t s'],
    ['TRUNCATE a, b', [], ['a', 'b'], 'TRUNCATE a b'],
  ])('every table of %s', (sql, reads, writes, summary) => {
    expect(analyzeStatement(sql, 'postgresql')).toMatchObject({ reads, writes, summary });
  });

  it('cuts a summary longer than 255 characters at a word', () => {
    const tables = Array.from({ length: 40 }, (_, i) => `table_number_${i}`);
    const info = analyzeStatement(`SELECT * FROM ${tables.join(', ')}`, 'postgresql');
    expect(info.summary.length).toBeLessThanOrEqual(255);
    expect(info.summary).toMatch(/^SELECT table_number_0 table_number_1 .* table_number_\d+$/);
    expect(info.reads).toHaveLength(40);
  });

  it('shares one analysis (and fingerprint) between texts differing only in literals', () => {
    const a = analyzeStatement('SELECT * FROM items WHERE id = 1', 'postgresql');
    const b = analyzeStatement('SELECT * FROM items WHERE id = 2', 'postgresql');
    expect(b).toBe(a);
    expect(a.text).toBe('SELECT * FROM items WHERE id = ?');
    expect(a.fingerprint).toMatch(/^[0-9a-f]{16}$/);
  });

  it('fingerprints IN lists of any length alike (libpg-query)', () => {
    const a = analyzeStatement('SELECT * FROM items WHERE id IN (1, 2)', 'postgresql');
    const b = analyzeStatement('SELECT * FROM items WHERE id IN (1, 2, 3)', 'postgresql');
    expect(a.fingerprint).toBe(b.fingerprint);
  });

  it('falls back to keywords for text the parser rejects, and exports only sanitized text', () => {
    const info = analyzeStatement("SELEC 'secret' FROM items", 'postgresql');
    expect(info.text).toBe('SELEC ? FROM items');
    expect(info.attributes['db.query.text']).toBe('SELEC ? FROM items');
  });
});

describe('keyword analysis (MySQL, and PostgreSQL before the parser loads)', () => {
  it.each([
    ['SELECT * FROM `items` WHERE id = 1', 'SELECT', false, 'SELECT items'],
    ['select * from items lock in share mode', 'SELECT', true, 'SELECT items'],
    ['SELECT * FROM items FOR UPDATE', 'SELECT', true, 'SELECT items'],
    ['INSERT INTO items VALUES (1)', 'INSERT', true, 'INSERT items'],
    ['REPLACE INTO items VALUES (1)', 'REPLACE', true, 'REPLACE items'],
    ['UPDATE items SET a = 1', 'UPDATE', true, 'UPDATE items'],
    ['WITH x AS (SELECT 1) SELECT * FROM x', 'SELECT', false, 'SELECT x'],
    ['SHOW TABLES', 'SHOW', false, 'SHOW'],
    ['ALTER TABLE items ADD c int', 'ALTER', true, 'ALTER items'],
    ['insert into public.items (id) values (1)', 'INSERT', true, 'INSERT public.items'],
    ['SELECT * FROM `app`.`items`', 'SELECT', false, 'SELECT app.items'],
    ['END', 'END', false, 'END'],
  ])('%s', (sql, operation, isWrite, summary) => {
    expect(keywords(sql)).toMatchObject({ operation, isWrite, summary });
  });

  it.each([
    [
      'SELECT * FROM `Users` u JOIN Followers f ON f.a = u.b WHERE id IN (SELECT x FROM w)',
      ['Users', 'Followers', 'w'],
      [],
    ],
    ['INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = 2', [], ['t']],
    ['DELETE FROM t WHERE id IN (SELECT id FROM s)', ['s'], ['t']],
    ['UPDATE t JOIN s ON s.id = t.id SET t.a = 1', ['s'], ['t']],
    ['SELECT * FROM t FOR UPDATE OF t', ['t'], []],
  ])('every table of %s', (sql, reads, writes) => {
    expect(keywords(sql)).toMatchObject({ reads, writes });
  });
});
