import type { Attributes } from '@opentelemetry/api';
import { ATTR } from './attributes';
import { internalErrorOccurred } from './guard';
import { lexSql, SqlDialect } from './sql-lexer';

/** What querytrail knows about one statement shape. Shared by every text of that shape: never mutate. */
export interface StatementInfo {
  /** Sanitized text (literals → `?`), the `db.query.text` attribute and the shape key. */
  readonly text: string;
  readonly operation?: string;
  readonly collection?: string;
  /** Would fail on a hot standby: DML, DDL, SELECT … FOR UPDATE/SHARE, data-modifying CTEs, nextval(). */
  readonly isWrite: boolean;
  /** `db.query.summary`, also the span name: e.g. `SELECT users`. */
  readonly summary: string;
  /** Same for statements that differ only in literals or IN-list lengths (libpg-query for PostgreSQL). */
  readonly fingerprint: string;
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

function makeInfo(
  text: string,
  operation: string | undefined,
  collection: string | undefined,
  isWrite: boolean,
  fingerprint: string,
): StatementInfo {
  const summary = [operation ?? 'QUERY', collection].filter(Boolean).join(' ');
  const attributes: Attributes = { [ATTR.DB_QUERY_TEXT]: text, [ATTR.DB_QUERY_SUMMARY]: summary };
  if (operation) attributes[ATTR.DB_OPERATION_NAME] = operation;
  if (collection) attributes[ATTR.DB_COLLECTION_NAME] = collection;
  return Object.freeze({ text, operation, collection, isWrite, summary, fingerprint, attributes });
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
const COLLECTION_AFTER = new Set(['FROM', 'INTO', 'UPDATE', 'TABLE', 'JOIN']);

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
  let collection: string | undefined;
  for (let i = 0; i < words.length - 1; i++) {
    if (COLLECTION_AFTER.has(words[i]) && !READ_LEADS.has(words[i + 1])) {
      collection = collectionName(sanitized, words[i + 1]);
      break;
    }
  }
  return makeInfo(sanitized, operation, collection, isWrite, fnv1a(sanitized));
}

const QUALIFIED_NAME = /^[\w$"`]+(?:\.[\w$"`]+)*/;

/** The name as written (case kept, schema-qualified if it is), found again in the sanitized text. */
function collectionName(sanitized: string, upperWord: string): string {
  const at = sanitized.toUpperCase().indexOf(upperWord);
  if (at < 0) return upperWord.toLowerCase();
  const name = QUALIFIED_NAME.exec(sanitized.slice(at))?.[0] ?? upperWord;
  return name.replace(/["`]/g, '');
}

function fnv1a(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
  }
  return (h1 >>> 0).toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
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
  return makeInfo(sanitized, operation, firstRelation(node), isWrite, fingerprint);
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

/** The statement's target (INSERT/UPDATE/DELETE) or the first table of its FROM clause. */
function firstRelation(node: Record<string, unknown>): string | undefined {
  const relation = (node.relation ?? findRangeVar(node.fromClause)) as
    { schemaname?: string; relname?: string } | undefined;
  if (!relation?.relname) return undefined;
  return relation.schemaname ? `${relation.schemaname}.${relation.relname}` : relation.relname;
}

function findRangeVar(tree: unknown): unknown {
  if (tree === null || typeof tree !== 'object') return undefined;
  if (Array.isArray(tree)) {
    for (const item of tree) {
      const found = findRangeVar(item);
      if (found) return found;
    }
    return undefined;
  }
  const record = tree as Record<string, unknown>;
  if (record.RangeVar) return record.RangeVar;
  if (record.JoinExpr) return findRangeVar((record.JoinExpr as Record<string, unknown>).larg);
  return undefined;
}
