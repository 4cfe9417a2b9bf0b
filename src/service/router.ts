// Which handler a request goes to. Routes match on the percent-decoded path
// (Transmission asks for /yum/torrent%5Fservice/nullfile/145605%5F0), under
// any single prefix segment: /<prefix>/<service name>/<mode>/...
import { PkgError } from '../core/errors.js';

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

export function route(url: string, serviceName: string): Route {
  const path = decodedPath(url);
  const segs = path.split('/');
  // ['', prefix, service, mode, ...rest]
  if (segs.length < 4 || segs[1] === '' || segs[2] !== serviceName) return { kind: 'file', path };
  const mode = segs[3];
  const rest = segs.slice(4);
  switch (mode) {
    case 'digest': {
      const d = rest.length === 1 ? rest[0]!.toLowerCase() : '';
      if (!/^[0-9a-f]{40}$/.test(d)) throw new PkgError('bad-request', 'malformed digest: expected 40 hex digits');
      return { kind: 'digest', digest: d };
    }
    case 'simple':
    case 'single': {
      const p = rest.join('/');
      if (p === '') throw new PkgError('bad-request', `${mode}/ needs a path under the root`);
      return { kind: 'simple', path: '/' + p };
    }
    case 'nullfile': {
      const m = rest.length === 1 ? /^(\d+)_\d+$/.exec(rest[0]!) : null;
      if (!m) throw new PkgError('not-found', 'no such null file: expected nullfile/<size>_<n>');
      return { kind: 'nullfile', size: Number(m[1]) };
    }
    default:
      throw new PkgError('not-found', `unknown service route '${mode}'`);
  }
}
