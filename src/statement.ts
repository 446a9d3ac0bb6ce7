import type { Attributes } from '@opentelemetry/api';
import { ATTR } from './attributes';
import { internalErrorOccurred } from './guard';
import { Fnv } from './fnv';
import { lexSql, SqlDialect } from './sql-lexer';

/** What querytrail knows about one statement shape. Shared by every text of that shape: never mutate. */
export interface StatementInfo {
  /** Sanitized text (literals → `?`), the `db.query.text` attribute and the shape key. */
  readonly text: string;
  /** The first operation (`SELECT`, `INSERT`, for a data-modifying CTE the modifying one): metrics only. */
  readonly operation?: string;
  /** Every table it reads — joins, sub-queries, CTE bodies, `IN`/`EXISTS` sub-selects — as written. */
  readonly reads: readonly string[];
  /** Every table it writes, data-modifying CTEs included, as written. */
  readonly writes: readonly string[];
  /** Would fail on a hot standby: DML, DDL, SELECT … FOR UPDATE/SHARE, data-modifying CTEs, nextval(). */
  readonly isWrite: boolean;
  /** `db.query.summary`, also the span name: each operation and table in text order, e.g. `SELECT users orders`. */
  readonly summary: string;
  /** Same for statements that differ only in literals or IN-list lengths (libpg-query for PostgreSQL). */
  readonly fingerprint: string;
  /**
   * Analysed by PostgreSQL's own parser. Until libpg-query is loaded the same text gets a keyword analysis
   * and another fingerprint: fingerprints are compared only between analyses of the same kind.
   */
  readonly parsed: boolean;
  readonly attributes: Attributes;
}

// libpg-query is WASM, loaded asynchronously. Until it is ready, PostgreSQL statements are analysed by
// keywords and not cached, so the precise analysis takes over for every shape once it is.
interface PgParser {
  parseSync(sql: string): { stmts: { stmt: Record<string, unknown> }[] };
  fingerprintSync(sql: string): string;
}
let pgParser: PgParser | undefined;
let pgParserLoading: Promise<void> | undefined;

export function loadPostgresParser(): Promise<void> {
  pgParserLoading ??= (async () => {
    const lib = require('libpg-query') as PgParser & { loadModule(): Promise<void> };
    await lib.loadModule();
    pgParser = lib;
  })().catch((err) => internalErrorOccurred('loading libpg-query', err));
  return pgParserLoading;
}

/** Bounded caches: raw text → info (hit: one Map.get), and shape → info (hit: one lexer pass). */
const MAX_TEXTS = 4096;
const MAX_SHAPES = 4096;
const byText = new Map<string, StatementInfo>();
const byShape = new Map<string, StatementInfo>();

export function analyzeStatement(sql: string, dialect: SqlDialect): StatementInfo {
  const key = dialect === 'postgresql' ? sql : `${dialect}\u0000${sql}`;
  let info = byText.get(key);
  if (info !== undefined) return info;
  const lexed = lexSql(sql, dialect);
  const shapeKey = dialect === 'postgresql' ? lexed.sanitized : `${dialect}\u0000${lexed.sanitized}`;
  info = byShape.get(shapeKey);
  if (info === undefined) {
    const parsed = dialect === 'postgresql' && pgParser ? analyzePostgres(pgParser, sql, lexed.sanitized) : undefined;
    info = parsed ?? analyzeKeywords(lexed.sanitized, lexed.words);
    if (parsed === undefined && dialect === 'postgresql' && !pgParser) return info;
    remember(byShape, shapeKey, info, MAX_SHAPES);
  }
  remember(byText, key, info, MAX_TEXTS);
  return info;
}

function remember(map: Map<string, StatementInfo>, key: string, info: StatementInfo, max: number): void {
  if (map.size >= max) map.delete(map.keys().next().value as string); // oldest first
  map.set(key, info);
}

/** Semantic conventions: a summary longer than this is cut at a word boundary. */
const MAX_SUMMARY = 255;

interface Tables {
  reads: readonly string[];
  writes: readonly string[];
  /** Operations and tables in text order. */
  summary: readonly string[];
}

