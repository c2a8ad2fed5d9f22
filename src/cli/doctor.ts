/**
 * `lvs-xdp doctor [IFACE...]`: what a director needs, checked one by one with the fix for each
 * problem: kernel and BPF features, bpffs, each interface's driver, the XDP mode it supports and
 * the offloads that get in the way (and a veth peer without an XDP program, in this namespace or
 * a named other one), the pinned state's consistency with the snapshot, whether every
 * realserver's MAC / next hop resolves, whether each VIP is local where the link needs it, and
 * whether another host answers ARP / ND for a VIP (doctor-vip.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { release } from 'node:os';
import { Command, InvalidArgumentError } from 'commander';
import { Director } from '../director/director.js';
import { statePaths } from '../director/paths.js';
import { assertBpffs } from '../director/lifecycle.js';
import { linkInfo, resolveRealserver, acceptedMacs } from '../director/neigh.js';
import { sameAccepted } from '../dataplane/l2addrs.js';
import { DIRECTOR_MAPS } from '../dataplane/loader.js';
import { xdpQuery, ifIndex } from '../native/index.js';
import { serviceId } from '../model/types.js';
import { ExitCode } from '../errors.js';
import { withStateOptions, stateOptions, toJson, type StateOpts } from './common.js';
import type { AcceptedMac } from '../dataplane/l2addrs.js';
import { neighbourFindings, remoteVethPeerFinding, vipLocalFindings } from './doctor-vip.js';
import { sharingFindings, withoutRootWarning } from './share-findings.js';

export type Verdict = 'ok' | 'warn' | 'fail' | 'info';
export interface Finding { verdict: Verdict; check: string; detail: string; fix?: string }

/** Drivers with native XDP (XDP_TX included) in mainline Linux 6.x. */
const NATIVE_XDP_DRIVERS = new Set([
  'veth', 'virtio_net', 'tun', 'mlx4_en', 'mlx5_core', 'i40e', 'ice', 'ixgbe', 'ixgbevf', 'igb', 'igc', 'bnxt_en',
  'nfp', 'ena', 'qede', 'thunder_nicvf', 'sfc', 'dpaa2-eth', 'mvneta', 'mvpp2', 'stmmac', 'fec', 'netsec', 'cpsw',
  'bnx2x', 'hv_netvsc', 'xen-netfront', 'lan966x', 'am65-cpsw-nuss', 'enetc', 'tsnep', 'otx2_pf', 'octeontx2', 'gve',
]);

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function run(cmd: string, args: string[]): string | undefined {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return undefined;
  }
}

/** `jitedLen`: the running program's JIT code size, when one is loaded (the authoritative answer). */
export function kernelFindings(jitedLen?: number): Finding[] {
  const out: Finding[] = [];
  const [maj = 0, min = 0] = release().split('.').map((x) => parseInt(x, 10));
  out.push(maj > 5 || (maj === 5 && min >= 15)
    ? { verdict: 'ok', check: 'kernel', detail: `Linux ${release()}` }
    : { verdict: 'fail', check: 'kernel', detail: `Linux ${release()}: bpf_link for XDP and BTF-defined inner maps need 5.15 or later`, fix: 'upgrade the kernel' });
  out.push(process.getuid?.() === 0
    ? { verdict: 'ok', check: 'privileges', detail: 'root' }
    : { verdict: 'fail', check: 'privileges', detail: 'not root', fix: 'run as root (CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON are needed)' });
  // The sysctl exists only in the initial network namespace; the loaded program says for sure.
  const jit = read('/proc/sys/net/core/bpf_jit_enable')?.trim();
  if (jitedLen !== undefined && jitedLen > 0) {
    out.push({ verdict: 'ok', check: 'BPF JIT', detail: `the director program is JIT-compiled (${jitedLen} bytes)` });
  } else if (jitedLen === 0) {
    out.push({ verdict: 'warn', check: 'BPF JIT', detail: 'the director program runs interpreted, several times slower', fix: 'sysctl -w net.core.bpf_jit_enable=1 (in the host\'s network namespace), then detach and attach again' });
  } else if (jit === '1' || jit === '2') {
    out.push({ verdict: 'ok', check: 'BPF JIT', detail: 'enabled' });
  } else if (jit === undefined) {
    out.push({ verdict: 'info', check: 'BPF JIT', detail: 'net.core.bpf_jit_enable is not visible in this network namespace (it lives in the host\'s); attach, then doctor reads the program\'s JIT state' });
  } else {
    out.push({ verdict: 'warn', check: 'BPF JIT', detail: `bpf_jit_enable=${jit}: programs run interpreted, several times slower`, fix: 'sysctl -w net.core.bpf_jit_enable=1' });
  }
  out.push(existsSync('/sys/kernel/btf/vmlinux')
    ? { verdict: 'ok', check: 'BTF', detail: '/sys/kernel/btf/vmlinux present' }
    : { verdict: 'warn', check: 'BTF', detail: 'no kernel BTF', fix: 'a kernel built with CONFIG_DEBUG_INFO_BTF=y' });
  const mounts = read('/proc/self/mounts') ?? '';
  out.push(/ \/sys\/fs\/bpf bpf /.test(mounts)
    ? { verdict: 'ok', check: 'bpffs', detail: 'mounted at /sys/fs/bpf' }
    : { verdict: 'fail', check: 'bpffs', detail: '/sys/fs/bpf is not a BPF file system (inside `ip netns exec` it is remounted away)', fix: 'mount -t bpf bpf /sys/fs/bpf; use nsenter --net=/run/netns/NS instead of ip netns exec' });
  return out;
}

