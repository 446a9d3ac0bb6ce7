import type { QuerytrailInstrumentationConfig } from '../../src/config';

export type TypeormInstrumentationConfig = QuerytrailInstrumentationConfig;

/** Connection settings as typeorm takes them, at the top level or per replication member. */
export interface TypeormCredentials {
  url?: string;
  host?: string;
  port?: number | string;
  database?: string;
}

/** The parts of a DataSource querytrail reads: its type and where its pools point. */
export interface TypeormDataSource {
  options: TypeormCredentials & {
    type?: string;
    replication?: { master?: TypeormCredentials; slaves?: TypeormCredentials[] };
  };
  [key: symbol]: unknown;
}

/** typeorm 1.x names the DataSource `dataSource`; 0.3 names the same object `connection`. */
export interface TypeormDataSourceHolder {
  dataSource?: TypeormDataSource;
  connection?: TypeormDataSource;
}

/** QueryBuilders keep their state here; typeorm clones it when a builder is cloned or changes type. */
export interface TypeormExpressionMap extends TypeormDataSourceHolder {
  [key: symbol]: unknown;
}

export interface TypeormQueryBuilder {
  expressionMap: TypeormExpressionMap;
}

export type TypeormEntityManager = TypeormDataSourceHolder;

/** `mode` is what `createQueryRunner(mode)` was asked for: the pool its connection comes from. */
export interface TypeormQueryRunner extends TypeormDataSourceHolder {
  mode: 'master' | 'slave';
}
