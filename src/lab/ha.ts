/**
 * The active/active lab (README "Several directors"): N directors behind an ECMP router, each
 * running lvs-xdp (attach + `run` with settings.announce) and BIRD with the configuration
 * `lvs-xdp announce bird-config` prints; the router's BIRD learns every VIP from every director
 * over BGP and installs one multipath route per VIP (`merge paths`), hashed on L4
 * (fib_multipath_hash_policy=1). Used by `lvs-xdp demo --ha` and test/e2e/ecmp*.test.ts.
 *
 *   PREFIX-c1        clients (203.0.113.11.., 2001:db8:113::11..), default route via the router
 *   PREFIX-rt        the router: eth1 on the clients' LAN (.1), eth0 on the front LAN (.1)
 *   PREFIX-d1..dN    directors on the front LAN (198.51.100.2..), lvs-xdp on eth0 (native XDP)
 *   PREFIX-rs1..     realservers on the front LAN (198.51.100.101..): VIPs on lo (DR or Tun),
 *                    answers straight to the router (their default route)
 *   PREFIX-net       the switch: br0 (front LAN) and br1 (clients' LAN)
 *
 * The VIPs (192.0.2.0/24, 2001:db8:200::/64) are on no LAN: the router reaches them only through
 * the routes the directors announce. Teardown as for Lab (removeLab: processes, namespaces,
 * lvs-xdp state of the namespaces, the lab directory), also on signals.
 */
import { existsSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { check, checkIn, cliArgv, lvsIn, run, runIn, shIn, spawnIn, waitFor, type RunResult } from './exec.js';
import { DirectorsLab, type LabClient, type LabDirector, type LabHost } from './directors.js';

export { streamReport, type HaStream, type StreamReport } from './directors.js';

export const HA_NET = {
  front4: '198.51.100', front6: '2001:db8:100:', clients4: '203.0.113', clients6: '2001:db8:113:', vip4: '192.0.2', vip6: '2001:db8:200:',
} as const;
export const ROUTER_AS = 65000;
export const DIRECTOR_AS = 65001;

export interface HaSpec {
  prefix: string;
  directors?: number;
  realservers?: number;
  /** Client source addresses per family (default 8). */
  clientAddresses?: number;
  method?: 'dr' | 'tun';
  /** BGP hold / keepalive (s) and BFD (ms interval, 3 missed = down) between router and directors. */
  holdTime?: number;
  keepaliveTime?: number;
  bfdMs?: number;
  log?: (line: string) => void;
}

/** Connection sync between the directors (each a master and a backup, multicast on eth0, syncid 52). */
export interface HaSync { interval: number; refresh: number }

export type HaHost = LabHost;
export interface HaDirector extends LabDirector { index: number; birdSock: string; bird?: ChildProcess }
export interface HaService { name: string; vip: string; port: number; scheduler: 'mh' | 'sh' }

export class HaLab extends DirectorsLab {
  readonly router: HaHost;
  readonly client: LabClient;
  readonly directors: HaDirector[];
  readonly realservers: HaHost[];
  readonly services: HaService[];
  readonly method: 'dr' | 'tun';
  /** Realservers in the directors' configuration (the rest are spares for "a realserver is added"). */
  configured: number;
  /** settings.sync in the directors' files (written at the next writeConfig / reload)... */
  sync?: HaSync;
  /** ...of these directors only (default: all); the others start theirs with ipvsadm's --start-daemon. */
  syncInFile?: (d: HaDirector) => boolean;
  private readonly birds: ChildProcess[] = [];
  private routerSock = '';

  private constructor(readonly spec: HaSpec) {
    super(spec.prefix, spec.log);
    const p = spec.prefix;
    const nd = spec.directors ?? 3;
    const nr = spec.realservers ?? 3;
    const na = spec.clientAddresses ?? 8;
    if (nd < 1 || nd > 9 || nr < 1 || nr > 50 || na < 1 || na > 40) throw new Error('1..9 directors, 1..50 realservers, 1..40 client addresses');
    this.method = spec.method ?? 'dr';
    this.router = { role: 'rt', ns: `${p}-rt`, v4: `${HA_NET.front4}.1`, v6: `${HA_NET.front6}:1` };
    const hosts = Array.from({ length: na }, (_, i) => 11 + i);
    this.client = {
      role: 'c1', ns: `${p}-c1`, v4: `${HA_NET.clients4}.11`, v6: `${HA_NET.clients6}:11`,
      v4s: hosts.map((h) => `${HA_NET.clients4}.${h}`), v6s: hosts.map((h) => `${HA_NET.clients6}:${h}`),
    };
    this.directors = Array.from({ length: nd }, (_, i) => ({
      role: `d${i + 1}`, ns: `${p}-d${i + 1}`, index: i, v4: `${HA_NET.front4}.${2 + i}`, v6: `${HA_NET.front6}:${2 + i}`,
      birdSock: join(this.dir, `bird-d${i + 1}.sock`), file: join(this.dir, `d${i + 1}.yaml`), listen: '127.0.0.1:9473', logs: [],
    }));
    this.realservers = Array.from({ length: nr }, (_, i) => ({ role: `rs${i + 1}`, ns: `${p}-rs${i + 1}`, v4: `${HA_NET.front4}.${101 + i}`, v6: `${HA_NET.front6}:${101 + i}` }));
    this.configured = nr;
    this.services = [
      { name: 'mh4', vip: `${HA_NET.vip4}.10`, port: 80, scheduler: 'mh' },
      { name: 'sh4', vip: `${HA_NET.vip4}.11`, port: 80, scheduler: 'sh' },
      { name: 'mh6', vip: `${HA_NET.vip6}:10`, port: 80, scheduler: 'mh' },
    ];
  }

  get namespaces(): string[] {
    return [this.net, this.router.ns, this.client.ns, ...this.directors.map((d) => d.ns), ...this.realservers.map((r) => r.ns)];
  }

  static create(spec: HaSpec): Promise<HaLab> {
    return DirectorsLab.made(new HaLab(spec));
  }

  protected async build(): Promise<void> {
    const t0 = Date.now();
    await this.addNamespaces();
    const sys = (k: string, v: number): string => `echo ${v} > /proc/sys/net/${k.replace(/\./g, '/')}`;
    const ports: [string, string, string, string][] = [
      [this.router.ns, 'eth0', 'rt0', 'br0'], [this.router.ns, 'eth1', 'rt1', 'br1'], [this.client.ns, 'eth0', 'c1', 'br1'],
      ...this.directors.map((d): [string, string, string, string] => [d.ns, 'eth0', d.role, 'br0']),
      ...this.realservers.map((r): [string, string, string, string] => [r.ns, 'eth0', r.role, 'br0']),
    ];
    await shIn(this.net, ['br0', 'br1'].map((b) => `ip link add ${b} type bridge stp_state 0 forward_delay 0 mcast_snooping 0`).join('\n'));
    for (const [ns, dev, port] of ports) await check('ip', ['link', 'add', dev, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', this.net]);
    const floors = this.floors();
    await shIn(this.net, [
      ...ports.map(([, , port, br]) => `ip link set ${port} master ${br} up`),
      'ip link set br0 up', 'ip link set br1 up',
      // XDP_TX on a director's veth is dropped unless its peer runs an XDP program.
      ...this.directors.map((d) => `ip link set ${d.role} xdpdrv obj ${floors} sec xdp program floor_pass`),
    ].join('\n'));
    const up = (dev = 'eth0'): string[] => [`ethtool -K ${dev} tx off >/dev/null`, `ip link set ${dev} up`];
    const jobs: Promise<string>[] = [];
    jobs.push(shIn(this.router.ns, [
      `ip addr add ${this.router.v4}/24 dev eth0`, `ip -6 addr add ${this.router.v6}/64 dev eth0 nodad`, ...up(),
      `ip addr add ${HA_NET.clients4}.1/24 dev eth1`, `ip -6 addr add ${HA_NET.clients6}:1/64 dev eth1 nodad`, ...up('eth1'),
      sys('ipv4.ip_forward', 1), sys('ipv6.conf.all.forwarding', 1),
      // ECMP on the 5-tuple: a client's connections spread over the directors.
      sys('ipv4.fib_multipath_hash_policy', 1), sys('ipv6.fib_multipath_hash_policy', 1),
      sys('ipv4.conf.all.rp_filter', 0), sys('ipv4.conf.default.rp_filter', 0), sys('ipv4.conf.eth0.rp_filter', 0),
      sys('ipv4.conf.all.send_redirects', 0), sys('ipv4.conf.eth0.send_redirects', 0),
    ].join('\n')));
    jobs.push(shIn(this.client.ns, [
      ...this.client.v4s.map((a) => `ip addr add ${a}/24 dev eth0`), ...this.client.v6s.map((a) => `ip -6 addr add ${a}/64 dev eth0 nodad`), ...up(),
      `ip route add default via ${HA_NET.clients4}.1`, `ip -6 route add default via ${HA_NET.clients6}:1`,
    ].join('\n')));
    for (const d of this.directors) {
      jobs.push(shIn(d.ns, [`ip addr add ${d.v4}/24 dev eth0`, `ip -6 addr add ${d.v6}/64 dev eth0 nodad`, ...up()].join('\n')));
    }
    for (const r of this.realservers) {
      jobs.push(shIn(r.ns, [
        `ip addr add ${r.v4}/24 dev eth0`, `ip -6 addr add ${r.v6}/64 dev eth0 nodad`, ...up(),
        `ip route add default via ${this.router.v4}`, `ip -6 route add default via ${this.router.v6}`,
      ].join('\n')));
    }
    await Promise.all(jobs);
    await Promise.all(this.realservers.map((r) => this.lvsOk(r.ns, ['realserver', 'setup', '--mode', this.method, '--dev', 'eth0', ...this.vips.flatMap((v) => ['--vip', v])])));
    await Promise.all(this.realservers.map((r) => this.startServer(r)));
    await this.startRouterBird();
    this.log(`ha lab ${this.prefix}: ${this.namespaces.length} namespaces up in ${Date.now() - t0} ms`);
  }

  private bgpTimers(): string {
    return `hold time ${this.spec.holdTime ?? 3}; keepalive time ${this.spec.keepaliveTime ?? 1}; connect retry time 1;`;
  }

  private async startRouterBird(): Promise<void> {
    this.routerSock = join(this.dir, 'bird-rt.sock');
    const conf = join(this.dir, 'bird-rt.conf');
    const bfd = this.spec.bfdMs;
    const lines = [
      `router id ${this.router.v4};`,
      'protocol device { scan time 10; }',
      // One multipath route per VIP, over every director that announces it.
      'protocol kernel { ipv4 { import none; export all; }; merge paths on; }',
      'protocol kernel { ipv6 { import none; export all; }; merge paths on; }',
      ...(bfd ? [`protocol bfd { interface "*" { min rx interval ${bfd} ms; min tx interval ${bfd} ms; multiplier 3; }; }`] : []),
    ];
    for (const d of this.directors) {
      for (const f of [4, 6] as const) {
        lines.push(`protocol bgp ${d.role}v${f} {`, `  local ${f === 4 ? this.router.v4 : this.router.v6} as ${ROUTER_AS}; neighbor ${f === 4 ? d.v4 : d.v6} as ${DIRECTOR_AS};`,
          `  ${this.bgpTimers()}${bfd ? ' bfd on;' : ''} error wait time 1, 5;`, `  ipv${f} { import all; export none; };`, '}');
      }
    }
    writeFileSync(conf, `${lines.join('\n')}\n`);
    this.birds.push(spawnIn(this.router.ns, 'bird', ['-f', '-c', conf, '-s', this.routerSock, '-P', `${this.routerSock}.pid`], { stdio: 'ignore' }));
    await waitFor('the router\'s BIRD', () => existsSync(this.routerSock), 10_000, 20);
  }

  lvs(d: HaDirector, args: readonly string[]): Promise<RunResult> {
    return lvsIn(d.ns, args);
  }

  /** The directors' configuration file (the same on every director but for the tunnel source). */
  configText(d: HaDirector, realservers = this.configured): string {
    const rs = this.realservers.slice(0, realservers);
    return [
      `# ${d.role} of the active/active lab (src/lab/ha.ts)`,
      'settings:',
      '  hash-seed: 424242',
      `  tunnel: { source4: ${d.v4}, source6: "${d.v6}" }`,
      `  announce: { table: 201, bird-socket: ${d.birdSock} }`,
      ...(this.sync && (this.syncInFile?.(d) ?? true) ? [
        '  sync:',
        `    - { role: master, interface: eth0, syncid: 52, interval: ${this.sync.interval}, refresh: ${this.sync.refresh} }`,
        '    - { role: backup, interface: eth0, syncid: 52 }',
      ] : []),
      'services:',
      ...this.services.flatMap((s) => [
        `  - vip: "${s.vip}"`, `    port: ${s.port}`, `    scheduler: ${s.scheduler}`,
        '    health-check: { type: http, path: /, via: direct, interval: 1, timeout: 0.9, rise: 1, fall: 3 }',
        '    realservers:',
        ...rs.map((r) => `      - { address: "${s.vip.includes(':') ? r.v6 : r.v4}", method: ${this.method} }`),
      ]),
      '',
    ].join('\n');
  }

  writeConfig(d: HaDirector, realservers = this.configured): void {
    writeFileSync(d.file, this.configText(d, realservers));
  }

  /** The director's BIRD, with the configuration lvs-xdp generates. */
  async startBird(d: HaDirector): Promise<void> {
    const conf = join(this.dir, `bird-${d.role}.conf`);
    const [node, argv] = cliArgv(['announce', 'bird-config', '--router-id', d.v4, '--asn', String(DIRECTOR_AS), '--neighbor', this.router.v4, '--neighbor', this.router.v6,
      '--neighbor-as', String(ROUTER_AS), '--hold-time', String(this.spec.holdTime ?? 3), '--keepalive-time', String(this.spec.keepaliveTime ?? 1),
      ...(this.spec.bfdMs ? ['--bfd', String(this.spec.bfdMs)] : []), '--error-wait', '1,5']);
    const r = await run(node, argv);
    if (r.code !== 0) throw new Error(`announce bird-config: ${r.stderr}`);
    writeFileSync(conf, r.stdout);
    rmSync(d.birdSock, { force: true });
    d.bird = spawnIn(d.ns, 'bird', ['-f', '-c', conf, '-s', d.birdSock, '-P', `${d.birdSock}.pid`], { stdio: 'ignore' });
    this.birds.push(d.bird);
    await waitFor(`BIRD of ${d.role}`, () => existsSync(d.birdSock), 10_000, 20);
  }

  /** Attaches lvs-xdp (native XDP) with the configuration file. */
  async attach(d: HaDirector): Promise<void> {
    if (!existsSync(d.file)) this.writeConfig(d);
    await this.lvsOk(d.ns, ['attach', 'eth0', '--mode', 'native', '-f', d.file]);
  }

  /** Rewrites the director's file with `realservers` configured and reloads its run (SIGHUP). */
  async reload(d: HaDirector, realservers = this.configured): Promise<void> {
    this.writeConfig(d, realservers);
    const mark = d.logs.length;
    d.run!.kill('SIGHUP');
    const l = await waitFor(`reload of ${d.role}`, () => d.logs.slice(mark).find((x) => x.event === 'reloaded' || x.event === 'reload-failed'), 30_000, 20);
    if (l.event !== 'reloaded') throw new Error(`reload of ${d.role} failed: ${JSON.stringify(l)}`);
  }

  /** A director in service: BIRD, lvs-xdp attached, run. */
  async startDirector(d: HaDirector): Promise<void> {
    this.writeConfig(d);
    if (!d.bird || d.bird.exitCode !== null) await this.startBird(d);
    await this.attach(d);
    await this.startRun(d);
  }

  /** SIGKILL of run (its guard withdraws the VIPs), then detach: the director is dead. */
  async killDirector(d: HaDirector): Promise<void> {
    const r = d.run;
    if (r && r.exitCode === null && r.signalCode === null) {
      const gone = new Promise<void>((resolve) => r.once('exit', () => resolve()));
      r.kill('SIGKILL');
      await gone;
    }
    d.run = undefined;
    await this.lvsOk(d.ns, ['detach']);
  }

  /** Cuts (or restores) the director's cable: its port on the switch. */
  async cable(d: HaDirector, on: boolean): Promise<void> {
    await checkIn(this.net, 'ip', ['link', 'set', d.role, on ? 'up' : 'down']);
  }

  /** Next hops (director addresses) of the router's route to `vip` in the kernel. */
  async routerPaths(vip: string): Promise<string[]> {
    const r = await runIn(this.router.ns, 'ip', [vip.includes(':') ? '-6' : '-4', '-j', 'route', 'show', vip]);
    if (r.code !== 0 || !r.stdout.trim()) return [];
    const routes = JSON.parse(r.stdout) as { gateway?: string; nexthops?: { gateway: string }[] }[];
    return routes.flatMap((x) => (x.nexthops ? x.nexthops.map((n) => n.gateway) : x.gateway ? [x.gateway] : [])).sort();
  }

  /** Waits until every VIP's route at the router goes through exactly `directors`; returns the ms. */
  async routerUntil(directors: readonly HaDirector[], timeoutMs = 30_000): Promise<number> {
    const t0 = Date.now();
    await waitFor(`the router's routes via ${directors.map((d) => d.role).join(',') || 'nobody'}`, async () => {
      for (const s of this.services) {
        const want = directors.map((d) => (s.vip.includes(':') ? d.v6 : d.v4)).sort();
        if ((await this.routerPaths(s.vip)).join(' ') !== want.join(' ')) return false;
      }
      return true;
    }, timeoutMs, 10);
    return Date.now() - t0;
  }

  /** BGP sessions of the router (`birdc show protocols`): name -> state. */
  async routerSessions(): Promise<Record<string, string>> {
    const r = await run('birdc', ['-s', this.routerSock, 'show', 'protocols']);
    const out: Record<string, string> = {};
    for (const m of r.stdout.matchAll(/^(d\d+v[46])\s+BGP\s+\S+\s+(\S+)\s+\S+\s*(\S*)/gm)) out[m[1]!] = m[3] || m[2]!;
    return out;
  }

  stopAll(): void {
    for (const d of this.directors) d.run?.kill('SIGKILL');
    for (const b of this.birds) b.kill('SIGKILL');
  }

  /** Adds spare realserver `n` (1-based count of configured ones grows to n). */
  get spare(): HaHost | undefined {
    return this.realservers[this.configured];
  }
}