export function interfaceFindings(ifname: string, ownProgId?: number): Finding[] {
  const out: Finding[] = [];
  const c = `interface ${ifname}`;
  try {
    ifIndex(ifname);
  } catch {
    return [{ verdict: 'fail', check: c, detail: 'does not exist in this network namespace', fix: 'check the name (ip link), or run in the right namespace' }];
  }
  const info = run('ethtool', ['-i', ifname]) ?? '';
  const driver = /^driver:\s*(\S+)/m.exec(info)?.[1] ?? 'unknown';
  out.push(NATIVE_XDP_DRIVERS.has(driver)
    ? { verdict: 'ok', check: `${c} driver`, detail: `${driver}: native XDP` }
    : { verdict: 'warn', check: `${c} driver`, detail: `${driver}: no native XDP known; lvs-xdp will run in generic (skb) mode, much slower`, fix: '--mode generic works everywhere; use a NIC with an XDP driver for speed' });
  const feats = run('ethtool', ['-k', ifname]) ?? '';
  if (/^large-receive-offload: on/m.test(feats)) {
    out.push({ verdict: 'fail', check: `${c} LRO`, detail: 'large-receive-offload is on: drivers refuse native XDP with LRO', fix: `ethtool -K ${ifname} lro off` });
  }
  if (/^rx-gro-hw: on/m.test(feats)) {
    out.push({ verdict: 'warn', check: `${c} hardware GRO`, detail: 'rx-gro-hw is on: some drivers refuse native XDP with it', fix: `ethtool -K ${ifname} rx-gro-hw off` });
  }
  if (driver === 'veth' && /^tx-checksumming: on/m.test(feats)) {
    out.push({ verdict: 'warn', check: `${c} TX checksum`, detail: 'veth with TX checksum offload: packets forwarded by XDP_TX can carry partial checksums', fix: `ethtool -K ${ifname} tx off (and on the peer)` });
  }
  const mtu = Number(read(`/sys/class/net/${ifname}/mtu`) ?? 0);
  if (mtu > 3498) out.push({ verdict: 'warn', check: `${c} MTU`, detail: `MTU ${mtu}: many drivers allow native XDP only up to about 3498 bytes (one page per frame)`, fix: `ip link set dev ${ifname} mtu 1500` });
  if (driver === 'veth') out.push(vethPeerFinding(ifname, c));
  try {
    const q = xdpQuery(ifname);
    const ids = [q.driverProgId, q.skbProgId, q.hwProgId].filter((x) => x);
    if (ids.length === 0) out.push({ verdict: 'info', check: `${c} XDP`, detail: 'no XDP program attached' });
    else if (ownProgId !== undefined && ids.includes(ownProgId)) out.push({ verdict: 'ok', check: `${c} XDP`, detail: `lvs-xdp attached (${q.driverProgId === ownProgId ? 'native' : 'generic'})` });
    else out.push({ verdict: 'warn', check: `${c} XDP`, detail: `another XDP program is attached (id ${ids.join(', ')})`, fix: 'attach refuses it unless --force' });
  } catch (e) {
    out.push({ verdict: 'warn', check: `${c} XDP`, detail: `cannot query: ${(e as Error).message}` });
  }
  return out;
}

