/**
 * The namespace lab: a small LVS network on one machine, for `lvs-xdp demo` and the end-to-end
 * tests. Every namespace is named PREFIX-ROLE; nothing is created in the host's namespace except
 * the namespaces themselves, the per-namespace state directories of lvs-xdp (bpffs pins named
 * ...@PREFIX-ROLE) and the lab's own directory /run/lvs-xdp-lab/PREFIX.
 *
 *   PREFIX-c1..cN   clients, several addresses each (IPv4 and IPv6)
 *   PREFIX-dir      the director: DIP and the VIPs on eth0 (it answers ARP / ND for the VIPs)
 *   PREFIX-rs1..    realservers on the LAN (DR or Tun), VIPs on lo via `lvs-xdp realserver setup`
 *   PREFIX-rt       a router to a second subnet (only with remote realservers)
 *   PREFIX-rsK..    remote realservers behind the router: LVS-Tun across L3 (with twoArmed the
 *                   director has eth1 on their subnet too: separate in/out interfaces)
 *   PREFIX-net      the switch: bridge br0 (LAN) and br1 (remote subnet), one port per host
 *
 * Lab traps handled here: the director's bridge-side veth carries an XDP_PASS program (XDP_TX on a
 * veth is dropped unless its peer has one), TX checksum offload is off on every host's veth
 * (XDP_TX would forward partial checksums), IPv6 addresses are added without DAD, and everything
 * runs through `nsenter --net` (never `ip netns exec`, which hides bpffs).
 *
 * Teardown is synchronous (usable from exit and signal handlers) and idempotent: it kills every
 * process inside the lab's namespaces, deletes the namespaces and removes the lvs-xdp state
 * directories that belonged to them. `Lab.create` first removes a previous lab of the same prefix
 * (a killed run, or one left up with `demo --keep`).
 */
import { existsSync, mkdirSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  check, cliArgv, installRoot, lvsIn, netnsPath, runIn, shIn, spawnIn, waitFor,
  CommandError, type RunResult,
} from './exec.js';
import type { BurstResult, BurstSpec, LoopResult, LoopSpec, UdpResult, UdpSpec } from './client.js';

import { removeLab } from './namespaces.js';
import { LAB_RUN_DIR, NAME_RE } from './paths.js';
export { LAB_RUN_DIR } from './paths.js';
export { labNamespaces, removeLab, existingLabs, testPrefix } from './namespaces.js';

/** Addressing (documentation ranges: RFC 5737 / RFC 3849; they exist only inside the lab). */
export const NET = {
  lan4: '198.51.100', lan6: '2001:db8:100:', remote4: '203.0.113', remote6: '2001:db8:113:',
} as const;

