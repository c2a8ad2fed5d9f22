/**
 * The active/standby lab (README "Active/standby with keepalived (VRRP)"): two lvs-xdp directors
 * on one LAN with the client and the realservers (LVS-DR); Debian's keepalived (VRRP only, no
 * virtual_server) on each director moves the VIPs between them. Used by test/e2e/vrrp.test.ts.
 *
 *   PREFIX-c1        the client (198.51.100.21.., 2001:db8:100::21..): resolves the VIPs by ARP / ND
 *   PREFIX-d1, -d2   directors (198.51.100.2, .3): lvs-xdp attach eth0 (native XDP) + run, and
 *                    keepalived with three VRRP instances in one sync group (they move together):
 *                    vrid 51 with use_vmac (vrrp.51, 00:00:5e:00:01:33): 198.51.100.200 (mh)
 *                    vrid 52 on eth0: 198.51.100.201 (sh), .202 (rr), .203 (wrr)
 *                    vrid 53 (IPv6, VRRPv3) on eth0: 2001:db8:100::200 (mh)
 *   PREFIX-rs1..     realservers (198.51.100.101..): VIPs on lo, ARP-silent (DR); answer the client
 *                    directly (same LAN)
 *   PREFIX-net       the switch: br0
 *
 * lvs-xdp does not follow keepalived's state: both directors keep their data plane attached and
 * forwarding, and VRRP decides which one gets the VIPs' frames (ARP / ND answers and the vmac are
 * on the master only). Teardown as for Lab (removeLab kills keepalived with the rest).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { check, runIn, shIn, spawnIn, waitFor } from './exec.js';
import { DirectorsLab, eachLine, type LabClient, type LabDirector, type LabHost } from './directors.js';
import { keepalivedVrrpConfig } from '../ops/keepalived-vrrp.js';

export { streamReport, type HaStream, type StreamReport } from './directors.js';

export const VRRP_NET = { lan4: '198.51.100', lan6: '2001:db8:100:' } as const;

export type VrrpScheduler = 'mh' | 'sh' | 'rr' | 'wrr';
export interface VrrpService { name: string; vip: string; port: number; scheduler: VrrpScheduler; vrid: number; persistent?: number }
export interface VrrpInstance { name: string; vrid: number; family: 4 | 6; vmac: boolean }
export type VrrpHost = LabHost;
export interface VrrpDirector extends LabDirector {
  priority: number; keepalivedConf: string;
  keepalived?: ChildProcess;
  /** keepalived's console lines with their arrival time (ms since the epoch). */
  vrrpLog: { t: number; line: string }[];
}

export interface VrrpSpec {
  prefix: string;
  realservers?: number;
  clientAddresses?: number;
  /** VRRP advertisement interval (s; VRRPv3 allows centiseconds). */
  advertInt?: number;
  /**
   * Connection sync between the directors: both run a master and a backup daemon (IPVS's
   * protocol, multicast on eth0, syncid 51); the master sends every `interval` s and sends
   * established entries again every `refresh` s. Adds a persistent rr service (.204, 300 s).
   */
  sync?: { interval: number; refresh: number };
  log?: (line: string) => void;
}

export class VrrpLab extends DirectorsLab {
  readonly client: LabClient;
  readonly directors: VrrpDirector[];
  readonly realservers: VrrpHost[];
  readonly services: VrrpService[];
  readonly instances: VrrpInstance[];
  readonly advertInt: number;
  preempt = true;

