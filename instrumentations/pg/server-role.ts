import type { DatabaseRegistry } from '../../src/database';
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

/**
 * Learns the server's role without a round trip per query: PostgreSQL >= 14 reports `in_hot_standby`
 * in the startup ParameterStatus messages (and again when a standby is promoted). Older servers did not
 * send it by the first ReadyForQuery, so one `pg_is_in_recovery()` is queued ahead of the app's queries.
 */
export function watchServerRole(
  client: PgClient,
  databases: DatabaseRegistry,
  probe: (sql: string, cb: ProbeCallback) => void,
): void {
  const connection = client.connection;
  if (connection === undefined) return;
  const facts = serverFactsOf(client, databases);
  connection.on('parameterStatus', (msg) => {
    if (msg.parameterName === 'in_hot_standby')
      guarded('pg role', () =>
        facts.setRole(msg.parameterValue === 'on' ? 'replica' : 'primary', `in_hot_standby=${msg.parameterValue}`),
      );
  });
  connection.once('readyForQuery', () => {
    if (facts.role !== undefined) return;
    guarded('pg role probe', () => confirmServerRole(facts, probe, () => {}));
  });
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
    const inRecovery = res?.rows?.[0]?.in_recovery;
    if (!err && typeof inRecovery === 'boolean') {
      guarded('pg role', () => facts.setRole(inRecovery ? 'replica' : 'primary', `pg_is_in_recovery()=${inRecovery}`));
    }
    then();
  });
}
