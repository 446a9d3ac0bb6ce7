import { DatabaseRegistry } from '../../src/database';
import { pgTargetOf } from '../../instrumentations/pg/target';

describe('pgTargetOf: the database an ORM’s pg Pool or Client points at', () => {
  const databases = new DatabaseRegistry();
  const connected = databases.ref('postgresql', '127.0.0.1', 5432, 'app');

  it('reads a Client’s connection parameters', () => {
    expect(pgTargetOf({ connectionParameters: { host: '127.0.0.1', port: 5432, database: 'app' } }, databases)).toBe(
      connected,
    );
  });

  it('reads a Pool’s connection string or options, with pg’s defaults, as the same database the connection will be', () => {
    expect(pgTargetOf({ options: { connectionString: 'postgres://user:secret@127.0.0.1/app' } }, databases)).toBe(
      connected,
    );
    expect(pgTargetOf({ options: { host: 'localhost', database: 'app' } }, databases)).toBe(connected);
  });

  it('gives up on anything else', () => {
    expect(pgTargetOf(undefined, databases)).toBeUndefined();
    expect(pgTargetOf({ options: { connectionString: 'not a url' } }, databases)).toBeUndefined();
  });
});
