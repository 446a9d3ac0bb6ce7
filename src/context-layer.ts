import type { Context } from '@opentelemetry/api';

/** Layers over one base context before a read of a key below them would walk too far: then they are flattened. */
const MAX_LAYERS = 8;

/**
 * `ctx` with `key` set to `value`, as one small object over it. The API's BaseContext copies its parent's
 * Map and makes three closures on every `setValue` (~1 300 instructions); querytrail enters a context for
 * each ORM call it runs, and each request or job. Keys a layer does not hold are read one step further down.
 */
export function withValue(ctx: Context, key: symbol, value: unknown): Context {
  return ctx instanceof ContextLayer ? ctx.setValue(key, value) : new ContextLayer(ctx, undefined, key, value, 1);
}

/**
 * A context that is a base context plus a few values: what anyone derives from it (an instrumentation
 * setting its span) is one more layer, until MAX_LAYERS, where the values are written into a copy of the base.
 */
class ContextLayer implements Context {
  constructor(
    private readonly base: Context,
    private readonly below: ContextLayer | undefined,
    private readonly key: symbol,
    // undefined: the key was deleted (BaseContext reads a deleted key as undefined too)
    private readonly value: unknown,
    private readonly layers: number,
  ) {}

  getValue(key: symbol): unknown {
    if (this.key === key) return this.value;
    for (let layer = this.below; layer !== undefined; layer = layer.below) {
      if (layer.key === key) return layer.value;
    }
    return this.base.getValue(key);
  }

  setValue(key: symbol, value: unknown): Context {
    if (this.layers < MAX_LAYERS) return new ContextLayer(this.base, this, key, value, this.layers + 1);
    return new ContextLayer(this.flattened(), undefined, key, value, 1);
  }

  deleteValue(key: symbol): Context {
    return this.setValue(key, undefined);
  }

  /** The base with every layer's value written in, oldest first. */
  private flattened(): Context {
    const layers: ContextLayer[] = [this];
    for (let layer = this.below; layer !== undefined; layer = layer.below) layers.push(layer);
    let ctx = this.base;
    for (let i = layers.length - 1; i >= 0; i--) {
      const { key, value } = layers[i];
      ctx = value === undefined ? ctx.deleteValue(key) : ctx.setValue(key, value);
    }
    return ctx;
  }
}
