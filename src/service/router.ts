// Which handler a request goes to. Routes match on the percent-decoded path
// (Transmission asks for /yum/torrent%5Fservice/nullfile/145605%5F0), under
// any single prefix segment: /<prefix>/<service name>/<mode>/...
import { PkgError } from '../core/errors.js';

const SLASH = 0x2f;

export type Route =
  | { kind: 'digest'; digest: string }
  /** Path under the root, decoded, with its leading slash; may hold glob patterns. */
  | { kind: 'simple'; path: string }
  | { kind: 'nullfile'; size: number }
  /** Anything else: a static file when --files is on. Decoded path. */
  | { kind: 'file'; path: string };

/** The path part of a request target, percent-decoded. */
export function decodedPath(url: string): string {
  const q = url.indexOf('?');
  const raw = q < 0 ? url : url.slice(0, q);
  if (!raw.startsWith('/')) throw new PkgError('bad-request', 'request target must be an absolute path');
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new PkgError('bad-request', 'malformed percent-encoding in path');
  }
}

const DIGEST = /^[0-9a-fA-F]{40}$/;

export function route(url: string, serviceName: string): Route {
  const path = decodedPath(url);
  // /<prefix>/<service>/<mode>/<rest>, found by index rather than split: this runs on every request.
  const prefixEnd = path.indexOf('/', 1);
  // No service segment, or an empty prefix ("//...").
  if (prefixEnd <= 1) return { kind: 'file', path };
  const modeStart = prefixEnd + 1 + serviceName.length + 1;
  if (path.charCodeAt(modeStart - 1) !== SLASH || !path.startsWith(serviceName, prefixEnd + 1)) return { kind: 'file', path };
  const modeEnd = path.indexOf('/', modeStart);
  const mode = modeEnd < 0 ? path.slice(modeStart) : path.slice(modeStart, modeEnd);
  /** Everything after the mode's slash; null when there is no such slash. */
  const rest = modeEnd < 0 ? null : path.slice(modeEnd + 1);
  /** The rest when it is exactly one segment. */
  const one = rest !== null && !rest.includes('/') ? rest : null;
  switch (mode) {
    case 'digest': {
      if (one === null || !DIGEST.test(one)) throw new PkgError('bad-request', 'malformed digest: expected 40 hex digits');
      return { kind: 'digest', digest: one.toLowerCase() };
    }
    case 'simple':
    case 'single': {
      if (!rest) throw new PkgError('bad-request', `${mode}/ needs a path under the root`);
      return { kind: 'simple', path: '/' + rest };
    }
    case 'nullfile': {
      const m = one === null ? null : /^(\d+)_\d+$/.exec(one);
      if (!m) throw new PkgError('not-found', 'no such null file: expected nullfile/<size>_<n>');
      return { kind: 'nullfile', size: Number(m[1]) };
    }
    default:
      throw new PkgError('not-found', `unknown service route '${mode}'`);
  }
}
