import { internSite } from '../../src/callsite';
import { ScopeLedger, tableKey, transactionControlOf } from '../../src/ledger';
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
    ledger.recordWrite('app', 'public.items', undefined);
    expect(ledger.writeTo('app', 'items')).toMatchObject({ namespace: 'app', table: 'items' });
    expect(ledger.writeTo('analytics', 'items')).toBeUndefined();
  });

  it('keeps the first write of a table, and at most 64 tables', () => {
    const ledger = new ScopeLedger();
    const first = internSite('/app/a.js', 1, 1);
    ledger.recordWrite('app', 't0', first);
    ledger.recordWrite('app', 't0', internSite('/app/a.js', 2, 1));
    expect(ledger.writeTo('app', 't0')?.site).toBe(first);
    for (let i = 1; i <= 64; i++) ledger.recordWrite('app', `t${i}`, undefined);
    expect(ledger.writeTo('app', 't0')).toBeUndefined();
    expect(ledger.writeTo('app', 't64')).toBeDefined();
  });
});
