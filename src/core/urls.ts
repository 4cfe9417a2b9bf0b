// What a URL must be for each place one goes into a torrent. One module so
// the trackers file, `make -a/-w`, the base-url setting and the tracker probe
// cannot drift into different rules; each rule returns why a text fails it
// (one short phrase for an error line), or null.

/** Schemes of trackers the trackers file and the service use. */
const TRACKER_SCHEMES = ['http:', 'https:', 'udp:'] as const;
/** `make -a` also takes WebTorrent trackers, as mktorrent does. */
const MAKE_TRACKER_SCHEMES = [...TRACKER_SCHEMES, 'ws:', 'wss:'] as const;
/** BEP 19 web seeds: HTTP and FTP servers (aria2 fetches both). */
const WEB_SEED_SCHEMES = ['http:', 'https:', 'ftp:'] as const;
/** The mirror itself, as serve's web seeds point to it: HTTP only. */
const BASE_URL_SCHEMES = ['http:', 'https:'] as const;

function listed(schemes: readonly string[]): string {
  const names = schemes.map((s) => s.slice(0, -1));
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} or ${names.at(-1)}` : names.join('');
}

/** The URL, or why the text is no URL of one of these schemes with a host. */
function parse(text: string, schemes: readonly string[]): URL | string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return 'not a URL';
  }
  if (!schemes.includes(u.protocol)) return `unsupported scheme '${u.protocol.slice(0, -1)}' (use ${listed(schemes)})`;
  if (!u.hostname) return 'no host';
  return u;
}

/**
 * An announce URL: http, https or udp (`make -a` also ws and wss), a host, a
 * port for udp, and nothing a tracker would never see or must not get.
 */
export function announceUrlProblem(text: string, opts: { webTorrent?: boolean } = {}): string | null {
  const u = parse(text, opts.webTorrent ? MAKE_TRACKER_SCHEMES : TRACKER_SCHEMES);
  if (typeof u === 'string') return u;
  // A trackers file line with a space in it is a typo; a web seed's path may hold one (percent-encoded in the torrent).
  if (/\s/.test(text)) return 'contains whitespace';
  if (u.protocol === 'udp:' && !u.port) return 'udp tracker without a port';
  if (u.username || u.password) return 'credentials are not allowed in a tracker URL';
  if (u.port === '0') return 'port 0';
  if (u.hash) return `fragment '${u.hash}' is never sent to a tracker`;
  return null;
}

/** A web seed (BEP 19) given to `make -w`: http, https or ftp, with a host. */
export function webSeedUrlProblem(text: string): string | null {
  const u = parse(text, WEB_SEED_SCHEMES);
  return typeof u === 'string' ? u : null;
}

/** The base URL of the mirror (base-url): http or https, with a host. */
export function baseUrlProblem(text: string): string | null {
  const u = parse(text, BASE_URL_SCHEMES);
  return typeof u === 'string' ? u : null;
}
