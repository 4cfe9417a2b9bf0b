// CONNECT: a plain TCP tunnel (https repositories keep working through the
// proxy; nothing is looked at, nothing stored).
import type { IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';

/** Resolves when the tunnel closed, with the bytes relayed both ways. */
export function tunnel(req: IncomingMessage, client: Duplex, head: Buffer, allowed: (host: string) => boolean): Promise<{ status: number; bytes: number }> {
  return new Promise((resolve) => {
    const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(req.url ?? '');
    const refuse = (status: number, reason: string) => {
      client.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n${reason}\n`);
      resolve({ status, bytes: 0 });
    };
    if (!m) return refuse(400, 'CONNECT needs host:port');
    const host = m[1]!.replace(/^\[|\]$/g, '');
    if (!allowed(host)) return refuse(403, 'host not allowed by --allow-host');
    const up: Socket = connect(Number(m[2]), host);
    let bytes = 0;
    let open = false;
    up.once('connect', () => {
      open = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length) up.write(head);
      up.on('data', (c: Buffer) => (bytes += c.length));
      client.on('data', (c: Buffer) => (bytes += c.length));
      up.pipe(client);
      client.pipe(up);
    });
    up.once('error', () => (open ? client.destroy() : refuse(502, 'cannot connect upstream')));
    client.once('error', () => up.destroy());
    const closed = () => {
      up.destroy();
      client.destroy();
      resolve({ status: open ? 200 : 502, bytes });
    };
    up.once('close', () => open && closed());
    client.once('close', closed);
  });
}