function makeInfo(
  text: string,
  operation: string | undefined,
  tables: Tables,
  isWrite: boolean,
  fingerprint: string,
  parsed: boolean,
): StatementInfo {
  const { reads, writes } = tables;
  const summary = summaryOf(tables.summary.length ? tables.summary : [operation ?? 'QUERY']);
  // Not `db.operation.name` nor `db.collection.name`: for SQL, which can name several operations and tables
  // in one text, the semantic conventions say not to parse them out of it; the summary names both.
  const attributes: Attributes = { [ATTR.DB_QUERY_TEXT]: text, [ATTR.DB_QUERY_SUMMARY]: summary };
  const info = { text, operation, reads, writes, isWrite, summary, fingerprint, parsed, attributes };
  return Object.freeze(info);
}

function summaryOf(words: readonly string[]): string {
  let summary = words[0];
  for (let i = 1; i < words.length && summary.length + 1 + words[i].length <= MAX_SUMMARY; i++) {
    summary += ` ${words[i]}`;
  }
  return summary.slice(0, MAX_SUMMARY);
}

const READ_LEADS = new Set([
  'SELECT',
  'VALUES',
  'TABLE',
  'SHOW',
  'SET',
  'RESET',
  'BEGIN',
  'START',
  'COMMIT',
  'END',
  'ROLLBACK',
  'SAVEPOINT',
  'RELEASE',
  'EXPLAIN',
  'DESCRIBE',
  'DESC',
  'USE',
  'FETCH',
  'CLOSE',
  'DECLARE',
  'DEALLOCATE',
  'DISCARD',
]);
const WRITE_WORDS = new Set([
  'INSERT',
  'UPDATE',
  'DELETE',
  'MERGE',
  'REPLACE',
  'UPSERT',
  'TRUNCATE',
  'NEXTVAL',
  'SETVAL',
]);

/** Keyword analysis: MySQL/MariaDB, and PostgreSQL until libpg-query is loaded (or cannot parse). */
export function analyzeKeywords(sanitized: string, words: string[]): StatementInfo {
  const lead = words[0];
  const operation = lead === 'WITH' ? (words.find((w) => w === 'SELECT' || WRITE_WORDS.has(w)) ?? 'WITH') : lead;
  let isWrite = lead !== undefined && !READ_LEADS.has(lead) && lead !== 'WITH';
  if (!isWrite && (lead === 'SELECT' || lead === 'WITH' || lead === 'EXPLAIN')) {
    isWrite = words.some(
      (w, i) =>
        WRITE_WORDS.has(w) ||
        (w === 'FOR' &&
          (words[i + 1] === 'UPDATE' || words[i + 1] === 'SHARE' || words[i + 1] === 'NO' || words[i + 1] === 'KEY')) ||
        (w === 'LOCK' && words[i + 1] === 'IN'),
    );
  }
  return makeInfo(sanitized, operation, tablesByKeywords(sanitized, operation, lead), isWrite, fnv1a(sanitized), false);
}

const NAME = String.raw`(?:"[^"]+"|\`[^\`]+\`|[A-Za-z_][\w$]*)`;
const TABLE_AFTER = new RegExp(String.raw`\b(FROM|JOIN|INTO|UPDATE|TABLE)\s+(${NAME}(?:\.${NAME})*)`, 'gi');

/** Which keyword introduces a write statement's target, by the statement's leading word. */
const TARGET_KEYWORD: Record<string, string> = { INSERT: 'INTO', REPLACE: 'INTO', UPDATE: 'UPDATE', DELETE: 'FROM' };

