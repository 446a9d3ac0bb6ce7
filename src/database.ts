import type { Attributes } from '@opentelemetry/api';
import { ATTR } from './attributes';

export type DbSystem = 'postgresql' | 'mysql' | 'mariadb';
export type DbRole = 'primary' | 'replica';
export const DB_ROLES: readonly DbRole[] = ['primary', 'replica'];

/** A database declared by the user (QUERYTRAIL_DATABASES / `databases` option), like Django's DATABASES. */
export interface DatabaseAlias {
  alias: string;
  address: string;
  port?: number;
  namespace?: string;
  role?: DbRole;
}

/**
 * One database endpoint as seen by querytrail. Interned per (system, address, port, namespace), so two
 * refs are the same database exactly when they are the same object, and the span attributes derived
 * from a ref are computed once.
 */
export interface DatabaseRef {
  readonly system: DbSystem;
  readonly address?: string;
  readonly port?: number;
  readonly namespace?: string;
  /** The user's alias, or `host:port/database` when no alias matches. */
  readonly alias: string;
  /** The role the user declared for this alias, if any. */
  readonly declaredRole?: DbRole;
  /** `querytrail.bound.alias` and the declared `.role`, precomputed. */
  readonly boundAttributes: Attributes;
  /**
   * `querytrail.bound.address`, `.port`, `.namespace`: sent only when the binding is not where the query ran
   * (where it ran is the semantic-convention `server.*` and `db.namespace`).
   */
  readonly boundLocationAttributes: Attributes;
  /** `db.system.name`, `db.namespace`, `server.*` attributes, precomputed. */
  readonly serverAttributes: Attributes;
}

/**
 * One connection to a server and what the server itself said about it. The role can change (a standby
 * is promoted, and PostgreSQL re-reports `in_hot_standby`), so the `querytrail.ran.*` attributes are
 * recomputed only when it does.
 */
export class ServerFacts {
  private roleValue: DbRole | undefined;
  private attributes: Attributes | undefined;
  /** How the role was learned, for messages: e.g. `in_hot_standby=on`. */
  roleEvidence: string | undefined;
  /** Waiting for the answer to a question about the role (a server that does not report it). */
  private waiting: (() => void)[] | undefined;

  constructor(readonly ref: DatabaseRef) {}

  get role(): DbRole | undefined {
    return this.roleValue;
  }

  /** The role was asked and the answer is on its way: `whenRoleKnown` then waits for it. */
  get roleAsked(): boolean {
    return this.waiting !== undefined;
  }

  setRole(role: DbRole, evidence: string): void {
    if (role !== this.roleValue) this.attributes = undefined;
    this.roleValue = role;
    this.roleEvidence = evidence;
    this.answered();
  }

  roleAsking(): void {
    this.waiting ??= [];
  }

  /** The question about the role was answered, or could not be: whoever waits goes on. */
  answered(): void {
    const waiting = this.waiting;
    this.waiting = undefined;
    for (const resume of waiting ?? []) resume();
  }

  /** Runs `resume` once the asked role is known, or after `timeoutMs` without an answer. */
  whenRoleKnown(resume: () => void, timeoutMs: number): void {
    let done = false;
    const once = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resume();
    };
    const timer = setTimeout(once, timeoutMs);
    timer.unref();
    (this.waiting ??= []).push(once);
  }

  /** Shared by every connection to the same database in the same role, so callers can memoize on it. */
  get ranAttributes(): Attributes {
    return (this.attributes ??= internedRanAttributes(this.ref, this.roleValue));
  }
}

const ranAttributesByRef = new WeakMap<DatabaseRef, Map<DbRole | undefined, Attributes>>();

