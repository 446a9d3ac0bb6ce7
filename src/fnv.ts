export interface FnvState {
  readonly h1: number;
  readonly h2: number;
}

/**
 * Two independent 32-bit FNV-1a-style hashes over UTF-16 code units, for fingerprints of statements the
 * parser cannot read and for the ledger's hashes of reads. One accumulator, reused: no allocation per call.
 */
export class Fnv {
  private h1 = 0x811c9dc5;
  private h2 = 0x01000193;

  reset(): this {
    this.h1 = 0x811c9dc5;
    this.h2 = 0x01000193;
    return this;
  }

  /** The state so far, to continue from later (`restore`) without hashing its text again. */
  save(): FnvState {
    return { h1: this.h1, h2: this.h2 };
  }

  restore(state: FnvState): this {
    this.h1 = state.h1;
    this.h2 = state.h2;
    return this;
  }

  update(text: string): this {
    let { h1, h2 } = this;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    }
    this.h1 = h1;
    this.h2 = h2;
    return this;
  }

  /** A 32-bit integer as two code units: no string made for the commonest parameter, an id. */
  updateInt32(value: number): this {
    const low = value & 0xffff;
    const high = value >>> 16;
    this.h1 = Math.imul(Math.imul(this.h1 ^ low, 0x01000193) ^ high, 0x01000193);
    this.h2 = Math.imul(Math.imul(this.h2 ^ low, 0x5bd1e995) ^ high, 0x5bd1e995);
    return this;
  }

  /** 64 bits as 16 hex digits. */
  hex(): string {
    return (this.h1 >>> 0).toString(16).padStart(8, '0') + (this.h2 >>> 0).toString(16).padStart(8, '0');
  }

  /** 53 bits as a number: exact in a double, a cheap Map key. */
  number(): number {
    return (this.h1 >>> 0) * 2 ** 21 + ((this.h2 >>> 0) >>> 11);
  }
}