  private constructor(readonly spec: VrrpSpec) {
    super(spec.prefix, spec.log);
    const p = spec.prefix;
    const nr = spec.realservers ?? 3;
    const na = spec.clientAddresses ?? 8;
    if (nr < 1 || nr > 50 || na < 1 || na > 40) throw new Error('1..50 realservers, 1..40 client addresses');
    this.advertInt = spec.advertInt ?? 0.2;
    const hosts = Array.from({ length: na }, (_, i) => 21 + i);
    this.client = {
      role: 'c1', ns: `${p}-c1`, v4: `${VRRP_NET.lan4}.21`, v6: `${VRRP_NET.lan6}:21`,
      v4s: hosts.map((h) => `${VRRP_NET.lan4}.${h}`), v6s: hosts.map((h) => `${VRRP_NET.lan6}:${h}`),
    };
    this.directors = [150, 100].map((priority, i) => ({
      role: `d${i + 1}`, ns: `${p}-d${i + 1}`, v4: `${VRRP_NET.lan4}.${2 + i}`, v6: `${VRRP_NET.lan6}:${2 + i}`, priority,
      file: join(this.dir, `d${i + 1}.yaml`), keepalivedConf: join(this.dir, `keepalived-d${i + 1}.conf`), listen: '127.0.0.1:9473', logs: [], vrrpLog: [],
    }));
    this.realservers = Array.from({ length: nr }, (_, i) => ({ role: `rs${i + 1}`, ns: `${p}-rs${i + 1}`, v4: `${VRRP_NET.lan4}.${101 + i}`, v6: `${VRRP_NET.lan6}:${101 + i}` }));
    this.instances = [
      { name: 'VI_VMAC', vrid: 51, family: 4, vmac: true },
      { name: 'VI_4', vrid: 52, family: 4, vmac: false },
      { name: 'VI_6', vrid: 53, family: 6, vmac: false },
    ];
    this.services = [
      { name: 'mh4-vmac', vip: `${VRRP_NET.lan4}.200`, port: 80, scheduler: 'mh', vrid: 51 },
      { name: 'sh4', vip: `${VRRP_NET.lan4}.201`, port: 80, scheduler: 'sh', vrid: 52 },
      { name: 'rr4', vip: `${VRRP_NET.lan4}.202`, port: 80, scheduler: 'rr', vrid: 52 },
      { name: 'wrr4', vip: `${VRRP_NET.lan4}.203`, port: 80, scheduler: 'wrr', vrid: 52 },
      { name: 'mh6', vip: `${VRRP_NET.lan6}:200`, port: 80, scheduler: 'mh', vrid: 53 },
      ...(spec.sync ? [{ name: 'rr4-persistent', vip: `${VRRP_NET.lan4}.204`, port: 80, scheduler: 'rr' as const, vrid: 52, persistent: 300 }] : []),
    ];
  }

  get namespaces(): string[] {
    return [this.net, this.client.ns, ...this.directors.map((d) => d.ns), ...this.realservers.map((r) => r.ns)];
  }

  static create(spec: VrrpSpec): Promise<VrrpLab> {
    return DirectorsLab.made(new VrrpLab(spec));
  }

  protected async build(): Promise<void> {
    const t0 = Date.now();
    await this.addNamespaces();
    const ports: [string, string][] = [
      [this.client.ns, 'c1'], ...this.directors.map((d): [string, string] => [d.ns, d.role]), ...this.realservers.map((r): [string, string] => [r.ns, r.role]),
    ];
    await shIn(this.net, 'ip link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0');
    for (const [ns, port] of ports) await check('ip', ['link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', port, 'netns', this.net]);
    const floors = this.floors();
    await shIn(this.net, [
      ...ports.map(([, port]) => `ip link set ${port} master br0 up`),
      'ip link set br0 up',
      // XDP_TX on a director's veth is dropped unless its peer runs an XDP program.
      ...this.directors.map((d) => `ip link set ${d.role} xdpdrv obj ${floors} sec xdp program floor_pass`),
    ].join('\n'));
    const up = ['ethtool -K eth0 tx off >/dev/null', 'ip link set eth0 up'];
    const jobs: Promise<string>[] = [];
    jobs.push(shIn(this.client.ns, [
      ...this.client.v4s.map((a) => `ip addr add ${a}/24 dev eth0`), ...this.client.v6s.map((a) => `ip -6 addr add ${a}/64 dev eth0 nodad`), ...up,
    ].join('\n')));
    for (const d of this.directors) {
      jobs.push(shIn(d.ns, [`ip addr add ${d.v4}/24 dev eth0`, `ip -6 addr add ${d.v6}/64 dev eth0 nodad`, ...up].join('\n')));
    }
    for (const r of this.realservers) {
      jobs.push(shIn(r.ns, [`ip addr add ${r.v4}/24 dev eth0`, `ip -6 addr add ${r.v6}/64 dev eth0 nodad`, ...up].join('\n')));
    }
    await Promise.all(jobs);
    await Promise.all(this.realservers.map((r) => this.lvsOk(r.ns, ['realserver', 'setup', '--mode', 'dr', '--dev', 'eth0', ...this.vips.flatMap((v) => ['--vip', v])])));
    await Promise.all(this.realservers.map((r) => this.startServer(r)));
    for (const d of this.directors) this.writeConfig(d);
    this.log(`vrrp lab ${this.prefix}: ${this.namespaces.length} namespaces up in ${Date.now() - t0} ms`);
  }

