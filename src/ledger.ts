import { CallSite, sameLine, SiteRef } from './callsite';
import { Fnv, FnvState } from './fnv';
import type { DatabaseRef } from './database';
import type { StatementInfo } from './statement';

/** Per request or job: enough for the hazards, and a ceiling, since a request may loop over writes. */
const MAX_WRITES = 64;
/** Read shapes (fingerprint × database × site) tracked per request or job; past it, reads are counted only. */
export const MAX_READ_GROUPS = 256;
/** Distinct (statement, values) hashes kept per request or job for duplicate_query. */
const MAX_READ_HASHES = 1024;
/** Distinct values counted per read group; past it, every run is taken to be a new one. */
const MAX_VALUES_PER_GROUP = 64;

/** A table written in this request or job. Never a value: only which table, where first, and when last. */
export interface WriteRecord {
  readonly namespace: string;
  /** As written in the statement (quoted identifiers keep their case). */
  readonly table: string;
  /** The first write: the one replication lag starts from. */
  readonly site: SiteRef | undefined;
  /** The ledger's sequence number of the last write to it. */
  lastWrite: number;
}

/**
 * The runs of one read statement shape (fingerprint) on one database from one application site: the
 * N+1 signal. Values are counted through hashes, never kept.
 */
export interface ReadGroup {
  readonly statement: StatementInfo;
  readonly database: DatabaseRef;
  readonly site: CallSite | undefined;
  runs: number;
  /** Runs whose values differed from every earlier run's. */
  distinctRuns: number;
  finishedRuns: number;
  finishedMs: number;
  /** n_plus_one was reported for this group (once per request, shape and site). */
  reported: boolean;
  readonly valueHashes: Set<number>;
}

/** The same statement with the same values, read again with no write to its tables in between. */
export interface RepeatedRead {
  /** Reads so far, this one included. */
  readonly count: number;
  /** Where it was first read. */
  readonly firstSite: CallSite | undefined;
}

/** What the ledger knows about one read when it starts. */
export interface ReadFacts {
  readonly group: ReadGroup;
  readonly repeated?: RepeatedRead;
}

interface ReadHash {
  count: number;
  /** The ledger's sequence number when it was (re)read: writes after it make the next read legitimate. */
  at: number;
  firstSite: CallSite | undefined;
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

/** `public.items` and `items` are the same table for the purpose of replication lag and re-reads. */
export function tableKey(collection: string): string {
  const dot = collection.lastIndexOf('.');
  return (dot < 0 ? collection : collection.slice(dot + 1)).toLowerCase();
}

/**
 * What one request or job has done so far that later queries are judged against: the tables it wrote,
 * the transactions it has open, the reads it repeated. It hangs on the scope, so it is freed with it; it
 * is bounded; it never holds parameter values (only hashes of them).
 */
export class ScopeLedger {
  private readonly writes = new Map<string, WriteRecord>();
  private readonly transactions = new Map<object, OpenTransaction>();
  private readonly readGroups = new Map<string, ReadGroup[]>();
  private readGroupCount = 0;
  private readonly readHashes = new Map<DatabaseRef, Map<number, ReadHash>>();
  private readHashCount = 0;
  /** Increases with every write, so a read knows whether its tables were written since an earlier one. */
  private sequence = 0;
  /** The last write of tables no longer tracked (MAX_WRITES): any table not found may have been written then. */
  private forgottenWrite = 0;

  recordWrite(namespace: string, tables: readonly string[], site: SiteRef | undefined): void {
    for (const table of tables) {
      const key = `${namespace}\u0000${tableKey(table)}`;
      const seq = ++this.sequence;
      const known = this.writes.get(key);
      if (known !== undefined) {
        known.lastWrite = seq; // the first write stays the one the lag starts from
        continue;
      }
      if (this.writes.size >= MAX_WRITES) {
        const oldest = this.writes.keys().next().value as string;
        this.forgottenWrite = Math.max(this.forgottenWrite, this.writes.get(oldest)!.lastWrite);
        this.writes.delete(oldest);
      }
      this.writes.set(key, { namespace, table, site, lastWrite: seq });
    }
  }

  /** The first table of `tables` this request or job wrote in `namespace`. */
  writeTo(namespace: string, tables: readonly string[]): WriteRecord | undefined {
    for (const table of tables) {
      const write = this.writes.get(`${namespace}\u0000${tableKey(table)}`);
      if (write !== undefined) return write;
    }
    return undefined;
  }

