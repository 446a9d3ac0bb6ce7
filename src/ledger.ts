import type { SiteRef } from './callsite';
import type { DatabaseRef } from './database';
import type { StatementInfo } from './statement';

/** Per request or job: enough for the hazards, and a ceiling, since a request may loop over writes. */
const MAX_WRITES = 64;

/** A table written on a primary. Never a value: only which table, where, and from which line. */
export interface WriteRecord {
  readonly namespace: string;
  readonly table: string;
  readonly site: SiteRef | undefined;
}

/** A transaction open on one connection. */
export interface OpenTransaction {
  readonly database: DatabaseRef;
  /** The connection it is open on (the driver's per-connection facts object). */
  readonly connection: object;
  readonly site: SiteRef | undefined;
}

export type TransactionControl = 'begin' | 'end';

/** BEGIN / START TRANSACTION open one; COMMIT, END, ROLLBACK (not `ROLLBACK TO SAVEPOINT`) close it. */
export function transactionControlOf(statement: StatementInfo): TransactionControl | undefined {
  switch (statement.operation) {
    case 'BEGIN':
    case 'START':
      return 'begin';
    case 'COMMIT':
    case 'END':
      return 'end';
    case 'ROLLBACK':
      return /\bTO\b/i.test(statement.text) ? undefined : 'end';
    default:
      return undefined;
  }
}

/** `public.items` and `items` are the same table for the purpose of replication lag. */
export function tableKey(collection: string): string {
  const dot = collection.lastIndexOf('.');
  return (dot < 0 ? collection : collection.slice(dot + 1)).toLowerCase();
}

/**
 * What one request or job has done so far that later queries are judged against: the tables it wrote
 * on a primary, the transactions it has open. It hangs on the scope, so it is freed with it; it is
 * bounded; it never holds parameter values.
 */
export class ScopeLedger {
  private readonly writes = new Map<string, WriteRecord>();
  private readonly transactions = new Map<object, OpenTransaction>();

  recordWrite(namespace: string, collection: string, site: SiteRef | undefined): void {
    const table = tableKey(collection);
    const key = `${namespace}\u0000${table}`;
    if (this.writes.has(key)) return; // the first write is the one the lag starts from
    if (this.writes.size >= MAX_WRITES) this.writes.delete(this.writes.keys().next().value as string);
    this.writes.set(key, { namespace, table, site });
  }

  writeTo(namespace: string, collection: string): WriteRecord | undefined {
    return this.writes.get(`${namespace}\u0000${tableKey(collection)}`);
  }

  begin(connection: object, database: DatabaseRef, site: SiteRef | undefined): void {
    this.transactions.set(connection, { database, connection, site });
  }

  end(connection: object): void {
    this.transactions.delete(connection);
  }

  /** A transaction open on another database than `database` (so not the one this connection is in). */
  transactionOnOtherDatabase(database: DatabaseRef): OpenTransaction | undefined {
    for (const open of this.transactions.values()) if (open.database !== database) return open;
    return undefined;
  }
}
