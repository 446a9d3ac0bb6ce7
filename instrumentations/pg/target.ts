import type { DatabaseRef, DatabaseRegistry } from '../../src/database';

const TARGET = Symbol('querytrail.pg.target');

/** What pg connects with: a Pool's options, an ORM's settings for pg. */
export interface PgSettings {
  host?: string;
  port?: number | string;
  database?: string;
  connectionString?: string;
}

/** A pg.Pool (options) or pg.Client (connectionParameters), as ORMs hold them. */
interface PgEndpoint {
  [TARGET]?: DatabaseRef;
  connectionParameters?: { host?: string; port?: number | string; database?: string };
  options?: PgSettings;
}

/**
 * The database a pg Pool or Client given to an ORM points at, as configured: what a query object
 * built on it is bound to. Where it ran comes from the connection, later.
 */
export function pgTargetOf(endpoint: unknown, databases: DatabaseRegistry): DatabaseRef | undefined {
  if (endpoint === null || typeof endpoint !== 'object') return undefined;
  // Builders are made per query; the pool they point at is not: look it up once per Pool or Client.
  const cached = (endpoint as PgEndpoint)[TARGET];
  if (cached !== undefined) return cached;
  const target = targetOf(endpoint as PgEndpoint, databases);
  if (target !== undefined) (endpoint as PgEndpoint)[TARGET] = target;
  return target;
}

function targetOf(endpoint: PgEndpoint, databases: DatabaseRegistry): DatabaseRef | undefined {
  const { connectionParameters, options } = endpoint;
  if (connectionParameters)
    return databases.ref(
      'postgresql',
      connectionParameters.host,
      connectionParameters.port,
      connectionParameters.database,
    );
  return options === undefined ? undefined : pgTargetOfSettings(options, databases);
}

/** The database pg settings point at, with pg's own defaults for what they leave out. */
export function pgTargetOfSettings(options: PgSettings, databases: DatabaseRegistry): DatabaseRef | undefined {
  if (options.connectionString) {
    try {
      const url = new URL(options.connectionString);
      return databases.ref(
        'postgresql',
        url.hostname || options.host || 'localhost',
        url.port || options.port || 5432,
        decodeURIComponent(url.pathname.slice(1)) || options.database,
      );
    } catch {
      return undefined;
    }
  }
  // pg's own defaults, so that the binding names the same database as the connection will
  return databases.ref(
    'postgresql',
    options.host ?? process.env.PGHOST ?? 'localhost',
    options.port ?? process.env.PGPORT ?? 5432,
    options.database ?? process.env.PGDATABASE,
  );
}
