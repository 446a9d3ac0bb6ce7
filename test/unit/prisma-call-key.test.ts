import { callKeyOf } from '../../instrumentations/prisma/instrumentation';
import type { PrismaRawClient } from '../../instrumentations/prisma/types';

describe('callKeyOf: what a PrismaPromise’s line is learned per under lean', () => {
  const client = {} as PrismaRawClient;
  const other = {} as PrismaRawClient;

  it('one key per client, model and action, the same one every time', () => {
    const unique = callKeyOf(client, { model: 'Item', action: 'findUnique', args: { where: { id: 1 } } });
    expect(callKeyOf(client, { model: 'Item', action: 'findUnique', args: { where: { id: 2 } } })).toBe(unique);
    expect(callKeyOf(client, { model: 'Item', action: 'findMany' })).not.toBe(unique);
    expect(callKeyOf(client, { model: 'Author', action: 'findUnique' })).not.toBe(unique);
    expect(callKeyOf(other, { model: 'Item', action: 'findUnique' })).not.toBe(unique);
    // after calls of another model, action or client (the key found last is kept): the same key again
    expect(callKeyOf(client, { model: 'Item', action: 'findUnique' })).toBe(unique);
    expect(callKeyOf(client, { model: 'Item', action: 'findMany' })).toBe(
      callKeyOf(client, { model: 'Item', action: 'findMany' }),
    );
    expect(callKeyOf(client, { model: 'Author', action: 'findMany' })).not.toBe(
      callKeyOf(client, { model: 'Item', action: 'findMany' }),
    );
  });

  it('the client itself for a call prisma names no action for (raw queries)', () => {
    expect(callKeyOf(client, undefined)).toBe(client);
    expect(callKeyOf(client, { args: [] })).toBe(client);
  });
});
