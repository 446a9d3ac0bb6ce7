import type { DatabaseRef, DatabaseRegistry, DbRole } from '../../src/database';
import { ServerFacts } from '../../src/database';
import { guarded } from '../../src/guard';
import type { PgClient } from './types';

const FACTS = Symbol('querytrail.pg.facts');

/** The connection's ServerFacts, created on first use from the parameters it connects with. */
export function serverFactsOf(client: PgClient, databases: DatabaseRegistry): ServerFacts {
  let facts = client[FACTS] as ServerFacts | undefined;
  if (facts === undefined) {
    const params = client.connectionParameters ?? {};
    facts = new ServerFacts(databases.ref('postgresql', params.host, params.port, params.database));
    client[FACTS] = facts;
  }
  return facts;
}

/** Marks querytrail's own connection that asks a server its role: it is not watched, nor traced. */
const ROLE_ASKER = Symbol('querytrail.pg.role-asker');

/** pg's unpatched Client#query, called on a client. */
export type RawQuery = (this: PgClient, sql: string, cb: ProbeCallback) => unknown;

/** Whether `client` is querytrail's own connection asking a server its role. */
export function isRoleAsker(client: PgClient): boolean {
  return client[ROLE_ASKER] === true;
}

/**
 * Learns the server's role without a round trip per query: PostgreSQL >= 14 reports `in_hot_standby`
 * in the startup ParameterStatus messages (and again when a standby is promoted). Older servers do not:
 * they are asked `pg_is_in_recovery()` on a connection of querytrail's own, never on the app's (a query
 * queued ahead of the app's would delay them and be seen by the app).
 */
export function watchServerRole(client: PgClient, databases: DatabaseRegistry, query: RawQuery): void {
  const connection = client.connection;
  if (connection === undefined || isRoleAsker(client)) return;
  const facts = serverFactsOf(client, databases);
  connection.on('parameterStatus', (msg) => {
    if (msg.parameterName === 'in_hot_standby')
      guarded('pg role', () =>
        facts.setRole(msg.parameterValue === 'on' ? 'replica' : 'primary', `in_hot_standby=${msg.parameterValue}`),
      );
  });
  connection.once('readyForQuery', () => {
    if (facts.role === undefined) guarded('pg role probe', () => askAside(client, facts, query));
  });
}

/** What a server that does not report its role said when asked, per endpoint; or the connections waiting. */
const askedRoles = new WeakMap<DatabaseRef, { role: DbRole; evidence: string; at: number } | ServerFacts[]>();
/** How long an answer serves new connections to the same endpoint (a pool opening many at once asks once). */
const ANSWER_SERVES_MS = 10_000;

function askAside(client: PgClient, facts: ServerFacts, query: RawQuery): void {
  const ref = facts.ref;
  const known = askedRoles.get(ref);
  if (Array.isArray(known)) {
    facts.roleAsking();
    known.push(facts); // a question to this server is on its way
    return;
  }
  if (known !== undefined && Date.now() - known.at < ANSWER_SERVES_MS) {
    facts.setRole(known.role, known.evidence);
    return;
  }
  const waiting = [facts];
  facts.roleAsking();
  askedRoles.set(ref, waiting);
  const answered = (role?: DbRole, evidence = '') => {
    if (role === undefined) askedRoles.delete(ref);
    else askedRoles.set(ref, { role, evidence, at: Date.now() });
    for (const connection of waiting) {
      if (role !== undefined && connection.role === undefined) connection.setRole(role, evidence);
      else connection.answered();
    }
  };
  const Client = client.constructor as new (config: unknown) => AskingClient;
  try {
    // bounded: its answer ends the spans waiting for it, so it may hold the process that long at most
    const params = client.connectionParameters as
      (PgClient['connectionParameters'] & { password?: unknown }) | undefined;
    // pg keeps the password non-enumerable (out of logs): a spread alone would leave it out
    const config = { ...params, password: params?.password, connectionTimeoutMillis: ASK_TIMEOUT_MS };
    const asker = new Client(config);
    asker[ROLE_ASKER] = true;
    asker.on('error', () => {});
    asker.connect((err) => {
      if (err) return answered();
      query.call(asker, ROLE_PROBE, (err, res) => {
        const answer = roleIn(err, res);
        answered(answer?.role, answer?.evidence);
        asker.end();
      });
    });
  } catch (err) {
    answered(); // no one may wait for a question that was never asked
    throw err;
  }
}

const ASK_TIMEOUT_MS = 5000;

interface AskingClient extends PgClient {
  on(event: 'error', listener: () => void): unknown;
  connect(callback: (err: unknown) => void): unknown;
  end(): unknown;
}

const ROLE_PROBE = 'SELECT pg_is_in_recovery() AS in_recovery';
type ProbeCallback = (err: unknown, res?: { rows?: { in_recovery?: boolean }[] }) => void;

/**
 * Asks the server for its role now (one round trip, on the connection's own queue), then calls `then`. A
 * promoted standby says `in_hot_standby=off` only with its next response: a connection idle since the
 * promotion still looks like a replica, and strict mode would refuse its writes for good without asking.
 */
export function confirmServerRole(
  facts: ServerFacts,
  probe: (sql: string, cb: ProbeCallback) => void,
  then: () => void,
): void {
  probe(ROLE_PROBE, (err, res) => {
    const answer = roleIn(err, res);
    if (answer !== undefined) guarded('pg role', () => facts.setRole(answer.role, answer.evidence));
    then();
  });
}

/** The role in the answer to ROLE_PROBE. */
function roleIn(err: unknown, res: Parameters<ProbeCallback>[1]): { role: DbRole; evidence: string } | undefined {
  const inRecovery = res?.rows?.[0]?.in_recovery;
  if (err || typeof inRecovery !== 'boolean') return undefined;
  return { role: inRecovery ? 'replica' : 'primary', evidence: `pg_is_in_recovery()=${inRecovery}` };
}
