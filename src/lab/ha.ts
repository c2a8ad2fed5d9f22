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
import { existsSync, mkdirSync, writeFileSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { check, checkIn, cliArgv, installRoot, lvsIn, run, runIn, shIn, spawnIn, waitFor, CommandError, type RunResult } from './exec.js';
import { removeLab } from './namespaces.js';
import { trackLab, untrackLab, type StreamHandle } from './lab.js';
import { LAB_RUN_DIR, NAME_RE } from './paths.js';

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

export interface HaHost { role: string; ns: string; v4: string; v6: string }
export interface HaDirector extends HaHost { index: number; birdSock: string; file: string; listen: string; run?: ChildProcess; bird?: ChildProcess; logs: Record<string, unknown>[] }
export interface HaService { name: string; vip: string; port: number; scheduler: 'mh' | 'sh' }
/** A long download; `times` has each line's arrival (ms since the epoch). */
export interface HaStream extends StreamHandle { vip: string; source: string; times: number[]; code?: number }

export class HaLab {
  readonly prefix: string;
  readonly dir: string;
  readonly net: string;
  readonly router: HaHost;
  readonly client: HaHost & { v4s: string[]; v6s: string[] };
  readonly directors: HaDirector[];
  readonly realservers: HaHost[];
  readonly services: HaService[];
  readonly method: 'dr' | 'tun';
  /** Realservers in the directors' configuration (the rest are spares for "a realserver is added"). */
  configured: number;
  private readonly log: (line: string) => void;
  private readonly birds: ChildProcess[] = [];
  private routerSock = '';
  private destroyed = false;
  kept = false;

  private constructor(readonly spec: HaSpec) {
    const p = spec.prefix;
    if (!NAME_RE.test(p)) throw new Error(`bad lab prefix ${JSON.stringify(p)}`);
    const nd = spec.directors ?? 3;
    const nr = spec.realservers ?? 3;
    const na = spec.clientAddresses ?? 8;
    if (nd < 1 || nd > 9 || nr < 1 || nr > 50 || na < 1 || na > 40) throw new Error('1..9 directors, 1..50 realservers, 1..40 client addresses');
    this.prefix = p;
    this.dir = join(LAB_RUN_DIR, p);
    this.net = `${p}-net`;
    this.method = spec.method ?? 'dr';
    this.log = spec.log ?? (() => undefined);
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

  get vips(): string[] {
    return this.services.map((s) => s.vip);
  }

  static async create(spec: HaSpec): Promise<HaLab> {
    const lab = new HaLab(spec);
    removeLab(lab.prefix);
    trackLab(lab);
    try {
      await lab.build();
    } catch (e) {
      lab.destroy();
      throw e;
    }
    return lab;
  }

  destroy(): void {
    if (this.kept || this.destroyed) return;
    this.destroyed = true;
    untrackLab(this);
    removeLab(this.prefix);
  }

  private async build(): Promise<void> {
    const t0 = Date.now();
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeFileSync(join(this.dir, 'lab.json'), `${JSON.stringify({ prefix: this.prefix, pid: process.pid, namespaces: this.namespaces }, null, 2)}\n`);
    for (const ns of this.namespaces) await check('ip', ['netns', 'add', ns]);
    const sys = (k: string, v: number): string => `echo ${v} > /proc/sys/net/${k.replace(/\./g, '/')}`;
    await Promise.all(this.namespaces.map((ns) => shIn(ns, [
      sys('ipv6.conf.all.accept_dad', 0), sys('ipv6.conf.default.accept_dad', 0), sys('ipv6.conf.default.accept_ra', 0),
      sys('ipv6.conf.default.router_solicitations', 0),
      ...(ns === this.net ? [sys('ipv6.conf.all.disable_ipv6', 1), sys('ipv6.conf.default.disable_ipv6', 1)] : []),
      'ip link set lo up',
    ].join('\n'))));
    const ports: [string, string, string, string][] = [
      [this.router.ns, 'eth0', 'rt0', 'br0'], [this.router.ns, 'eth1', 'rt1', 'br1'], [this.client.ns, 'eth0', 'c1', 'br1'],
      ...this.directors.map((d): [string, string, string, string] => [d.ns, 'eth0', d.role, 'br0']),
      ...this.realservers.map((r): [string, string, string, string] => [r.ns, 'eth0', r.role, 'br0']),
    ];
    await shIn(this.net, ['br0', 'br1'].map((b) => `ip link add ${b} type bridge stp_state 0 forward_delay 0 mcast_snooping 0`).join('\n'));
    for (const [ns, dev, port] of ports) await check('ip', ['link', 'add', dev, 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', this.net]);
    const floors = join(installRoot(), 'bpf', 'floors.o');
    if (!existsSync(floors)) throw new Error(`${floors} is missing: run scripts/setup.sh first`);
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

  /** The lab server (HTTP names itself, /stream) on a realserver, detached, logging to the lab dir. */
  private async startServer(r: HaHost): Promise<void> {
    const ready = join(this.dir, `${r.role}.ready`);
    rmSync(ready, { force: true });
    const logPath = join(this.dir, `${r.role}.log`);
    const fd = openSync(logPath, 'a');
    const child = spawnIn(r.ns, process.execPath, [join(installRoot(), 'dist', 'src', 'lab', 'server.js'), '--name', r.role, '--http-port', '80', '--ready', ready],
      { detached: true, stdio: ['ignore', fd, fd] });
    closeSync(fd);
    child.unref();
    await waitFor(`the server on ${r.role}`, () => existsSync(ready), 20_000, 25);
  }

  async lvsOk(ns: string, args: readonly string[]): Promise<string> {
    const r = await lvsIn(ns, args);
    if (r.code !== 0) throw new CommandError(['nsenter', `--net=/run/netns/${ns}`, 'lvs-xdp', ...args], r);
    return r.stdout;
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

  /** Starts `lvs-xdp run` (JSON log lines into d.logs) and waits until it listens. */
  async startRun(d: HaDirector, extra: readonly string[] = []): Promise<ChildProcess> {
    const [node, argv] = cliArgv(['run', '-f', d.file, '--log-format', 'json', '--resync', '1', '--listen', d.listen, ...extra]);
    const child = spawnIn(d.ns, node, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    const mark = d.logs.length;
    let buf = '';
    let err = '';
    const onData = (t: string): void => {
      buf += t;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const l of parts) {
        try {
          d.logs.push(JSON.parse(l) as Record<string, unknown>);
        } catch {
          err += `${l}\n`;
        }
      }
    };
    child.stdout!.setEncoding('utf8').on('data', onData);
    child.stderr!.setEncoding('utf8').on('data', onData);
    child.on('exit', (code, signal) => d.logs.push({ event: 'exited', code, signal }));
    d.run = child;
    const l = await waitFor(`run on ${d.role}`, () => d.logs.slice(mark).find((x) => x.event === 'listening' || x.event === 'exited'), 30_000, 20);
    if (l.event !== 'listening') throw new Error(`run on ${d.role} exited: ${err}`);
    return child;
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

  /** A long download (`/stream`) from the client through `vip`, line by line. */
  stream(vip: string, source: string, seconds = 120, ms = 50): HaStream {
    const url = `http://${vip.includes(':') ? `[${vip}]` : vip}/stream?seconds=${seconds}&ms=${ms}`;
    const child = spawnIn(this.client.ns, 'curl', ['-sSN', '--interface', source, url], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    const times: number[] = [];
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      const parts = buf.split('\n');
      buf = parts.pop()!;
      const now = Date.now();
      for (const p of parts) {
        lines.push(p);
        times.push(now);
      }
    });
    child.stderr!.resume();
    const h: HaStream = { vip, source, lines, times, exited: Promise.resolve(0), kill: () => child.kill('SIGKILL') };
    h.exited = new Promise<number>((resolve) => child.on('close', (code) => {
      h.code = code ?? -1;
      resolve(h.code);
    }));
    return h;
  }

  /** One request per source address to `vip`: the realserver names (or '' for a failure). */
  async names(vip: string, sources: readonly string[]): Promise<string[]> {
    return Promise.all(sources.map(async (s) => {
      const r = await runIn(this.client.ns, 'curl', ['-sS', '--max-time', '5', '--interface', s, `http://${vip.includes(':') ? `[${vip}]` : vip}/`]);
      return r.code === 0 ? r.stdout.trim() : '';
    }));
  }

  /** Packets the director's data plane forwarded so far (all services). */
  async forwarded(d: HaDirector): Promise<number> {
    const r = await this.lvs(d, ['stats', '--interval', '0', '--json']);
    if (r.code !== 0) return 0;
    const v = JSON.parse(r.stdout) as { counters: Record<string, { value: number | string }> };
    let n = 0;
    for (const [k, c] of Object.entries(v.counters)) if (/^fwd_(dr|tun)$/i.test(k)) n += Number(c.value);
    return n;
  }

  stopAll(): void {
    for (const d of this.directors) d.run?.kill('SIGKILL');
    for (const b of this.birds) b.kill('SIGKILL');
  }

  /** Log text of a realserver's server (for failures). */
  serverLog(r: HaHost): string {
    try {
      return readFileSync(join(this.dir, `${r.role}.log`), 'utf8');
    } catch {
      return '';
    }
  }

  /** Adds spare realserver `n` (1-based count of configured ones grows to n). */
  get spare(): HaHost | undefined {
    return this.realservers[this.configured];
  }
}

export interface StreamReport {
  streams: number;
  /** Ended early: curl exited (56: reset by a realserver that did not know the flow; 28: timeout). */
  broken: { vip: string; source: string; code: number }[];
  resets: number;
  timeouts: number;
  /** Lines from more than one realserver on one connection (cannot happen on one TCP connection; checked anyway). */
  changed: number;
  /** Still running but no line for `stallMs` at `at`. */
  stalled: number;
  /** The longest pause between two lines after `since` (the interruption a client saw). */
  maxGapMs: number;
}

/** Pure: what the long-lived connections went through since `since` (ms), judged at `at`. */
export function streamReport(streams: readonly HaStream[], since: number, at: number, stallMs = 3000): StreamReport {
  const r: StreamReport = { streams: streams.length, broken: [], resets: 0, timeouts: 0, changed: 0, stalled: 0, maxGapMs: 0 };
  for (const s of streams) {
    if (s.code !== undefined) {
      r.broken.push({ vip: s.vip, source: s.source, code: s.code });
      if (s.code === 56) r.resets++;
      if (s.code === 28) r.timeouts++;
    }
    if (new Set(s.lines.map((l) => l.split(' ')[0])).size > 1) r.changed++;
    const last = s.times[s.times.length - 1] ?? 0;
    if (s.code === undefined && at - last > stallMs) r.stalled++;
    let prev = s.times.filter((t) => t <= since).pop();
    for (const t of s.times) {
      if (t <= since) continue;
      if (prev !== undefined) r.maxGapMs = Math.max(r.maxGapMs, t - prev);
      prev = t;
    }
  }
  return r;
}