  private writtenSince(namespace: string | undefined, tables: readonly string[], since: number): boolean {
    if (this.forgottenWrite > since) return true;
    if (this.sequence <= since) return false; // nothing written since
    for (const table of tables) {
      const write = this.writes.get(`${namespace ?? ''}\u0000${tableKey(table)}`);
      if (write !== undefined && write.lastWrite > since) return true;
    }
    return false;
  }

  /**
   * A read about to run: counts it in its group (shape × database × site) and against earlier reads of
   * the same statement and values. Undefined once MAX_READ_GROUPS groups are tracked (the caller counts it).
   */
  recordRead(
    statement: StatementInfo,
    database: DatabaseRef,
    site: CallSite | undefined,
    valuesHash: number,
  ): ReadFacts | undefined {
    const group = this.groupOf(statement, database, site);
    if (group === undefined) return undefined;
    group.runs++;
    if (!group.valueHashes.has(valuesHash)) {
      group.distinctRuns++;
      if (group.valueHashes.size < MAX_VALUES_PER_GROUP) group.valueHashes.add(valuesHash);
    }
    return { group, repeated: this.repeatedRead(statement, database, site, valuesHash) };
  }

  private groupOf(statement: StatementInfo, database: DatabaseRef, site: CallSite | undefined): ReadGroup | undefined {
    let groups = this.readGroups.get(statement.fingerprint);
    // one line is one site: the column differs between the call and the await of one statement
    const known = groups?.find((g) => g.database === database && sameLine(g.site, site));
    if (known !== undefined) return known;
    if (this.readGroupCount >= MAX_READ_GROUPS) return undefined;
    if (groups === undefined) this.readGroups.set(statement.fingerprint, (groups = []));
    const group: ReadGroup = {
      statement,
      database,
      site,
      runs: 0,
      distinctRuns: 0,
      finishedRuns: 0,
      finishedMs: 0,
      reported: false,
      valueHashes: new Set(),
    };
    groups.push(group);
    this.readGroupCount++;
    return group;
  }

  private repeatedRead(
    statement: StatementInfo,
    database: DatabaseRef,
    site: CallSite | undefined,
    valuesHash: number,
  ): RepeatedRead | undefined {
    let hashes = this.readHashes.get(database);
    if (hashes === undefined) this.readHashes.set(database, (hashes = new Map()));
    const earlier = hashes.get(valuesHash);
    if (earlier === undefined) {
      if (this.readHashCount++ < MAX_READ_HASHES)
        hashes.set(valuesHash, { count: 1, at: this.sequence, firstSite: site });
      return undefined;
    }
    if (this.writtenSince(database.namespace, statement.reads, earlier.at)) {
      // a re-read after a write to its tables is legitimate: it starts a new count
      earlier.count = 1;
      earlier.at = this.sequence;
      earlier.firstSite = site;
      return undefined;
    }
    earlier.count++;
    return { count: earlier.count, firstSite: earlier.firstSite };
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

const reads = new Fnv();
/** The same texts are sent again and again (with other values): their share of the hash is kept (bounded). */
const textStates = new Map<string, FnvState>();
const MAX_TEXT_STATES = 4096;
let unreadable = 0;

/**
 * A hash of a read as sent — its text and its values — for duplicate_query and the distinct values of an
 * N+1: the ledger compares reads through it and keeps nothing else of them. A value the hash cannot read
 * (a circular object) makes it unique.
 */
export function hashRead(text: string, values: readonly unknown[] | undefined): number {
  const known = textStates.get(text);
  if (known !== undefined) reads.restore(known);
  else {
    reads.reset().update(text);
    if (textStates.size < MAX_TEXT_STATES) textStates.set(text, reads.save());
  }
  if (values === undefined) return reads.number();
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    // each value is tagged with its kind: '1' and 1, an int and its text, hash apart
    if (typeof value === 'number' && (value | 0) === value) reads.update('\u0000i').updateInt32(value);
    else reads.update(typeof value === 'string' ? '\u0000s' : '\u0000o').update(valueText(value));
  }
  return reads.number();
}

function valueText(value: unknown): string {
  if (value === null || typeof value !== 'object')
    return typeof value === 'string' ? value : `${typeof value}:${String(value)}`;
  if (value instanceof Date) return `date:${value.getTime()}`;
  if (ArrayBuffer.isView(value))
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  try {
    return JSON.stringify(value) ?? '';
  } catch {
    return `unreadable ${++unreadable}`;
  }
}
