/**
 * A small SQL lexer: enough to replace literals by `?`, drop comments, fold white space, and read the
 * leading keywords. It runs once per distinct statement text, so it must be linear and allocation-light.
 */
export interface LexedStatement {
  /** Literals replaced by `?`, comments dropped, white space folded: safe to export, and the shape key. */
  sanitized: string;
  /** Upper-cased keywords and identifiers outside literals, in order (for the keyword fallback). */
  words: string[];
}

export type SqlDialect = 'postgresql' | 'mysql';

const isDigit = (c: number) => c >= 48 && c <= 57;
const isWordStart = (c: number) => (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c > 127;
const isWordPart = (c: number) => isWordStart(c) || isDigit(c) || c === 36;
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13 || c === 12;

export function lexSql(sql: string, dialect: SqlDialect): LexedStatement {
  const out: string[] = [];
  const words: string[] = [];
  let i = 0;
  const n = sql.length;
  let pendingSpace = false;
  const emit = (s: string) => {
    if (pendingSpace && out.length > 0 && s !== ',' && s !== ')' && s !== ';') out.push(' ');
    pendingSpace = false;
    out.push(s);
  };
  while (i < n) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      pendingSpace = true;
      i++;
    } else if (c === 45 && sql.charCodeAt(i + 1) === 45) {
      // -- comment to end of line
      while (i < n && sql.charCodeAt(i) !== 10) i++;
      pendingSpace = true;
    } else if (c === 35 && dialect === 'mysql') {
      while (i < n && sql.charCodeAt(i) !== 10) i++;
      pendingSpace = true;
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      // /* comment */, nested in PostgreSQL
      let depth = 1;
      i += 2;
      while (i < n && depth > 0) {
        if (sql.charCodeAt(i) === 42 && sql.charCodeAt(i + 1) === 47) {
          depth--;
          i += 2;
        } else if (dialect === 'postgresql' && sql.charCodeAt(i) === 47 && sql.charCodeAt(i + 1) === 42) {
          depth++;
          i += 2;
        } else {
          i++;
        }
      }
      pendingSpace = true;
    } else if (c === 39 || (c === 34 && dialect === 'mysql')) {
      i = skipQuoted(sql, i, c, dialect === 'mysql' || isEscapePrefixed(sql, i));
      emit('?');
    } else if (c === 34 || c === 96) {
      // quoted identifier: kept
      const end = skipQuoted(sql, i, c, false);
      const ident = sql.slice(i, end);
      words.push(ident.slice(1, -1).toUpperCase());
      emit(ident);
      i = end;
    } else if (c === 36 && dialect === 'postgresql') {
      const tag = /^\$([A-Za-z_][A-Za-z_0-9]*)?\$/.exec(sql.slice(i, i + 64));
      if (tag) {
        const close = sql.indexOf(tag[0], i + tag[0].length);
        i = close < 0 ? n : close + tag[0].length;
        emit('?');
      } else {
        // $1 placeholder
        let j = i + 1;
        while (j < n && isDigit(sql.charCodeAt(j))) j++;
        emit(sql.slice(i, j));
        i = j;
      }
    } else if (isDigit(c) || (c === 46 && isDigit(sql.charCodeAt(i + 1)))) {
      i = skipNumber(sql, i);
      emit('?');
    } else if (isWordStart(c)) {
      let j = i + 1;
      while (j < n && isWordPart(sql.charCodeAt(j))) j++;
      // E'..', B'..', X'..', N'..' literal prefixes
      if (sql.charCodeAt(j) === 39 && j - i === 1 && /[EeBbXxNn]/.test(sql[i])) {
        i = skipQuoted(sql, j, 39, /[Ee]/.test(sql[i]) || dialect === 'mysql');
        emit('?');
        continue;
      }
      const word = sql.slice(i, j);
      words.push(word.toUpperCase());
      emit(word);
      i = j;
    } else {
      emit(sql[i]);
      i++;
    }
  }
  return { sanitized: out.join(''), words };
}

function isEscapePrefixed(sql: string, quoteAt: number): boolean {
  const prev = sql[quoteAt - 1];
  return (prev === 'E' || prev === 'e') && !isWordPart(sql.charCodeAt(quoteAt - 2));
}

/** Index after the closing quote; a doubled quote escapes it, and a backslash too where `backslash`. */
function skipQuoted(sql: string, start: number, quote: number, backslash: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (backslash && c === 92) i += 2;
    else if (c === quote) {
      if (sql.charCodeAt(i + 1) === quote) i += 2;
      else return i + 1;
    } else i++;
  }
  return sql.length;
}

function skipNumber(sql: string, start: number): number {
  let i = start;
  if (sql[i] === '0' && /[xXbBoO]/.test(sql[i + 1] ?? '')) {
    i += 2;
    while (i < sql.length && /[0-9A-Fa-f_]/.test(sql[i])) i++;
    return i;
  }
  while (i < sql.length && /[0-9_.]/.test(sql[i])) i++;
  if (/[eE]/.test(sql[i] ?? '') && /[-+0-9]/.test(sql[i + 1] ?? '')) {
    i += 2;
    while (i < sql.length && isDigit(sql.charCodeAt(i))) i++;
  }
  return i;
}
