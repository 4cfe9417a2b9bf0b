// Who may use the proxy and where it may go. Never an open proxy: off
// loopback, only clients in --allow-from; with --allow-host, only those hosts.
import { BlockList, isIP } from 'node:net';
import { PkgError } from '../core/errors.js';

export interface Access {
  client(address: string | undefined): boolean;
  host(hostname: string): boolean;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\./.test(host) || /^::ffff:127\./.test(host);
}

export function access(listenHost: string, allowFrom: readonly string[], allowHosts: readonly string[]): Access {
  if (!isLoopback(listenHost) && allowFrom.length === 0) {
    throw new PkgError('usage', `listening on ${listenHost} needs --allow-from CIDR (the proxy is never open to everyone)`);
  }
  const list = new BlockList();
  list.addSubnet('127.0.0.0', 8, 'ipv4');
  list.addAddress('::1', 'ipv6');
  for (const cidr of allowFrom) {
    const [addr, bits] = cidr.split('/');
    const family = isIP(addr ?? '');
    const max = family === 6 ? 128 : 32;
    const prefix = bits === undefined ? max : Number(bits);
    if (!family || !Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new PkgError('usage', `invalid --allow-from '${cidr}': expected an address or CIDR`);
    list.addSubnet(addr!, prefix, family === 6 ? 'ipv6' : 'ipv4');
  }
  const hosts = new Set(allowHosts.map((h) => h.toLowerCase()));
  return {
    client(address) {
      if (!address) return false;
      const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address)?.[1];
      if (v4) return list.check(v4, 'ipv4');
      return list.check(address, isIP(address) === 6 ? 'ipv6' : 'ipv4');
    },
    host: (hostname) => hosts.size === 0 || hosts.has(hostname.toLowerCase().replace(/^\[|\]$/g, '')),
  };
}
