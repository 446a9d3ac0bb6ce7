import { lexSql } from '../../src/sql-lexer';

const pg = (sql: string) => lexSql(sql, 'postgresql').sanitized;
const my = (sql: string) => lexSql(sql, 'mysql').sanitized;

describe('lexSql: literals become ?, nothing else changes meaning', () => {
  it.each([
    ["SELECT * FROM users WHERE name = 'o''brien' AND id = 42", 'SELECT * FROM users WHERE name = ? AND id = ?'],
    ["SELECT E'a\\'b', 1.5e-3, .5, 0x1F", 'SELECT ?, ?, ?, ?'],
    ['SELECT $tag$ secret; DROP $tag$, $$x$$', 'SELECT ?, ?'],
    ['SELECT * FROM t WHERE a = $1 AND b = $12', 'SELECT * FROM t WHERE a = $1 AND b = $12'],
    ['SELECT "Weird ""Col""", t1.c2 FROM "T" t1', 'SELECT "Weird ""Col""", t1.c2 FROM "T" t1'],
    ["SELECT 1 -- password 'x'\n, 2 /* outer /* nested */ still */ FROM t", 'SELECT ?, ? FROM t'],
    ['  SELECT\n\t1  ', 'SELECT ?'],
    ["SELECT B'101', X'ff', N'ü'", 'SELECT ?, ?, ?'],
    ["SELECT 'unterminated", 'SELECT ?'],
  ])('postgresql: %s', (input, expected) => {
    expect(pg(input)).toBe(expected);
  });

  it('mysql: double quotes are strings, backticks identifiers, # comments, backslash escapes', () => {
    expect(my('SELECT `a` FROM `t` WHERE b = "x\\"y" # note\nAND c = ?')).toBe(
      'SELECT `a` FROM `t` WHERE b = ? AND c = ?',
    );
  });

  it('collects upper-cased words outside literals', () => {
    expect(lexSql("select a from Users where b = 'from'", 'postgresql').words).toEqual([
      'SELECT',
      'A',
      'FROM',
      'USERS',
      'WHERE',
      'B',
    ]);
  });
});
