import type { QuerytrailInstrumentationConfig } from '../../src/config';

export type SequelizeInstrumentationConfig = QuerytrailInstrumentationConfig;

export interface SequelizeEndpoint {
  host?: string;
  port?: number | string;
  database?: string;
}

/** The parts of a Sequelize instance querytrail reads: its dialect and where its pools point. */
export interface SequelizeInstance {
  getDialect(): string;
  config: SequelizeEndpoint & { replication?: false | { read?: SequelizeEndpoint[]; write?: SequelizeEndpoint } };
  [key: symbol]: unknown;
}

/** A model class (or instance's constructor): the instance it was defined on. */
export interface SequelizeModel {
  name?: string;
  sequelize?: SequelizeInstance;
}

/** What `Model.findAll({ include })` accepts: a model, or `{ model, include }`, nested. */
export type SequelizeInclude = SequelizeModel | { model?: SequelizeModel; include?: SequelizeInclude[] };

/** The options `sequelize.query(sql, options)` reads to pick a pool. */
export interface SequelizeQueryOptions {
  type?: string;
  useMaster?: boolean;
  transaction?: unknown;
  model?: unknown;
  instance?: unknown;
  nest?: boolean;
  plain?: boolean;
}