  /** The same configuration file on both directors (same tables: mh/sh flows keep their realserver). */
  configText(d: VrrpDirector): string {
    return [
      `# ${d.role} of the active/standby lab (src/lab/vrrp.ts)`,
      'settings:',
      '  hash-seed: 424242',
      ...(this.spec.sync ? [
        '  sync:',
        ...(['master', 'backup'] as const).map((role) => `    - { role: ${role}, interface: eth0, syncid: 51${role === 'master' ? `, interval: ${this.spec.sync!.interval}, refresh: ${this.spec.sync!.refresh}` : ''} }`),
      ] : []),
      'services:',
      ...this.services.flatMap((s) => [
        `  - vip: "${s.vip}"`, `    port: ${s.port}`, `    scheduler: ${s.scheduler}`, ...(s.persistent ? [`    persistence: ${s.persistent}`] : []),
        '    health-check: { type: http, path: /, via: direct, interval: 0.5, timeout: 0.5, rise: 1, fall: 3 }',
        '    realservers:',
        ...this.realservers.map((r, i) => `      - { address: "${s.vip.includes(':') ? r.v6 : r.v4}", method: dr${s.scheduler === 'wrr' ? `, weight: ${i + 1}` : ''} }`),
      ]),
      '',
    ].join('\n');
  }

  writeConfig(d: VrrpDirector): void {
    writeFileSync(d.file, this.configText(d));
  }

  keepalivedText(d: VrrpDirector, priority = d.priority): string {
    return keepalivedVrrpConfig({
      // preempt_delay: a returning director takes the VIPs back only after run (resync 1 s here)
      // accepted the vmac keepalived creates at its start; before that the vmac's frames would
      // reach the kernel, which holds the VIP without a listener and resets them.
      routerId: d.role, interface: 'eth0', priority, advertInt: this.advertInt, preempt: this.preempt, preemptDelay: 3,
      instances: this.instances.map((i) => ({ name: i.name, vrid: i.vrid, vmac: i.vmac, vips: this.services.filter((s) => s.vrid === i.vrid).map((s) => s.vip) })),
    });
  }

  async attach(d: VrrpDirector): Promise<void> {
    await this.lvsOk(d.ns, ['attach', 'eth0', '--mode', 'native', '-f', d.file]);
  }

  /** Starts `lvs-xdp run` (JSON log lines into d.logs), waits until it listens and every realserver is up. */
  override async startRun(d: VrrpDirector): Promise<ChildProcess> {
    const child = await super.startRun(d);
    await waitFor(`every realserver up on ${d.role}`, async () => {
      const r = await runIn(d.ns, 'curl', ['-sS', `http://${d.listen}/api/status`]);
      if (r.code !== 0) return false;
      const doc = JSON.parse(r.stdout) as { services?: { realservers?: { health?: string }[] }[] };
      const health = (doc.services ?? []).flatMap((s) => (s.realservers ?? []).map((x) => x.health));
      return health.length === this.services.length * this.realservers.length && health.every((h) => h === 'up');
    }, 20_000, 100);
    return child;
  }

