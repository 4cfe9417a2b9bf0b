// URL paths as clients and shells write them ("/pub/a%2B1.rpm") to
// root-relative file paths ("pub/a+1.rpm"): one rule for the service and for
// `make --layout service`, so both name the same file for the same text.
import { PkgError } from './errors.js';
import { checkRelPath } from './root.js';

/** URL path as the client sent it ("/pub/a%2B1.rpm") to a root-relative file path ("pub/a+1.rpm"). */
export function urlPathToRel(urlPath: string): string {
  if (!urlPath.startsWith('/')) throw new PkgError('bad-request', `'${urlPath}': paths must start with /`);
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    throw new PkgError('bad-request', `'${urlPath}': malformed percent-encoding`);
  }
  return checkRelPath(decoded);
}
