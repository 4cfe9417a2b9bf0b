// Reading and parsing the digest POST body: an urlencoded form with one `p`
// field per path. Bounded before and while reading, strict when parsing,
// because every byte of it comes from the client.
import type { IncomingMessage } from 'node:http';
import { PkgError, bodyTooLarge } from '../core/errors.js';

export async function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) throw bodyTooLarge(maxBytes);
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > maxBytes) throw bodyTooLarge(maxBytes);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function formDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw new PkgError('bad-request', 'malformed form body: bad percent-encoding');
  }
}

/**
 * The values of the `p` fields, in order, form-decoded: these are the strings
 * the client hashed. Other fields are ignored.
 */
export function parsePathForm(req: IncomingMessage, body: Buffer, maxPaths: number): string[] {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== '' && type !== 'application/x-www-form-urlencoded') {
    throw new PkgError('bad-request', `expected an application/x-www-form-urlencoded body, got '${type}'`);
  }
  const text = body.toString('latin1');
  if (/[^\x20-\x7e]/.test(text.replace(/\r?\n$/, ''))) throw new PkgError('bad-request', 'malformed form body: raw non-ASCII or control characters');
  const paths: string[] = [];
  for (const pair of text.replace(/\r?\n$/, '').split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq < 0) throw new PkgError('bad-request', 'malformed form body: field without =');
    if (formDecode(pair.slice(0, eq)) !== 'p') continue;
    if (paths.length >= maxPaths) throw new PkgError('too-large', `more than ${maxPaths} paths in one request`, 'max-paths');
    paths.push(formDecode(pair.slice(eq + 1)));
  }
  if (paths.length === 0) throw new PkgError('bad-request', 'no p fields in the body');
  return paths;
}