/** veth drops XDP_TX / XDP_REDIRECT frames unless the peer runs an XDP program (any). */
function vethPeerFinding(ifname: string, c: string): Finding {
  const need = 'on veth, XDP_TX and XDP_REDIRECT need an XDP program (any, e.g. XDP_PASS) on the peer device, or forwarded frames are dropped';
  const peer = linkInfo(ifname).peer;
  if (peer === undefined) {
    return remoteVethPeerFinding(ifname, `${c} veth peer`, need)
      ?? { verdict: 'info', check: `${c} veth peer`, detail: `${need} (the peer is in another network namespace: check it there)` };
  }
  try {
    const q = xdpQuery(peer);
    if (q.driverProgId) return { verdict: 'ok', check: `${c} veth peer`, detail: `${peer} runs an XDP program (id ${q.driverProgId}), so forwarded frames are delivered` };
  } catch {
    // fall through: not known to run one
  }
  return { verdict: 'fail', check: `${c} veth peer`, detail: `${peer} runs no native XDP program: ${need}`, fix: `attach any native XDP program to ${peer} (e.g. ip link set dev ${peer} xdp obj PROG.o sec xdp)` };
}

export function stateFindings(opts: StateOpts): { findings: Finding[]; director?: Director } {
  const paths = statePaths(stateOptions(opts));
  const out: Finding[] = [];
  try {
    assertBpffs(paths);
  } catch (e) {
    // The pins cannot be seen from here: say nothing about them (a "missing" pin would advise a detach).
    return { findings: [{ verdict: 'fail', check: 'pinned state', detail: (e as Error).message, fix: 'use nsenter --net=/run/netns/NS instead of ip netns exec, or mount bpffs' }] };
  }
  const hasSnap = existsSync(paths.snapshot);
  const hasPins = existsSync(paths.pinDir);
  if (!hasSnap && !hasPins) return { findings: [{ verdict: 'info', check: 'pinned state', detail: `not attached (nothing at ${paths.pinDir})` }] };
  if (!hasSnap) {
    return { findings: [{ verdict: 'fail', check: 'pinned state', detail: `${paths.pinDir} exists without a snapshot (an attach was killed)`, fix: 'lvs-xdp attach IFACE starts over, removing the leftovers' }] };
  }
  const missing = DIRECTOR_MAPS.filter((m) => !existsSync(`${paths.pinDir}/${m}`));
  if (missing.length) {
    return { findings: [{ verdict: 'fail', check: 'pinned state', detail: `snapshot present but pinned maps missing: ${missing.join(', ')}`, fix: 'lvs-xdp detach, then attach again and re-apply the configuration' }] };
  }
  let d: Director;
  try {
    d = Director.open(stateOptions(opts));
  } catch (e) {
    return { findings: [{ verdict: 'fail', check: 'snapshot', detail: (e as Error).message, fix: 'lvs-xdp detach, then attach again' }] };
  }
  const st = d.status();
  out.push({ verdict: 'ok', check: 'pinned state', detail: `${paths.pinDir}: ${st.services} services, ${st.realservers} realservers, program id ${st.program?.id ?? '?'}` });
  if (st.pendingApply) out.push({ verdict: 'warn', check: 'pending change', detail: `a change started at ${st.pendingApply} was interrupted`, fix: 'any lvs-xdp command completes it (e.g. lvs-xdp -L -n)' });
  for (const i of st.interfaces) {
    out.push(i.linked
      ? { verdict: 'ok', check: `attached ${i.name}`, detail: `${i.mode} mode` }
      : { verdict: 'fail', check: `attached ${i.name}`, detail: 'in the snapshot but its link or program is gone (interface removed and created again, or program replaced)', fix: `lvs-xdp attach ${i.name} (attaches it again, keeping the running configuration)` });
  }
  out.push(...acceptedFindings(st.accepted ?? [], d.interfaces));
  if (st.connections && st.connections.entries > 0.9 * st.connections.max) {
    out.push({ verdict: 'warn', check: 'connection table', detail: `${st.connections.entries} / ${st.connections.max} entries: the LRU evicts idle flows early`, fix: 'attach with a larger --max-conns (after detach)' });
  }
  return { findings: out, director: d };
}

