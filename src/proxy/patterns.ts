// Which requests the proxy tries over BitTorrent: file names matching the
// package patterns (shell globs on the last path segment, `*` and `?` only).

import { DEFAULT_PACKAGE_PATTERNS } from '../core/config.js';

export type NameMatcher = (path: string) => boolean;

export function packageMatcher(patterns: readonly string[]): NameMatcher {
  const res = (patterns.length ? patterns : DEFAULT_PACKAGE_PATTERNS).map((p) => new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$'));
  return (path) => {
    const name = path.slice(path.lastIndexOf('/') + 1);
    return name !== '' && res.some((re) => re.test(name));
  };
}
