import type { DatabaseRef } from '../src/database';

/**
 * Where an ORM's primary and replica pools point, as configured. With several replicas the ORM picks one
 * per connection or query: the replica binding is then left undefined, and the connection says which.
 */
export interface ReplicatedBindings {
  primary: DatabaseRef | undefined;
  replica: DatabaseRef | undefined;
  replicated: boolean;
}

export function replicatedBindings<E>(
  primary: E | undefined,
  replicas: readonly E[] | undefined,
  refOf: (endpoint: E | undefined) => DatabaseRef | undefined,
): ReplicatedBindings {
  return {
    primary: refOf(primary),
    replica: replicas?.length === 1 ? refOf(replicas[0]) : undefined,
    replicated: (replicas?.length ?? 0) > 0,
  };
}