/** The accepted destination MACs the data plane holds, against what the interfaces say now. */
export function acceptedFindings(held: readonly AcceptedMac[], interfaces: readonly string[]): Finding[] {
  let want: AcceptedMac[];
  try {
    want = acceptedMacs(interfaces);
  } catch (e) {
    return [{ verdict: 'warn', check: 'accepted MACs', detail: (e as Error).message }];
  }
  const list = held.map((a) => `#${a.ifindex} ${a.mac} (${a.kind}${a.dev ? ` ${a.dev}` : ''})`).join(', ') || 'none';
  const stale = want.filter((w) => !held.some((h) => sameAccepted(h, w))).map((w) => `${w.mac} (${w.kind} ${w.dev ?? ''}) on #${w.ifindex}`);
  const extra = held.filter((h) => !want.some((w) => sameAccepted(h, w))).map((h) => `${h.mac} on #${h.ifindex}`);
  if (!stale.length && !extra.length) return [{ verdict: 'ok', check: 'accepted MACs', detail: `frames forwarded only when sent to: ${list}` }];
  return [{
    verdict: 'warn', check: 'accepted MACs',
    detail: `the interfaces changed since they were read: ${stale.length ? `not yet accepted ${stale.join(', ')}` : ''}${stale.length && extra.length ? '; ' : ''}${extra.length ? `still accepted ${extra.join(', ')}` : ''} (held: ${list})`,
    fix: 'any change command reads them again (e.g. lvs-xdp apply -f FILE, or run\'s resync within 30 s)',
  }];
}

export function realserverFindings(d: Director): Finding[] {
  const out: Finding[] = [];
  const attached = d.interfaces;
  const installed = new Map(d.unresolved.map((u) => [`${u.service} -> ${u.address}`, u]));
  for (const s of d.config.services) {
    for (const r of s.realservers) {
      const check = `${serviceId(s)} -> ${r.address}`;
      const res = resolveRealserver(s, r, attached);
      if (res.problem) {
        // A realserver that does not answer is down (installed unresolved), not misconfigured.
        const u = installed.get(check);
        const detail = u ? `${res.problem}; installed unresolved since ${u.since}: takes no new flows` : res.problem;
        out.push({ verdict: r.mac || res.unresolved ? 'warn' : 'fail', check, detail, fix: r.mac ? 'the configured MAC is used, but the director cannot reach the realserver itself' : res.unresolved ? 'bring the realserver up on the director\'s link, or give its MAC; until then it takes no new flows' : 'LVS-DR needs the realserver on a network the director is directly connected to; Tun needs a route' });
      } else if (r.mac && res.l2 && res.l2.mac !== r.mac) {
        out.push({ verdict: 'warn', check, detail: `configured MAC ${r.mac} but the neighbour table has ${res.l2.mac}`, fix: 'fix --mac, or drop it to use the neighbour table' });
      } else {
        out.push({ verdict: 'ok', check, detail: `${r.method === 'dr' ? 'MAC' : 'next hop MAC'} ${res.l2?.mac} via ${res.dev}` });
      }
    }
  }
  return out;
}

const MARK: Record<Verdict, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: 'info' };

export function formatFindings(fs: readonly Finding[]): string {
  const w = Math.max(...fs.map((f) => f.check.length), 5);
  return fs.map((f) => `${MARK[f.verdict]}  ${f.check.padEnd(w)}  ${f.detail}${f.fix ? `\n${' '.repeat(w + 8)}fix: ${f.fix}` : ''}`).join('\n') + '\n';
}

export function doctorCommand(): Command {
  return withStateOptions(new Command('doctor'))
    .description('check the kernel, interfaces, pinned state and realserver reachability; exit 1 if anything fails')
    .argument('[iface...]', 'interfaces to check (default: the attached ones)')
    .option('--json', 'machine-readable output')
    .option('--neigh-timeout <ms>', 'how long to wait for ARP / ND answers for each VIP', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 50 || n > 60_000) throw new InvalidArgumentError('milliseconds, 50 to 60000');
      return n;
    }, 700)
    .option('--no-neigh', 'do not ARP / ND for the VIPs')
    .action((ifaces: string[], o: StateOpts & { json?: boolean; neighTimeout: number; neigh: boolean }) => {
      const { findings: state, director } = stateFindings(o);
      const program = director?.status().program;
      const findings = kernelFindings(program?.jitedLen);
      findings.push(...state);
      const names = ifaces.length ? ifaces : director?.interfaces ?? [];
      const progId = program?.id;
      for (const n of names) {
        const sharing = sharingFindings(statePaths(stateOptions(o)), n, progId);
        findings.push(...withoutRootWarning(interfaceFindings(n, progId), sharing), ...sharing);
      }
      if (director) {
        findings.push(...realserverFindings(director));
        const vips = [...new Set(director.config.services.map((s) => s.vip))];
        findings.push(...vipLocalFindings(vips, names));
        if (o.neigh) findings.push(...neighbourFindings(vips, names, o.neighTimeout));
        director.close();
      }
      process.stdout.write(o.json ? `${toJson(findings)}\n` : formatFindings(findings));
      if (findings.some((f) => f.verdict === 'fail')) process.exitCode = ExitCode.FAILURE;
    });
}
