/**
 * `lvs-xdp doctor`'s checks of the VIPs on the director's links and of veth peers in other
 * network namespaces, the LVS-DR mistakes that send traffic elsewhere without an error:
 *  - another host answers ARP / ND for a VIP (a realserver without arp_ignore, a second NIC, a
 *    forgotten address): clients' routers may send all of the VIP's traffic there;
 *  - a VIP inside an attached interface's subnet that the director does not answer for: the
 *    clients' router ARPs for it on that link ("Supported topologies": the one-armed director
 *    owns the VIP on its interface), so nothing (or the wrong host) receives it;
 *  - a veth whose peer, in another namespace, runs no XDP program: frames sent with XDP_TX /
 *    XDP_REDIRECT vanish there.
 */
import { execFileSync } from 'node:child_process';
import { formatAddress, parseAddress } from '../model/address.js';
import { probeNeighbours } from '../ops/neighprobe.js';
import type { Finding } from './doctor.js';

interface IpLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  address?: string;
  link_index?: number;
  link_netnsid?: number;
  linkinfo?: { info_kind?: string };
  xdp?: { mode?: number; prog?: { id?: number }; attached?: { mode?: number; prog?: { id?: number } }[] };
  link_type?: string;
  addr_info?: { family: string; local?: string; prefixlen?: number; scope?: string }[];
}