export interface LabSpec {
  /** Namespace name prefix: `lvsdemo` for the demo, `lvsl-...` for tests. */
  prefix: string;
  /** Client namespaces (default 1). */
  clients?: number;
  /** Addresses per client namespace and family (default 4, at most 9). */
  clientAddresses?: number;
  /** Realservers on the LAN (default 3). */
  realservers?: number;
  /** Realservers on a second subnet behind a router, for LVS-Tun across L3 (default 0). */
  remoteRealservers?: number;
  /**
   * The director also has eth1 on the second subnet (203.0.113.2): separate in/out interfaces,
   * the remote realservers directly connected to it (DR through XDP_REDIRECT). Needs remote
   * realservers; their answers still go through the router.
   */
  twoArmed?: boolean;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

export interface Host { role: string; ns: string; v4: string; v6: string }
export interface ClientHost extends Host { v4s: string[]; v6s: string[] }
export interface RealserverHost extends Host { remote: boolean }

export interface Vips { dr4: string; dr6: string; tun4: string; tun6: string }

export interface ServerOptions {
  httpPort?: number;
  udpPort?: number;
  /** Addresses the UDP echo binds to (the VIPs the realserver has on lo). */
  udpVips?: string[];
}


function u(n: number): string {
  return String(n);
}

/** Shell lines setting net.* sysctls of the namespace the script runs in (no procps needed). */
function sysctl(values: Record<string, number>): string[] {
  return Object.entries(values).map(([k, v]) => `echo ${v} > /proc/sys/net/${k.replace(/\./g, '/')}`);
}

/**
 * Makes the namespaces of a lab; before any interface exists: no DAD, no router solicitations,
 * lo up; the switch (`switchNs`) has no IPv6 at all.
 */
export async function addNamespaces(namespaces: readonly string[], switchNs: string): Promise<void> {
  for (const ns of namespaces) await check('ip', ['netns', 'add', ns]);
  await Promise.all(namespaces.map((ns) => shIn(ns, [
    ...sysctl({ 'ipv6.conf.all.accept_dad': 0, 'ipv6.conf.default.accept_dad': 0, 'ipv6.conf.default.router_solicitations': 0, 'ipv6.conf.default.accept_ra': 0 }),
    ...(ns === switchNs ? sysctl({ 'ipv6.conf.default.disable_ipv6': 1, 'ipv6.conf.all.disable_ipv6': 1 }) : []),
    'ip link set lo up',
  ].join('\n'))));
}

const live = new Set<{ destroy(): void }>();
let handlersInstalled = false;

/** Labs of other shapes (src/lab/ha.ts) join the same exit and signal cleanup. */
export function trackLab(l: { destroy(): void }): void {
  live.add(l);
}

export function untrackLab(l: { destroy(): void }): void {
  live.delete(l);
}

/**
 * Removes every lab of this process on exit, SIGINT, SIGTERM and SIGHUP (then exits 130 / 143 /
 * 129). Labs marked kept (`demo --keep`) are left alone.
 */
export function installCleanupHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  const all = (): void => {
    for (const l of [...live]) l.destroy();
  };
  process.on('exit', all);
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: removing the lab\n`);
      all();
      process.exit(code);
    });
  }
}


export interface StreamHandle {
  /** Lines received so far. */
  lines: string[];
  /** Resolves with curl's exit code (0 complete, 56 reset, 28 timeout...). */
  exited: Promise<number>;
  kill(): void;
}

export interface LoopHandle { stop(): Promise<LoopResult> }

export class Lab {
  readonly prefix: string;
  readonly dir: string;
  readonly net: string;
  readonly director: Host;
  readonly router: Host | undefined;
  readonly clients: ClientHost[];
  readonly realservers: RealserverHost[];
  readonly vips: Vips;
  private readonly log: (line: string) => void;
  private destroyed = false;
  /** When true, destroy() is a no-op (demo --keep). */
  kept = false;

  private constructor(readonly spec: LabSpec) {
    const p = spec.prefix;
    if (!NAME_RE.test(p)) throw new Error(`bad lab prefix ${JSON.stringify(p)}: lowercase letters, digits and '-', starting with 'lvs'`);
    const nClients = spec.clients ?? 1;
    const nAddr = spec.clientAddresses ?? 4;
    if (nClients < 1 || nClients > 9 || nAddr < 1 || nAddr > 9) throw new Error('1..9 clients with 1..9 addresses each');
    const nRs = spec.realservers ?? 3;
    const nRemote = spec.remoteRealservers ?? 0;
    if (nRs + nRemote < 1 || nRs + nRemote > 99) throw new Error('1..99 realservers');
    if (spec.twoArmed && nRemote < 1) throw new Error('twoArmed needs remote realservers');
    this.prefix = p;
    this.dir = join(LAB_RUN_DIR, p);
    this.log = spec.log ?? (() => undefined);
    this.net = `${p}-net`;
    this.director = { role: 'dir', ns: `${p}-dir`, v4: `${NET.lan4}.2`, v6: `${NET.lan6}:2` };
    this.router = nRemote > 0 ? { role: 'rt', ns: `${p}-rt`, v4: `${NET.lan4}.1`, v6: `${NET.lan6}:1` } : undefined;
    this.clients = Array.from({ length: nClients }, (_, i) => {
      const hosts = Array.from({ length: nAddr }, (__, j) => 10 * (i + 1) + j + 1);
      const v4s = hosts.map((h) => `${NET.lan4}.${u(h)}`);
      const v6s = hosts.map((h) => `${NET.lan6}:${u(h)}`);
      return { role: `c${i + 1}`, ns: `${p}-c${i + 1}`, v4: v4s[0]!, v6: v6s[0]!, v4s, v6s };
    });
    this.realservers = Array.from({ length: nRs + nRemote }, (_, i) => {
      const remote = i >= nRs;
      const h = 100 + i + 1;
      return {
        role: `rs${i + 1}`, ns: `${p}-rs${i + 1}`, remote,
        v4: `${remote ? NET.remote4 : NET.lan4}.${u(h)}`, v6: `${remote ? NET.remote6 : NET.lan6}:${u(h)}`,
      };
    });
    this.vips = { dr4: `${NET.lan4}.200`, dr6: `${NET.lan6}:200`, tun4: `${NET.lan4}.201`, tun6: `${NET.lan6}:201` };
  }

  /** Every namespace of the lab, the switch first. */
  get namespaces(): string[] {
    return [this.net, this.director.ns, ...(this.router ? [this.router.ns] : []), ...this.clients.map((c) => c.ns), ...this.realservers.map((r) => r.ns)];
  }

  /** Builds the lab (after removing any previous lab of the same prefix); on failure removes it. */
  static async create(spec: LabSpec): Promise<Lab> {
    const lab = new Lab(spec);
    const old = removeLab(lab.prefix);
    if (old.length) lab.log(`removed a previous lab: ${old.join(' ')}`);
    live.add(lab);
    try {
      await lab.build();
    } catch (e) {
      lab.destroy();
      throw e;
    }
    return lab;
  }

  /** Removes everything the lab made (synchronous, idempotent); not when `kept`. */
  destroy(): void {
    if (this.kept || this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    removeLab(this.prefix);
  }

  private async build(): Promise<void> {
    const t0 = Date.now();
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.dir, 'lab.json'), `${JSON.stringify({ prefix: this.prefix, pid: process.pid, namespaces: this.namespaces }, null, 2)}\n`);
    await addNamespaces(this.namespaces, this.net);
    const remote = this.realservers.some((r) => r.remote);
    await shIn(this.net, [
      'ip link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0',
      ...(remote ? ['ip link add br1 type bridge stp_state 0 forward_delay 0 mcast_snooping 0'] : []),
    ].join('\n'));
    // veth pairs: eth0 (eth1) in the host's namespace, the port named after the host in the switch.
    const twoArmed = this.spec.twoArmed === true;
    const ports: [string, string, string, string][] = [
      [this.director.ns, 'eth0', 'dir', 'br0'],
      ...(twoArmed ? [[this.director.ns, 'eth1', 'dir1', 'br1']] as [string, string, string, string][] : []),
      ...this.clients.map((c): [string, string, string, string] => [c.ns, 'eth0', c.role, 'br0']),
      ...this.realservers.map((r): [string, string, string, string] => [r.ns, 'eth0', r.role, r.remote ? 'br1' : 'br0']),
      ...(this.router ? [[this.router.ns, 'eth0', 'rt0', 'br0'], [this.router.ns, 'eth1', 'rt1', 'br1']] as [string, string, string, string][] : []),
    ];
    for (const [ns, dev, port] of ports) {
      await check('ip', ['link', 'add', dev, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', this.net]);
    }
    const floors = join(installRoot(), 'bpf', 'floors.o');
    if (!existsSync(floors)) throw new Error(`${floors} is missing: run scripts/setup.sh (make -C bpf) first`);
    await shIn(this.net, [
      ...ports.map(([, , port, br]) => `ip link set ${port} master ${br} up`),
      'ip link set br0 up',
      ...(remote ? ['ip link set br1 up'] : []),
      // XDP_TX on the director's veth is dropped unless this peer runs an XDP program.
      `ip link set dir xdpdrv obj ${floors} sec xdp program floor_pass`,
      // ... and so is XDP_REDIRECT into the director's eth1.
      ...(twoArmed ? [`ip link set dir1 xdpdrv obj ${floors} sec xdp program floor_pass`] : []),
    ].join('\n'));

    const lan = (h: Host, dev = 'eth0'): string[] => [
      `ip addr add ${h.v4}/24 dev ${dev}`,
      `ip -6 addr add ${h.v6}/64 dev ${dev} nodad`,
    ];
    const up = (dev = 'eth0'): string[] => [`ethtool -K ${dev} tx off >/dev/null`, `ip link set ${dev} up`];
    const jobs: Promise<string>[] = [];
    jobs.push(shIn(this.director.ns, [
      ...lan(this.director), ...up(),
      // The director owns the VIPs on the LAN: it answers ARP / ND for them (the realservers must not).
      ...[this.vips.dr4, this.vips.tun4].map((v) => `ip addr add ${v}/32 dev eth0`),
      ...[this.vips.dr6, this.vips.tun6].map((v) => `ip -6 addr add ${v}/128 dev eth0 nodad`),
      ...(twoArmed
        ? [`ip addr add ${NET.remote4}.2/24 dev eth1`, `ip -6 addr add ${NET.remote6}:2/64 dev eth1 nodad`, ...up('eth1')]
        : remote ? [`ip route add ${NET.remote4}.0/24 via ${this.router!.v4}`, `ip -6 route add ${NET.remote6}:/64 via ${this.router!.v6}`] : []),
    ].join('\n')));
    for (const c of this.clients) {
      jobs.push(shIn(c.ns, [
        ...c.v4s.map((a) => `ip addr add ${a}/24 dev eth0`),
        ...c.v6s.map((a) => `ip -6 addr add ${a}/64 dev eth0 nodad`),
        ...up(),
      ].join('\n')));
    }
    for (const r of this.realservers) {
      jobs.push(shIn(r.ns, [
        `ip addr add ${r.v4}/24 dev eth0`,
        `ip -6 addr add ${r.v6}/64 dev eth0 nodad`,
        ...up(),
        ...(r.remote ? [`ip route add default via ${NET.remote4}.1`, `ip -6 route add default via ${NET.remote6}:1`] : []),
      ].join('\n')));
    }
    if (this.router) {
      jobs.push(shIn(this.router.ns, [
        ...lan(this.router), ...up(),
        `ip addr add ${NET.remote4}.1/24 dev eth1`,
        `ip -6 addr add ${NET.remote6}:1/64 dev eth1 nodad`,
        ...up('eth1'),
        ...sysctl({ 'ipv4.ip_forward': 1, 'ipv6.conf.all.forwarding': 1 }),
        // Answers from a Tun realserver come from the VIP, which lives on the LAN side.
        ...sysctl({ 'ipv4.conf.all.rp_filter': 0, 'ipv4.conf.default.rp_filter': 0, 'ipv4.conf.eth0.rp_filter': 0, 'ipv4.conf.eth1.rp_filter': 0 }),
        ...sysctl({ 'ipv4.conf.all.send_redirects': 0, 'ipv4.conf.eth0.send_redirects': 0 }),
      ].join('\n')));
    }
    await Promise.all(jobs);
    this.log(`lab ${this.prefix}: ${this.namespaces.length} namespaces up in ${Date.now() - t0} ms`);
  }

  // ---- running things in the lab ----------------------------------------------------------

  /** The lvs-xdp CLI in the director's namespace (or `ns`); never throws for a non-zero exit. */
  lvs(args: readonly string[], ns = this.director.ns, input?: string): Promise<RunResult> {
    return lvsIn(ns, args, input === undefined ? {} : { input });
  }

  /** The lvs-xdp CLI; throws a CommandError unless it exits 0. Returns standard output. */
  async lvsOk(args: readonly string[], ns = this.director.ns, input?: string): Promise<string> {
    const r = await this.lvs(args, ns, input);
    if (r.code !== 0) throw new CommandError(['nsenter', `--net=${netnsPath(ns)}`, 'lvs-xdp', ...args], r);
    return r.stdout;
  }

  /** The command a person types to run `lvs-xdp ARGS` in namespace `ns` (the host's without). */
  shellCommand(ns: string | undefined, args: string): string {
    const [node, [bin]] = cliArgv([]);
    const onPath = (process.env.PATH ?? '').split(':').includes(dirname(node));
    return `${ns ? `nsenter --net=${netnsPath(ns)} ` : ''}${onPath ? 'node' : node} ${bin} ${args}`;
  }

  /**
   * Attaches lvs-xdp to the director's eth0 (native XDP by default) with the tunnel sources set
   * to the director's addresses (a settings-only configuration file applied on attach).
   */
  async attachDirector(opts: { mode?: 'native' | 'generic' | 'auto'; extra?: string[] } = {}): Promise<string> {
    const file = join(this.dir, 'settings.yaml');
    writeFileSync(file, [
      'settings:',
      `  tunnel: { source4: ${this.director.v4}, source6: "${this.director.v6}" }`,
      'services: []',
      '',
    ].join('\n'));
    return this.lvsOk(['attach', 'eth0', '--mode', opts.mode ?? 'native', '-f', file, ...(opts.extra ?? [])]);
  }

  /** `lvs-xdp realserver setup --mode MODE --vip ... --dev eth0` on realserver `rs`. */
  async setupRealserver(rs: RealserverHost, mode: 'dr' | 'tun', vips: readonly string[]): Promise<string> {
    return this.lvsOk(['realserver', 'setup', '--mode', mode, '--dev', 'eth0', ...vips.flatMap((v) => ['--vip', v])], rs.ns);
  }

  /**
   * Starts the lab server (HTTP name server + UDP echo) on every realserver, detached from this
   * process (so that a kept lab keeps serving), logging to the lab directory.
   */
  async startServers(opts: ServerOptions = {}, which: readonly RealserverHost[] = this.realservers): Promise<void> {
    const script = join(installRoot(), 'dist', 'src', 'lab', 'server.js');
    await Promise.all(which.map(async (r) => {
      const ready = join(this.dir, `${r.role}.ready`);
      rmSync(ready, { force: true });
      const logPath = join(this.dir, `${r.role}.log`);
      const fd = openSync(logPath, 'a');
      const args = [script, '--name', r.role, '--http-port', String(opts.httpPort ?? 80), '--udp-port', String(opts.udpPort ?? 9000),
        ...(opts.udpVips ?? []).flatMap((v) => ['--udp-bind', v]), '--ready', ready];
      const child = spawnIn(r.ns, process.execPath, args, { detached: true, stdio: ['ignore', fd, fd] });
      closeSync(fd);
      let exited: number | null | undefined;
      child.on('exit', (code) => { exited = code; });
      child.unref();
      await waitFor(`the server on ${r.role}`, () => {
        if (exited !== undefined) throw new Error(`server on ${r.role} exited (${exited}): ${readFileSync(logPath, 'utf8').trim()}`);
        return existsSync(ready);
      }, 20_000, 25);
    }));
  }

  /** Runs a program in a client namespace. */
  inClient(client: number, cmd: string, args: readonly string[], timeoutMs = 120_000): Promise<RunResult> {
    return runIn(this.clients[client]!.ns, cmd, args, { timeoutMs });
  }

  /**
   * `curl` from a client: `count` requests to `url` from `source`, each on its own connection;
   * returns the realserver names in order ('' for a failed request).
   */
  async curl(url: string, opts: { client?: number; source?: string; count?: number; timeoutS?: number } = {}): Promise<string[]> {
    const c = this.clients[opts.client ?? 0]!;
    const source = opts.source ?? (url.includes('[') ? c.v6 : c.v4);
    const names: string[] = [];
    const count = opts.count ?? 1;
    // One curl process for many URLs; Connection: close gives every request a new connection.
    const args = ['-sS', '--max-time', String(opts.timeoutS ?? 10), '--connect-timeout', '3', '--interface', source,
      '-H', 'Connection: close', '-w', '|%{http_code}\\n', '-o', '-'];
    for (let i = 0; i < count; i++) args.push(url);
    const r = await runIn(c.ns, 'curl', args, { timeoutMs: 60_000 + count * 1000 });
    // Each request prints its body ("rs1\n") then "|CODE\n".
    for (const m of r.stdout.matchAll(/([^|]*)\|(\d{3})\n/g)) names.push(m[2] === '200' ? m[1]!.trim() : '');
    while (names.length < count) names.push('');
    return names;
  }

  private clientScript(): string {
    return join(installRoot(), 'dist', 'src', 'lab', 'client.js');
  }

  private async runClient<T>(client: number, mode: string, spec: unknown): Promise<T> {
    const r = await this.inClient(client, process.execPath, [this.clientScript(), mode, JSON.stringify(spec)]);
    if (r.code !== 0) throw new Error(`lab client ${mode} failed (exit ${r.code}): ${r.stderr.trim()}`);
    return JSON.parse(r.stdout) as T;
  }

  /** Many HTTP requests, each on a new connection, from the client's source addresses. */
  burst(spec: BurstSpec, client = 0): Promise<BurstResult> {
    return this.runClient(client, 'burst', spec);
  }

  udp(spec: UdpSpec, client = 0): Promise<UdpResult> {
    return this.runClient(client, 'udp', spec);
  }

  /** Starts a request loop (see client.ts `loop`); `stop()` ends it and returns its record. */
  startLoop(spec: LoopSpec, client = 0): LoopHandle {
    const child = spawnIn(this.clients[client]!.ns, process.execPath, [this.clientScript(), 'loop', JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => { out += d; });
    child.stderr!.setEncoding('utf8').on('data', (d: string) => { err += d; });
    const done = new Promise<LoopResult>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code) => {
        if (code !== 0) reject(new Error(`request loop exited ${code}: ${err.trim()}`));
        else {
          try {
            resolve(JSON.parse(out) as LoopResult);
          } catch (e) {
            reject(e as Error);
          }
        }
      });
    });
    done.catch(() => undefined);
    return {
      stop: async () => {
        child.stdin!.end();
        return done;
      },
    };
  }

  /** A long download with curl (`/stream`), line by line. */
  stream(url: string, opts: { client?: number; source?: string } = {}): StreamHandle {
    const c = this.clients[opts.client ?? 0]!;
    const source = opts.source ?? (url.includes('[') ? c.v6 : c.v4);
    const child = spawnIn(c.ns, 'curl', ['-sSN', '--interface', source, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      lines.push(...parts);
    });
    child.stderr!.resume();
    const exited = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
    return { lines, exited, kill: () => child.kill('SIGKILL') };
  }

  /** Waits until `h` has at least `n` lines (or throws). */
  async waitLines(h: StreamHandle, n: number, timeoutMs = 10_000): Promise<void> {
    await waitFor(`${n} streamed lines`, () => h.lines.length >= n, timeoutMs, 20);
  }
}