/** Without a parser: the names after FROM, JOIN, INTO, UPDATE and TABLE, as written (quotes dropped). */
function tablesByKeywords(sanitized: string, operation: string | undefined, lead: string | undefined): Tables {
  const reads: string[] = [];
  const writes: string[] = [];
  const writing = lead !== undefined && lead !== 'WITH' && !READ_LEADS.has(lead);
  const targetKeyword = lead === undefined ? undefined : (TARGET_KEYWORD[lead] ?? 'TABLE');
  for (const match of sanitized.matchAll(TABLE_AFTER)) {
    const name = match[2].replace(/["`]/g, '');
    const keyword = match[1].toUpperCase();
    const target = writing && writes.length === 0 && keyword === targetKeyword;
    // FOR UPDATE, ON DUPLICATE KEY UPDATE, SELECT … INTO: no table read there
    if (
      (!target && (keyword === 'UPDATE' || keyword === 'TABLE' || keyword === 'INTO')) ||
      READ_LEADS.has(name.toUpperCase())
    )
      continue;
    const list = target ? writes : reads;
    if (!list.includes(name)) list.push(name);
  }
  const first = writes[0] ?? reads[0];
  return { reads, writes, summary: first ? [operation ?? 'QUERY', first] : [] };
}

const fingerprints = new Fnv();

function fnv1a(text: string): string {
  return fingerprints.reset().update(text).hex();
}

// ---- PostgreSQL, from the real parser ----

const STATEMENT_OPERATIONS: Record<string, string> = {
  SelectStmt: 'SELECT',
  InsertStmt: 'INSERT',
  UpdateStmt: 'UPDATE',
  DeleteStmt: 'DELETE',
  MergeStmt: 'MERGE',
  VariableSetStmt: 'SET',
  VariableShowStmt: 'SHOW',
  ExplainStmt: 'EXPLAIN',
  CopyStmt: 'COPY',
  TruncateStmt: 'TRUNCATE',
  CallStmt: 'CALL',
};
/** Statements a hot standby accepts. Everything not listed (DDL, DML, LISTEN, NOTIFY, ...) is a write. */
const STANDBY_SAFE = new Set([
  'SelectStmt',
  'VariableSetStmt',
  'VariableShowStmt',
  'TransactionStmt',
  'ExplainStmt',
  'DeclareCursorStmt',
  'FetchStmt',
  'ClosePortalStmt',
  'PrepareStmt',
  'ExecuteStmt',
  'DeallocateStmt',
  'DiscardStmt',
]);
const WRITE_NODES = new Set(['InsertStmt', 'UpdateStmt', 'DeleteStmt', 'MergeStmt', 'LockingClause', 'IntoClause']);
const WRITE_FUNCTIONS = new Set(['nextval', 'setval']);

function analyzePostgres(parser: PgParser, sql: string, sanitized: string): StatementInfo | undefined {
  let stmts: { stmt: Record<string, unknown> }[];
  let fingerprint: string;
  try {
    stmts = parser.parseSync(sql).stmts;
    fingerprint = parser.fingerprintSync(sql);
  } catch {
    return undefined; // not valid PostgreSQL: the server will say so; keywords will do for the span
  }
  if (stmts.length === 0) return undefined;
  const [nodeType, node] = Object.entries(stmts[0].stmt)[0] as [string, Record<string, unknown>];
  let operation = STATEMENT_OPERATIONS[nodeType] ?? leadingWord(sanitized);
  if (nodeType === 'SelectStmt' && (node.withClause as Record<string, unknown> | undefined)) {
    const inner = findFirstNode(node, WRITE_NODES);
    if (inner && STATEMENT_OPERATIONS[inner]) operation = STATEMENT_OPERATIONS[inner];
  }
  const isWrite = stmts.some(({ stmt }) => {
    const [type, body] = Object.entries(stmt)[0];
    return !STANDBY_SAFE.has(type) || findFirstNode(body, WRITE_NODES) !== undefined || callsWriteFunction(body);
  });
  return makeInfo(sanitized, operation, tablesOfTree(stmts, operation), isWrite, fingerprint, true);
}

function leadingWord(sanitized: string): string | undefined {
  return /^[A-Za-z]+/.exec(sanitized)?.[0].toUpperCase();
}

/** Depth-first: the first node whose type is in `types`. */
function findFirstNode(tree: unknown, types: Set<string>): string | undefined {
  if (tree === null || typeof tree !== 'object') return undefined;
  if (Array.isArray(tree)) {
    for (const item of tree) {
      const found = findFirstNode(item, types);
      if (found) return found;
    }
    return undefined;
  }
  for (const [key, value] of Object.entries(tree)) {
    if (
      types.has(key) ||
      (key === 'lockingClause' && Array.isArray(value) && value.length) ||
      (key === 'intoClause' && value)
    )
      return key;
    const found = findFirstNode(value, types);
    if (found) return found;
  }
  return undefined;
}

function callsWriteFunction(tree: unknown): boolean {
  if (tree === null || typeof tree !== 'object') return false;
  if (Array.isArray(tree)) return tree.some(callsWriteFunction);
  const call = (tree as Record<string, unknown>).FuncCall as
    { funcname?: { String?: { sval?: string } }[] } | undefined;
  if (call?.funcname?.some((part) => WRITE_FUNCTIONS.has(part.String?.sval ?? ''))) return true;
  return Object.values(tree).some(callsWriteFunction);
}

type Node = Record<string, unknown>;
interface RangeVar {
  schemaname?: string;
  relname?: string;
}
/** Fields visitStatement reads first (WITH, the target, UPDATE's FROM), so the summary follows the text. */
const SKIPPED_FIELDS = new Set([
  'withClause',
  'relation',
  'relations',
  'intoClause',
  'larg',
  'rarg',
  'targetList',
  'fromClause',
]);

/**
 * Every table the statements read and write, from the parse tree, and the semantic-convention summary:
 * each operation and table in the order they appear, e.g. `INSERT shipping_details SELECT orders`. Names
 * are the server's (unquoted identifiers folded, quoted ones as written); CTE names are not tables.
 */
function tablesOfTree(stmts: { stmt: Node }[], operation: string | undefined): Tables {
  const cteNames = new Set<string>();
  collectCteNames(stmts, cteNames);
  const reads: string[] = [];
  const writes: string[] = [];
  const summary: string[] = [];
  const table = (relation: RangeVar | undefined, list: string[]): void => {
    if (!relation?.relname || (!relation.schemaname && cteNames.has(relation.relname))) return;
    const name = relation.schemaname ? `${relation.schemaname}.${relation.relname}` : relation.relname;
    summary.push(name);
    if (!list.includes(name)) list.push(name);
  };
  const visitStatement = (type: string, node: Node) => {
    if (node.withClause) visit(node.withClause);
    if (type === 'SelectStmt' && node.op !== undefined && node.op !== 'SETOP_NONE') {
      visitStatement(type, node.larg as Node);
      visitStatement(type, node.rarg as Node);
      return;
    }
    // INSERT … VALUES parses as a SELECT of values lists: no SELECT said in the text
    const said = type === 'SelectStmt' && node.valuesLists ? undefined : STATEMENT_OPERATIONS[type];
    const top = summary.length === 0;
    if (said ?? (top ? operation : undefined)) summary.push((said ?? operation)!);
    const target =
      type === 'SelectStmt' ? (node.intoClause as { rel?: RangeVar } | undefined)?.rel : (node.relation as RangeVar);
    // COPY t TO reads t; every other statement with a `relation` (DML, DDL, COPY FROM) writes it
    table(target, type === 'CopyStmt' && !node.is_from ? reads : writes);
    if (type === 'TruncateStmt') for (const r of node.relations as Node[]) table(r.RangeVar as RangeVar, writes);
    visit(node.targetList);
    visit(node.fromClause);
    for (const [key, value] of Object.entries(node)) if (!SKIPPED_FIELDS.has(key)) visit(value);
  };
  const visit = (tree: unknown): void => {
    if (tree === null || typeof tree !== 'object') return;
    if (Array.isArray(tree)) {
      for (const item of tree) visit(item);
      return;
    }
    for (const [key, value] of Object.entries(tree as Node)) {
      if (key === 'RangeVar') table(value as RangeVar, reads);
      else if (key.endsWith('Stmt') && value !== null && typeof value === 'object') visitStatement(key, value as Node);
      else visit(value);
    }
  };
  for (const { stmt } of stmts) visit(stmt);
  // a statement that names no table (SET, SELECT 1) is summarised by its operation alone
  return { reads, writes, summary: reads.length || writes.length ? summary : [operation ?? 'QUERY'] };
}

function collectCteNames(tree: unknown, names: Set<string>): void {
  if (tree === null || typeof tree !== 'object') return;
  if (Array.isArray(tree)) {
    for (const item of tree) collectCteNames(item, names);
    return;
  }
  for (const [key, value] of Object.entries(tree as Node)) {
    if (key === 'ctename' && typeof value === 'string') names.add(value);
    else collectCteNames(value, names);
  }
}