function ipJson<T>(args: string[]): T {
  return JSON.parse(execFileSync('ip', ['-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) || '[]') as T;
}

function canon(a: string): string {
  const p = parseAddress(a);
  if (!p) return a;
  return p.family === 4 ? a : a.toLowerCase().replace(/(^|:)0+(?=[0-9a-f])/g, '$1');
}

/** Whether `addr` lies in `net`/`len` (same family). */
export function inPrefix(addr: string, net: string, len: number): boolean {
  const a = parseAddress(addr);
  const n = parseAddress(net);
  if (!a || !n || a.family !== n.family) return false;
  for (let bit = 0; bit < len; bit++) {
    const byte = bit >> 3;
    const mask = 0x80 >> (bit & 7);
    if ((a.bytes[byte]! & mask) !== (n.bytes[byte]! & mask)) return false;
  }
  return true;
}

/** The network of `addr`/`len` as text ('198.51.100.0/24'). */
function network(addr: string, len: number): string {
  const a = parseAddress(addr)!;
  const bytes = Uint8Array.from(a.bytes, (b, i) => (i * 8 >= len ? 0 : i * 8 + 8 <= len ? b : b & (0xff << (8 - (len - i * 8))) & 0xff));
  return `${formatAddress({ ...a, bytes })}/${len}`;
}

const same = (a: string, b: string) => {
  const x = parseAddress(a);
  const y = parseAddress(b);
  return !!x && !!y && x.family === y.family && x.bytes.every((v, i) => v === y.bytes[i]);
};

function readSysctl(key: string): number | undefined {
  try {
    return Number(execFileSync('cat', [`/proc/sys/${key}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
  } catch {
    return undefined;
  }
}

const proto = (fam: 4 | 6) => (fam === 4 ? 'ARP' : 'ND');
const hostPrefix = (fam: 4 | 6) => (fam === 4 ? 32 : 128);
const addCmd = (vip: string, fam: 4 | 6, dev: string) => `${fam === 6 ? 'ip -6' : 'ip'} addr add ${vip}/${hostPrefix(fam)} dev ${dev}`;

/**
 * ARP / ND for each VIP from each interface; any answer from a MAC that is not this host's is a
 * failure naming it (and its address when the neighbour table knows the MAC).
 */
export function neighbourFindings(vips: readonly string[], ifaces: readonly string[], timeoutMs: number): Finding[] {
  if (vips.length === 0) return [];
  const out: Finding[] = [];
  let links: IpLink[];
  try {
    links = ipJson<IpLink[]>(['addr', 'show']);
  } catch (e) {
    return [{ verdict: 'warn', check: 'VIP neighbours', detail: `cannot read the interfaces: ${(e as Error).message}` }];
  }
  const own = new Set(links.map((l) => l.address?.toLowerCase()).filter((m): m is string => !!m));
  for (const dev of ifaces) {
    const link = links.find((l) => l.ifname === dev);
    // ARP / ND exist on Ethernet links only (not on lo, tunnels or raw IP devices).
    if (!link || link.link_type !== 'ether') continue;
    const noarp = (link.flags ?? []).includes('NOARP');
    const addrs = link.addr_info ?? [];
    // A real request, as a router would send it: from an address of the link that is no VIP.
    const src4 = addrs.find((a) => a.family === 'inet' && a.local && !vips.some((v) => same(v, a.local!)))?.local ?? '0.0.0.0';
    const src6 = addrs.find((a) => a.family === 'inet6' && a.scope === 'link' && a.local)?.local ?? '::';
    const asked = vips.filter((v) => !(noarp && parseAddress(v)?.family === 4));
    let answers;
    try {
      answers = probeNeighbours({ dev, addrs: asked, timeoutMs, src4, src6 });
    } catch (e) {
      out.push({ verdict: 'warn', check: `VIP neighbours on ${dev}`, detail: `the ARP / ND probe failed: ${((e as { stderr?: string }).stderr || (e as Error).message).trim()}`, fix: 'install python3 (the probe is src/ops/neigh-probe.py), run as root' });
      continue;
    }
    let neigh: { dst: string; lladdr?: string }[] = [];
    try {
      neigh = ipJson(['neigh', 'show', 'dev', dev]);
    } catch {
      // the MAC alone is named
    }
    for (const vip of asked) {
      const fam = parseAddress(vip)!.family as 4 | 6;
      const check = `VIP ${vip} on ${dev}`;
      const others = answers.filter((a) => same(a.addr, vip) && !own.has(a.mac.toLowerCase()));
      if (others.length === 0) {
        out.push({ verdict: 'ok', check, detail: `no other host answers ${proto(fam)} for it (${timeoutMs} ms)` });
        continue;
      }
      const named = others.map((a) => {
        const ips = neigh.filter((n) => n.lladdr?.toLowerCase() === a.mac.toLowerCase() && !same(n.dst, vip)).map((n) => canon(n.dst));
        return `MAC ${a.mac}${ips.length ? ` (${ips.join(', ')} in the neighbour table)` : ' (address unknown: not in the neighbour table)'}`;
      });
      out.push({
        verdict: 'fail', check,
        detail: `another host answers ${proto(fam)} for the VIP: ${named.join('; ')}: clients' routers may send the VIP's traffic there instead of to the director`,
        fix: fam === 4
          ? `on that host: remove the VIP from its interfaces (ip addr del ${vip}/PREFIX dev IFACE), or, if it is a realserver, keep it on lo only and ARP-silent: lvs-xdp realserver setup --mode dr --vip ${vip} (then lvs-xdp realserver check --mode dr --vip ${vip} names any interface that still answers)`
          : `on that host: remove the VIP from its interfaces (ip -6 addr del ${vip}/PREFIX dev IFACE) and any proxy entry (ip -6 neigh del proxy ${vip} dev IFACE); a realserver keeps it on lo only: lvs-xdp realserver setup --mode dr --vip ${vip}`,
      });
    }
  }
  return out;
}

/**
 * Is each VIP local where the topology needs it? A VIP inside the subnet of an attached
 * interface is reached by ARP / ND on that link, so the director must answer for it: the VIP on
 * that interface (IPv6 answers only for the interface's own addresses), or, IPv4, local anywhere
 * with arp_ignore 0 there. A VIP outside every attached subnet is routed to the director (a
 * static route, or `lvs-xdp announce`) and need not be local.
 */
export function vipLocalFindings(vips: readonly string[], ifaces: readonly string[]): Finding[] {
  if (vips.length === 0 || ifaces.length === 0) return [];
  let links: IpLink[];
  try {
    links = ipJson<IpLink[]>(['addr', 'show']);
  } catch {
    return [];
  }
  const out: Finding[] = [];
  for (const vip of vips) {
    const fam = parseAddress(vip)!.family as 4 | 6;
    const fname = fam === 4 ? 'inet' : 'inet6';
    const localOn = links.filter((l) => (l.addr_info ?? []).some((a) => a.family === fname && a.local && same(a.local, vip))).map((l) => l.ifname);
    const check = `VIP ${vip} local`;
    let onLink = false;
    for (const dev of ifaces) {
      const link = links.find((l) => l.ifname === dev);
      const net = (link?.addr_info ?? []).find((a) => a.family === fname && a.local && a.prefixlen !== undefined && a.prefixlen < hostPrefix(fam)
        && a.scope !== 'link' && inPrefix(vip, a.local, a.prefixlen));
      if (!net) continue;
      onLink = true;
      const subnet = `${dev}'s subnet ${network(net.local!, net.prefixlen!)}`;
      if (localOn.includes(dev)) {
        out.push({ verdict: 'ok', check, detail: `on ${dev} (in ${subnet}): the director answers ${proto(fam)} for it there` });
        continue;
      }
      const ign = Math.max(readSysctl('net/ipv4/conf/all/arp_ignore') ?? 0, readSysctl(`net/ipv4/conf/${dev}/arp_ignore`) ?? 0);
      if (fam === 4 && localOn.length && ign === 0) {
        out.push({ verdict: 'ok', check, detail: `in ${subnet}, local on ${localOn.join(', ')}: ${dev} answers ARP for it (arp_ignore 0)` });
        continue;
      }
      const why = localOn.length
        ? `local on ${localOn.join(', ')} only, and ${dev} ${fam === 4 ? `does not answer ARP for it there (arp_ignore ${ign})` : 'answers ND only for its own addresses'}`
        : 'not local on the director: nothing here answers ARP / ND for it';
      out.push({
        verdict: 'fail', check,
        detail: `in ${subnet}, so clients' routers look for it by ${proto(fam)} on ${dev}, but it is ${why}: its traffic never reaches the director (or reaches whichever host answers)`,
        fix: addCmd(vip, fam, dev),
      });
    }
    if (!onLink) {
      out.push(localOn.length
        ? { verdict: 'ok', check, detail: `local on ${localOn.join(', ')}, outside the subnets of ${ifaces.join(', ')}: routed to the director (a static route or lvs-xdp announce)` }
        : { verdict: 'info', check, detail: `outside the subnets of ${ifaces.join(', ')} and not local: clients' routers must route it to this director (a static route via its address, or lvs-xdp announce)` });
    }
  }
  return out;
}

/**
 * A veth's peer in another network namespace, reached through its netns id when that namespace
 * has a name (/run/netns): without a native XDP program there, what the director sends on the
 * veth with XDP_TX / XDP_REDIRECT is dropped. Undefined when the peer is not in another
 * namespace (doctor.ts checks it in this one).
 */
export function remoteVethPeerFinding(ifname: string, check: string, need: string): Finding | undefined {
  let self: IpLink | undefined;
  try {
    self = ipJson<IpLink[]>(['-d', 'link', 'show', 'dev', ifname])[0];
  } catch {
    return undefined;
  }
  if (self?.link_netnsid === undefined || self.link_index === undefined) return undefined;
  const nsid = self.link_netnsid;
  let name: string | undefined;
  try {
    name = ipJson<{ nsid: number; name?: string }[]>(['netns', 'list-id']).find((n) => n.nsid === nsid)?.name;
  } catch {
    name = undefined;
  }
  if (!name) {
    return {
      verdict: 'info', check,
      detail: `${need}; the peer (ifindex ${self.link_index}) is in network namespace id ${nsid}, which has no name here, so doctor cannot look at it`,
      fix: `name it (ip netns attach NAME PID, with the PID of a process in it) and run doctor again, or check the peer there`,
    };
  }
  let peer: IpLink | undefined;
  try {
    peer = ipJson<IpLink[]>(['-n', name, 'link', 'show']).find((l) => l.ifindex === self!.link_index);
  } catch (e) {
    return { verdict: 'warn', check, detail: `${need}; cannot read namespace ${name}: ${(e as Error).message}` };
  }
  if (!peer) return { verdict: 'warn', check, detail: `${need}; no interface ${self.link_index} in namespace ${name}` };
  const x = peer.xdp;
  const progs = x?.attached?.length ? x.attached : x ? [x] : [];
  const native = progs.find((p) => p.mode === 1 && p.prog?.id);
  if (native) return { verdict: 'ok', check, detail: `${peer.ifname} in namespace ${name} runs an XDP program (id ${native.prog!.id}), so forwarded frames are delivered` };
  return {
    verdict: 'fail', check,
    detail: `${peer.ifname} in namespace ${name} runs no native XDP program${progs.length ? ' (only a generic-mode one)' : ''}: ${need}`,
    fix: `attach any native XDP program to it, e.g. one returning XDP_PASS: ip -n ${name} link set dev ${peer.ifname} xdpdrv obj PROG.o sec xdp (lvs-xdp's bpf/floors.o has one: program floor_pass)`,
  };
}
