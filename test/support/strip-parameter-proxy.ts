import * as net from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of a PostgreSQL server that removes one ParameterStatus message (e.g.
 * `in_hot_standby`) from what the server sends: on the wire, the server then looks like one that never
 * reports it (PostgreSQL < 14, or a proxy that filters it). Client → server bytes pass untouched.
 */
export class StripParameterProxy {
  private readonly server: net.Server;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    private readonly target: { host: string; port: number },
    private readonly parameter: string,
  ) {
    this.server = net.createServer((client) => this.pipe(client));
  }

  async start(): Promise<number> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return (this.server.address() as AddressInfo).port;
  }

  stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((r) => this.server.close(() => r()));
  }

  private pipe(client: net.Socket): void {
    const upstream = net.connect(this.target);
    this.sockets.add(client).add(upstream);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream);
    let pending = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      const keep: Buffer[] = [];
      // Server messages: 1 type byte, then an int32 length that counts itself and the payload.
      while (pending.length >= 5) {
        const length = pending.readInt32BE(1);
        if (pending.length < 1 + length) break;
        const message = pending.subarray(0, 1 + length);
        pending = pending.subarray(1 + length);
        const isDropped =
          message[0] === 0x53 && message.subarray(5, message.indexOf(0, 5)).toString() === this.parameter;
        if (!isDropped) keep.push(message);
      }
      if (keep.length) client.write(Buffer.concat(keep));
    });
    upstream.on('end', () => client.end());
    client.on('end', () => upstream.end());
  }
}