function internedRanAttributes(ref: DatabaseRef, role: DbRole | undefined): Attributes {
  let byRole = ranAttributesByRef.get(ref);
  if (byRole === undefined) ranAttributesByRef.set(ref, (byRole = new Map()));
  let attributes = byRole.get(role);
  if (attributes === undefined) byRole.set(role, (attributes = Object.freeze(ranAttributes(ref, role))));
  return attributes;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** Loopback spellings name the same server; everything else is compared as written, case-insensitively. */
function canonicalHost(address: string | undefined): string {
  if (!address) return 'localhost';
  const lower = address.toLowerCase();
  return LOOPBACK.has(lower) ? 'localhost' : lower;
}

function refKey(
  system: DbSystem,
  address: string | undefined,
  port: number | undefined,
  namespace: string | undefined,
): string {
  return `${system}|${canonicalHost(address)}|${port ?? ''}|${namespace ?? ''}`;
}

const DEFAULT_PORTS: Record<DbSystem, number> = { postgresql: 5432, mysql: 3306, mariadb: 3306 };

export class DatabaseRegistry {
  private readonly refs = new Map<string, DatabaseRef>();

  constructor(private readonly aliases: readonly DatabaseAlias[] = []) {}

  ref(
    system: DbSystem,
    address: string | undefined,
    port: number | string | undefined,
    namespace: string | undefined,
  ): DatabaseRef {
    const portNumber = port === undefined || port === '' ? undefined : Number(port);
    const key = refKey(system, address, portNumber, namespace);
    let ref = this.refs.get(key);
    if (ref === undefined) {
      ref = this.build(system, address, portNumber, namespace);
      this.refs.set(key, ref);
    }
    return ref;
  }

  private build(
    system: DbSystem,
    address: string | undefined,
    port: number | undefined,
    namespace: string | undefined,
  ): DatabaseRef {
    const declared = this.match(system, address, port, namespace);
    const alias = declared?.alias ?? `${address ?? 'localhost'}:${port ?? DEFAULT_PORTS[system]}/${namespace ?? ''}`;
    const boundAttributes: Attributes = { [ATTR.BOUND_ALIAS]: alias };
    if (declared?.role) boundAttributes[ATTR.BOUND_ROLE] = declared.role;
    const boundLocationAttributes: Attributes = {};
    if (address !== undefined) boundLocationAttributes[ATTR.BOUND_ADDRESS] = address;
    if (port !== undefined) boundLocationAttributes[ATTR.BOUND_PORT] = port;
    if (namespace !== undefined) boundLocationAttributes[ATTR.BOUND_NAMESPACE] = namespace;
    const serverAttributes: Attributes = { [ATTR.DB_SYSTEM_NAME]: system };
    if (namespace !== undefined) serverAttributes[ATTR.DB_NAMESPACE] = namespace;
    if (address !== undefined) serverAttributes[ATTR.SERVER_ADDRESS] = address;
    if (port !== undefined) serverAttributes[ATTR.SERVER_PORT] = port;
    return Object.freeze({
      system,
      address,
      port,
      namespace,
      alias,
      declaredRole: declared?.role,
      boundAttributes,
      boundLocationAttributes,
      serverAttributes,
    });
  }

  private match(
    system: DbSystem,
    address: string | undefined,
    port: number | undefined,
    namespace: string | undefined,
  ): DatabaseAlias | undefined {
    const host = canonicalHost(address);
    const effectivePort = port ?? DEFAULT_PORTS[system];
    return this.aliases.find(
      (a) =>
        canonicalHost(a.address) === host &&
        (a.port ?? DEFAULT_PORTS[system]) === effectivePort &&
        (a.namespace === undefined || a.namespace === namespace),
    );
  }
}

/**
 * Parses `alias=url,alias=url`. The url's scheme, host, port, path (database) and `?role=` are read;
 * user and password are ignored and never kept.
 */
export function parseDatabaseAliases(text: string, skip?: (message: string) => void): DatabaseAlias[] {
  const aliases: DatabaseAlias[] = [];
  for (const item of text.split(',')) {
    const entry = item.trim();
    if (!entry) continue;
    if (skip === undefined) {
      aliases.push(parseAlias(entry));
      continue;
    }
    try {
      aliases.push(parseAlias(entry));
    } catch (err) {
      skip((err as Error).message);
    }
  }
  return aliases;
}

/** One `alias=url`; throws a message that names the alias but never the url's credentials. */
function parseAlias(entry: string): DatabaseAlias {
  const eq = entry.indexOf('=');
  if (eq <= 0) throw new Error(`"${redactUrl(entry)}" is not alias=url`);
  const alias = entry.slice(0, eq).trim();
  let url: URL;
  try {
    url = new URL(entry.slice(eq + 1).trim());
  } catch {
    throw new Error(`alias "${alias}" has no valid url`);
  }
  if (!url.hostname) throw new Error(`alias "${alias}" has no host`);
  const role = url.searchParams.get('role') ?? undefined;
  if (role !== undefined && !DB_ROLES.includes(role as DbRole)) {
    throw new Error(`alias "${alias}" has role "${role}"; accepted roles: ${DB_ROLES.join(', ')}`);
  }
  const namespace = decodeURIComponent(url.pathname.replace(/^\//, '')) || undefined;
  return {
    alias,
    address: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: url.port ? Number(url.port) : undefined,
    namespace,
    role: role as DbRole | undefined,
  };
}

/** For error messages: a url without its credentials. */
function redactUrl(text: string): string {
  return text.replace(/\/\/[^@/]*@/, '//');
}

/** Where it ran is `server.address`, `server.port` and `db.namespace` already: only the alias and the role. */
function ranAttributes(ref: DatabaseRef, role: DbRole | undefined): Attributes {
  const attributes: Attributes = { [ATTR.RAN_ALIAS]: ref.alias };
  if (role) attributes[ATTR.RAN_ROLE] = role;
  return attributes;
}
