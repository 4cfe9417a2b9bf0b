// Piece cache entries as other versions wrote them, for tests of reading old caches.
import { createHash } from 'node:crypto';

/** A version 2 entry as version 1 wrote it: only the version field and the checksum differ. */
export function versionOne(v2: Buffer): Buffer {
  const body = Buffer.from(v2.subarray(0, v2.length - 20));
  body.writeUInt16BE(1, 8);
  return Buffer.concat([body, createHash('sha1').update(body).digest()]);
}