  /** keepalived in the foreground (VRRP only), console log into d.vrrpLog; per-namespace pid files. */
  startKeepalived(d: VrrpDirector, priority = d.priority): ChildProcess {
    writeFileSync(d.keepalivedConf, this.keepalivedText(d, priority));
    const pid = join(this.dir, `keepalived-${d.role}.pid`);
    const child = spawnIn(d.ns, 'keepalived', ['-n', '-l', '-D', '-P', '-f', d.keepalivedConf, '-p', pid, '-r', `${pid}.vrrp`],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    eachLine(child, (line) => {
      d.vrrpLog.push({ t: Date.now(), line });
      this.log(`${d.role} keepalived: ${line}`);
    });
    d.keepalived = child;
    return child;
  }

  /** Stops keepalived gracefully (SIGTERM: it sends priority 0 and removes its VIPs). */
  async stopKeepalived(d: VrrpDirector): Promise<void> {
    const k = d.keepalived;
    if (!k || k.exitCode !== null || k.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => k.once('exit', () => resolve()));
    k.kill('SIGTERM');
    await gone;
    d.keepalived = undefined;
  }

  /** VIPs configured on the director now (any interface: eth0 or a vmac). */
  async vipsOn(d: VrrpDirector): Promise<string[]> {
    const r = await runIn(d.ns, 'ip', ['-j', 'addr', 'show']);
    if (r.code !== 0) return [];
    const links = JSON.parse(r.stdout) as { addr_info?: { local: string }[] }[];
    const have = new Set(links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local)));
    return this.vips.filter((v) => have.has(v));
  }

  /** Waits until `d` holds every VIP (and the other director none); returns the ms waited. */
  async masterIs(d: VrrpDirector, timeoutMs = 20_000): Promise<number> {
    const t0 = Date.now();
    const other = this.directors.find((x) => x !== d)!;
    await waitFor(`${d.role} holding every VIP`, async () => (await this.vipsOn(d)).length === this.vips.length && (await this.vipsOn(other)).length === 0, timeoutMs, 10);
    return Date.now() - t0;
  }

  /**
   * The director dies: SIGKILL of keepalived (parent and VRRP child: no priority-0 advert) and of
   * run, detach. keepalived cleans up only when it stops gracefully, so what it configured (VIPs,
   * the vmac) is removed as well: a dead host answers nothing (else its kernel, holding the VIPs
   * without lvs-xdp, would reset the flows that still reach it by stale ARP entries).
   */
  async killDirector(d: VrrpDirector): Promise<void> {
    const k = d.keepalived;
    if (k?.pid && k.exitCode === null && k.signalCode === null) {
      const gone = new Promise<void>((resolve) => k.once('exit', () => resolve()));
      process.kill(-k.pid, 'SIGKILL');
      await gone;
    }
    d.keepalived = undefined;
    await shIn(d.ns, [
      ...this.vips.map((v) => `ip addr del ${v}/${v.includes(':') ? 128 : 32} dev eth0 2>/dev/null || true`),
      ...this.instances.filter((i) => i.vmac).map((i) => `ip link del vrrp.${i.vrid} 2>/dev/null || true`),
    ].join('\n'));
    const r = d.run;
    if (r && r.exitCode === null && r.signalCode === null) {
      const gone = new Promise<void>((resolve) => r.once('exit', () => resolve()));
      r.kill('SIGKILL');
      await gone;
    }
    d.run = undefined;
    await this.lvsOk(d.ns, ['detach']);
  }

  /** A director in service: lvs-xdp attached, run with every realserver up, then keepalived. */
  async startDirector(d: VrrpDirector): Promise<void> {
    await this.attach(d);
    await this.startRun(d);
    this.startKeepalived(d);
  }

  /** The client's neighbour entry (MAC) for `vip`, or ''. */
  async clientNeighbour(vip: string): Promise<string> {
    const r = await runIn(this.client.ns, 'ip', ['-j', vip.includes(':') ? '-6' : '-4', 'neigh', 'show', vip]);
    if (r.code !== 0 || !r.stdout.trim()) return '';
    const n = JSON.parse(r.stdout) as { lladdr?: string }[];
    return n[0]?.lladdr ?? '';
  }

  stopAll(): void {
    for (const d of this.directors) {
      d.run?.kill('SIGKILL');
      if (d.keepalived?.pid) {
        try {
          process.kill(-d.keepalived.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
    }
  }

  /** keepalived's log of a director (for failures). */
  vrrpLogText(d: VrrpDirector): string {
    return d.vrrpLog.map((l) => l.line).join('\n');
  }
}
