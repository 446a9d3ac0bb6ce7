import { createContextKey, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { withValue } from '../../src/context-layer';

const A = createContextKey('a');
const B = createContextKey('b');
const C = createContextKey('c');

describe('withValue', () => {
  it('adds a value over a base context, whose values stay readable', () => {
    const base = ROOT_CONTEXT.setValue(A, 'base a').setValue(B, 'base b');
    const ctx = withValue(base, A, 'a');
    expect(ctx.getValue(A)).toBe('a');
    expect(ctx.getValue(B)).toBe('base b');
    expect(ctx.getValue(C)).toBeUndefined();
    expect(base.getValue(A)).toBe('base a');
  });

  it('is immutable: what is derived from a layer leaves it as it was', () => {
    const first = withValue(ROOT_CONTEXT, A, 1);
    const second = first.setValue(A, 2).setValue(B, 3);
    const third = withValue(first, C, 4);
    expect([first.getValue(A), first.getValue(B), first.getValue(C)]).toEqual([1, undefined, undefined]);
    expect([second.getValue(A), second.getValue(B), second.getValue(C)]).toEqual([2, 3, undefined]);
    expect([third.getValue(A), third.getValue(B), third.getValue(C)]).toEqual([1, undefined, 4]);
  });

  it('reads a deleted key as undefined, whether it was set in a layer or in the base', () => {
    const base = ROOT_CONTEXT.setValue(A, 'base a');
    const ctx = withValue(withValue(base, B, 'b'), A, 'a');
    expect(ctx.deleteValue(A).getValue(A)).toBeUndefined();
    expect(ctx.deleteValue(B).getValue(B)).toBeUndefined();
    expect(withValue(base, A, undefined).getValue(A)).toBeUndefined();
    expect(ctx.getValue(A)).toBe('a');
  });

  it('keeps every value, deleted ones included, when deep layers are flattened into the base', () => {
    const base = ROOT_CONTEXT.setValue(C, 'base c');
    let ctx = withValue(base, A, 0);
    for (let i = 1; i <= 30; i++) ctx = ctx.setValue(i % 2 === 0 ? A : B, i);
    ctx = ctx.deleteValue(C);
    expect([ctx.getValue(A), ctx.getValue(B), ctx.getValue(C)]).toEqual([30, 29, undefined]);
    expect(base.getValue(C)).toBe('base c');
  });

  it('carries a span set and read through the trace API', () => {
    const span = trace.wrapSpanContext({ traceId: '1'.repeat(32), spanId: '2'.repeat(16), traceFlags: 1 });
    const ctx = trace.setSpan(withValue(ROOT_CONTEXT, A, 'a'), span);
    expect(trace.getSpan(ctx)).toBe(span);
    expect(ctx.getValue(A)).toBe('a');
    expect(trace.getSpan(withValue(ctx, B, 'b'))).toBe(span);
  });
});
