/**
 * The realserver's view of the kernel: interfaces and addresses (`ip -j addr`), default routes
 * (`ip -j route`), sysctls (/proc/sys, which shows the caller's network namespace), and the few
 * changes setup and teardown make with `ip`. Commands run with argument arrays, never a shell.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { ExitCode, LvsError, PermissionError } from '../errors.js';
import { canonicalAddress, type Family } from '../model/address.js';
import type { DefaultRoute, IfAddr, LinkState } from './model.js';

/** Runs `ip ARGS`; failures become LvsErrors carrying ip's own message. */
export function ip(args: readonly string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') {
      throw new LvsError('the ip command (iproute2) is not installed', 'FAILURE', ExitCode.FAILURE, { hint: 'apt-get install iproute2' });
    }
    const msg = (err.stderr ?? '').trim() || err.message;
    const what = `ip ${args.join(' ')}: ${msg}`;
    if (/Operation not permitted|Permission denied/.test(msg)) throw new PermissionError(what);
    throw new LvsError(what, 'KERNEL', ExitCode.KERNEL);
  }
}

interface IpAddrJson {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu?: number;
  addr_info?: { family: string; local?: string; prefixlen?: number; scope?: string; tentative?: boolean; dadfailed?: boolean }[];
}

/** Interfaces and their addresses, from one `ip -j addr show`. */
export function readInterfaces(): { links: LinkState[]; addrs: IfAddr[] } {
  const list = JSON.parse(ip(['-j', 'addr', 'show'])) as IpAddrJson[];
  const links: LinkState[] = [];
  const addrs: IfAddr[] = [];
  for (const l of list) {
    const flags = l.flags ?? [];
    links.push({ ifname: l.ifname, ifindex: l.ifindex, up: flags.includes('UP'), mtu: l.mtu ?? 0, ...(flags.includes('NOARP') ? { noarp: true } : {}) });
    for (const a of l.addr_info ?? []) {
      const family: Family | undefined = a.family === 'inet' ? 4 : a.family === 'inet6' ? 6 : undefined;
      const local = a.local === undefined ? null : canonicalAddress(a.local);
      if (!family || !local || a.prefixlen === undefined) continue;
      addrs.push({
        ifname: l.ifname, family, local, prefixlen: a.prefixlen, scope: a.scope ?? 'global',
        ...(a.tentative ? { tentative: true } : {}), ...(a.dadfailed ? { dadfailed: true } : {}),
      });
    }
  }
  return { links, addrs };
}

interface IpRouteJson {
  dst: string;
  dev?: string;
  gateway?: string;
  metrics?: Record<string, number>[];
}

/** The default routes of both families (main table). */
export function readDefaultRoutes(): DefaultRoute[] {
  const out: DefaultRoute[] = [];
  for (const family of [4, 6] as Family[]) {
    const list = JSON.parse(ip([`-${family}`, '-j', 'route', 'show', 'default']) || '[]') as IpRouteJson[];
    for (const r of list) {
      const advmss = r.metrics?.find((m) => typeof m.advmss === 'number')?.advmss;
      const route: DefaultRoute = { family };
      if (r.dev) route.dev = r.dev;
      if (r.gateway) route.gateway = r.gateway;
      if (advmss !== undefined) route.advmss = advmss;
      out.push(route);
    }
  }
  return out;
}

/** Proxy NDP entries (`ip -6 neigh show proxy`): each makes its interface answer for dst. */
export function readProxyNd(): { ifname: string; dst: string }[] {
  const list = JSON.parse(ip(['-6', '-j', 'neigh', 'show', 'proxy']) || '[]') as { dst?: string; dev?: string }[];
  const out: { ifname: string; dst: string }[] = [];
  for (const e of list) {
    const dst = e.dst === undefined ? null : canonicalAddress(e.dst);
    if (dst && e.dev) out.push({ ifname: e.dev, dst });
  }
  return out;
}

/** A sysctl under /proc/sys ('net/ipv4/conf/all/arp_ignore'); undefined when it does not exist. */
export function readSysctl(key: string): number | undefined {
  try {
    const n = Number(readFileSync(`/proc/sys/${key}`, 'utf8').trim());
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

export function writeSysctl(key: string, value: number): void {
  try {
    writeFileSync(`/proc/sys/${key}`, `${value}\n`);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const what = `could not set ${key.replace(/\//g, '.')} to ${value}: ${code ?? (e as Error).message}`;
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') throw new PermissionError(what);
    throw new LvsError(what, 'KERNEL', ExitCode.KERNEL);
  }
}

export function addAddress(addr: string, prefix: number, dev: string, family: Family): void {
  // No duplicate address detection on lo: the VIP is meant to exist on many hosts at once.
  ip(family === 6 ? ['-6', 'addr', 'add', `${addr}/${prefix}`, 'dev', dev, 'nodad'] : ['addr', 'add', `${addr}/${prefix}`, 'dev', dev]);
}

export function delAddress(addr: string, prefix: number, dev: string, family: Family): void {
  ip([`-${family}`, 'addr', 'del', `${addr}/${prefix}`, 'dev', dev]);
}

export function setLinkUp(dev: string, up: boolean): void {
  ip(['link', 'set', 'dev', dev, up ? 'up' : 'down']);
}
