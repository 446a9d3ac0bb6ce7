// Properties of what parses the app's SQL and the user's settings, over many generated inputs: never a
// throw into the app, never a literal or a password in what is exported.
import fc from 'fast-check';
import { parseDatabaseAliases } from '../../src/database';
import { analyzeStatement } from '../../src/statement';
import { lexSql } from '../../src/sql-lexer';

const RUNS = { numRuns: 10_000 };
const dialect = fc.constantFrom('postgresql' as const, 'mysql' as const);

/** SQL-ish text: keywords, identifiers, operators, quotes, comments and noise, in any order. */
const sqlish = fc
  .array(
    fc.oneof(
      fc.constantFrom('SELECT', 'FROM', 'WHERE', 'INSERT INTO', 'UPDATE', 'SET', 'WITH', 'AS', '(', ')', ',', ';'),
      fc.constantFrom("'", '"', '`', '$$', '$tag$', "E'", '--', '/*', '*/', '#', '\\', '\n', ' ', '::', '$1'),
      fc.string({ maxLength: 12 }),
    ),
    { maxLength: 30 },
  )
  .map((parts) => parts.join(' '));

/** A secret value inside a literal the lexer must replace: string, dollar-quoted, escape string or number. */
const literal = fc.tuple(fc.integer({ min: 100_000, max: 999_999 }), fc.nat(3)).map(([n, form]) => {
  const canary = `canary${n}`;
  const text = [`'${canary}'`, `$$${canary}$$`, `E'${canary}\\''`, `${n}`][form];
  return { text, secret: form === 3 ? String(n) : canary };
});

describe('the SQL lexer', () => {
  it('never throws, whatever the text', () => {
    fc.assert(
      fc.property(fc.oneof(sqlish, fc.string(), fc.string({ unit: 'binary' })), dialect, (sql, d) => {
        lexSql(sql, d);
      }),
      RUNS,
    );
  });

  it('keeps no literal value in the sanitized text', () => {
    fc.assert(
      fc.property(fc.array(literal, { minLength: 1, maxLength: 4 }), fc.constantFrom('=', 'IN (', '<>'), (lits, op) => {
        const sql = `SELECT id FROM items WHERE ${lits.map((l) => `name ${op} ${l.text}${op === 'IN (' ? ')' : ''}`).join(' AND ')}`;
        const { sanitized } = lexSql(sql, 'postgresql');
        for (const l of lits) expect(sanitized).not.toContain(l.secret);
      }),
      RUNS,
    );
  });

  it('gives the same output for the same input', () => {
    fc.assert(
      fc.property(sqlish, dialect, (sql, d) => {
        expect(lexSql(sql, d)).toEqual(lexSql(sql, d));
      }),
      RUNS,
    );
  });
});

describe('statement analysis', () => {
  it('never throws, and its exported text is the sanitized text', () => {
    fc.assert(
      fc.property(fc.oneof(sqlish, fc.string()), dialect, (sql, d) => {
        const info = analyzeStatement(sql, d);
        expect(info.attributes['db.query.text']).toBe(info.text);
      }),
      RUNS,
    );
  });
});

describe('QUERYTRAIL_DATABASES', () => {
  it('parses or says what is wrong, and never repeats a password', () => {
    const password = fc.integer({ min: 100_000, max: 999_999 }).map((n) => `pw${n}`);
    const entry = fc
      .tuple(fc.string({ maxLength: 8 }), fc.string({ maxLength: 12 }), password)
      .map(([alias, rest, pw]) => ({ text: `${alias}=postgres://user:${pw}@${rest}`, pw }));
    fc.assert(
      fc.property(
        fc.array(
          fc.oneof(
            entry,
            fc.string().map((text) => ({ text, pw: undefined })),
          ),
          { maxLength: 4 },
        ),
        (entries) => {
          const text = entries.map((e) => e.text).join(',');
          let parsed: string;
          try {
            parsed = JSON.stringify(parseDatabaseAliases(text));
          } catch (err) {
            expect(err).toBeInstanceOf(Error);
            for (const e of entries) if (e.pw) expect((err as Error).message).not.toContain(e.pw);
            return;
          }
          for (const e of entries) if (e.pw) expect(parsed).not.toContain(e.pw);
        },
      ),
      RUNS,
    );
  });
});
