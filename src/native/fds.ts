/**
 * Object fds by id and by pin, their info, and the small lookups of native/fds.cc (possible CPUs,
 * interface names and indexes).
 */
import { call } from './common.js';
import type { MapInfo, ProgInfo } from './binding.js';

/** Number of possible CPUs: the number of slots in a per-CPU map value. */
export function possibleCpus(): number {
  return call({ action: 'count possible CPUs' }, (n) => n.possibleCpus());
}

export function progInfo(fd: number): ProgInfo {
  return call({ action: `read program info of fd ${fd}` }, (n) => n.progInfo(fd));
}

export function mapInfo(fd: number): MapInfo {
  return call({ action: `read map info of fd ${fd}` }, (n) => n.mapInfo(fd));
}

export function progFdById(id: number): number {
  return call({ action: `open program id ${id}` }, (n) => n.progFdById(id));
}

/** Pins any BPF object fd (map, program, link) at a bpffs path. */
export function pinObject(fd: number, path: string): void {
  call({ action: `pin at ${path}`, path }, (n) => n.objPin(fd, path));
}

/** Opens a pinned object; the caller owns (and closes) the fd. */
export function openPinned(path: string): number {
  return call({ action: `open pin ${path}`, path }, (n) => n.objGet(path));
}

export function closeFd(fd: number): void {
  call({ action: `close fd ${fd}` }, (n) => n.closeFd(fd));
}

/** Interface index from a name (or passes an index through). */
export function ifIndex(iface: string | number): number {
  if (typeof iface === 'number') return iface;
  return call({ action: `look up interface ${iface}`, ifname: iface }, (n) => n.ifNameToIndex(iface));
}

export function ifName(ifindex: number): string {
  return call({ action: `look up ifindex ${ifindex}`, ifindex }, (n) => n.ifIndexToName(ifindex));
}
