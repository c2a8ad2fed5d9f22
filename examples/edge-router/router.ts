/**
 * edge-router: a small router control daemon that embeds lvs-xdp through its published API.
 *
 *   node router.js router.json
 *
 * - attaches lvs-xdp on the uplink and publishes the configured services there: a packet to a
 *   VIP:port is scheduled to a backend and sent out of the interface that backend is reached
 *   through (LVS-DR; another interface than the uplink means XDP_REDIRECT, chosen by lvs-xdp from
 *   the kernel's route to the backend);
 * - leaves everything else (non-VIP traffic, the backends' answers) to the kernel's routing;
 * - watches the uplink and the backends' interfaces: a link that goes down is reported, one that
 *   comes back has its backends' next hops resolved again, and an uplink that was deleted and
 *   created again (a new ifindex, lvs-xdp's XDP link gone with the old device) is attached again
 *   with the running configuration kept;
 * - exports the counters it cares about: GET /counters (JSON) on `http`, and a log line per
 *   event (one JSON object per line on stdout) or every `logEverySeconds`.
 * SIGTERM / SIGINT stop it (detaching lvs-xdp unless `detachOnExit` is false).
 */
import { createServer, type Server } from 'node:http';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { COUNTERS, Director, LvsError, type ApplyResult, type DirectorConfig, type StatsSample } from 'lvs-xdp';
import { readRouterConfig, directorConfig, type RouterConfig } from './config.js';

const json = (v: unknown): string => JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
const log = (event: string, fields: Record<string, unknown> = {}): void => {
  process.stdout.write(`${json({ t: new Date().toISOString(), event, ...fields })}\n`);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const run = promisify(execFile);

type LinkState = 'up' | 'down' | 'gone';
interface Link { state: LinkState; ifindex?: number }

/**
 * Every link of this network namespace as the kernel shows it now. `ip -j link` and not sysfs:
 * a process entered into a namespace with nsenter still sees the sysfs of the one it came from.
 */
async function readLinks(): Promise<Map<string, Link>> {
  const { stdout } = await run('ip', ['-j', 'link', 'show']);
  const out = new Map<string, Link>();
  for (const l of JSON.parse(stdout) as { ifname: string; ifindex: number; operstate: string; flags: string[] }[]) {
    // Drivers without carrier reporting (dummy, some tunnels) say UNKNOWN while they work.
    const up = l.operstate === 'UP' || (l.operstate === 'UNKNOWN' && l.flags.includes('UP') && l.flags.includes('LOWER_UP'));
    out.set(l.ifname, { state: up ? 'up' : 'down', ifindex: l.ifindex });
  }
  return out;
}

/** The data plane's drop reasons, by name (lvs-xdp's counter glossary). */
const DROP_REASONS = new Set(COUNTERS.filter((c) => c.kind === 'drop').map((c) => c.name));

/** The counters this router cares about, from one lvs-xdp sample. */
function counters(s: StatsSample) {
  const c = s.counters;
  const drops = Object.entries(c).filter(([k, v]) => DROP_REASONS.has(k) && v > 0n);
  return {
    forwarded: { dr: c['fwd_dr'] ?? 0n, redirected: c['fwd_redirect'] ?? 0n },
    passedToKernel: { notVip: c['pass_not_vip'] ?? 0n, notIp: c['pass_not_ip'] ?? 0n },
    dropped: Object.fromEntries(drops),
    connections: s.connections,
    services: s.services.map((v) => ({
      id: v.id, conns: v.conns, packets: v.packets, bytes: v.bytes,
      backends: v.realservers.map((r) => ({ address: r.address, conns: r.conns, packets: r.packets, active: r.active })),
    })),
  };
}

class EdgeRouter {
  private director!: Director;
  private readonly desired: DirectorConfig;
  private readonly links = new Map<string, Link>();
  private readonly events = { linkChanges: 0, reattaches: 0, refreshes: 0 };
  private server?: Server;
  private stopping = false;
  private loop?: Promise<void>;

  constructor(private readonly cfg: RouterConfig) {
    this.desired = directorConfig(cfg);
  }

  async start(): Promise<void> {
    const { uplink } = this.cfg;
    // A restarted daemon (detachOnExit false) finds lvs-xdp still forwarding: it takes it over.
    // A first start attaches and applies all or nothing: a configuration that cannot be applied
    // (a backend on no connected network) leaves the uplink as it was.
    let r: ApplyResult;
    if (Director.exists()) {
      this.director = Director.open();
      if (!this.director.linkStatus().some((i) => i.name === uplink && i.linked)) await this.attach();
      r = await this.director.apply(this.desired);
    } else {
      ({ director: this.director, result: r } = await Director.attachWith(uplink, () => this.desired, { mode: this.cfg.xdpMode }));
    }
    const links = await readLinks();
    for (const name of this.watched(links)) this.links.set(name, links.get(name) ?? { state: 'gone' });
    if (this.cfg.http) this.server = await this.listen(this.cfg.http.host, this.cfg.http.port);
    const addr = this.server?.address();
    log('ready', {
      uplink, mode: this.director.linkStatus().find((i) => i.name === uplink)?.mode, applied: r.applied,
      services: this.desired.services.length, unresolved: r.unresolved ?? {}, watching: [...this.links.keys()],
      ...(addr && typeof addr === 'object' ? { http: `${addr.address}:${addr.port}` } : {}),
    });
  }

  private async attach(): Promise<void> {
    this.director?.close();
    this.director = await Director.attach(this.cfg.uplink, { mode: this.cfg.xdpMode });
  }

  /** The uplink and every interface a backend is reached through (lvs-xdp's resolved next hops). */
  private watched(links: ReadonlyMap<string, Link>): string[] {
    const byIndex = new Map([...links].map(([name, l]) => [l.ifindex, name]));
    const names = new Set([this.cfg.uplink]);
    for (const s of this.desired.services) {
      for (const r of s.realservers) {
        const hop = this.director.nextHop(s, r);
        const name = hop?.ifindex ? byIndex.get(hop.ifindex) : undefined;
        if (name) names.add(name);
      }
    }
    for (const name of this.links.keys()) names.add(name);
    return [...names];
  }

  /** One pass over the watched links; reacts to what changed since the last one. */
  private async poll(): Promise<void> {
    const links = await readLinks();
    for (const [name, before] of this.links) {
      const now = links.get(name) ?? { state: 'gone' as const };
      if (now.state === before.state && now.ifindex === before.ifindex) continue;
      this.links.set(name, now);
      this.events.linkChanges++;
      log('link', { name, state: now.state, ifindex: now.ifindex, was: before.state, ...(now.ifindex !== before.ifindex ? { wasIfindex: before.ifindex } : {}) });
      if (now.state !== 'up') continue;
      if (name === this.cfg.uplink) {
        // The XDP link dies with a deleted device: attach again (lvs-xdp keeps the configuration).
        if (!this.director.linkStatus().some((i) => i.name === name && i.linked)) {
          await this.attach();
          this.events.reattaches++;
          log('reattached', { name, ifindex: now.ifindex, mode: this.director.linkStatus().find((i) => i.name === name)?.mode });
        }
      } else {
        // A backend link back (maybe a new device): resolve the backends' next hops again.
        const r = await this.director.apply(this.desired, { refresh: true });
        this.events.refreshes++;
        log('refreshed', { name, applied: r.applied, unresolved: r.unresolved ?? {} });
      }
    }
    // Backends that did not answer ARP when their link came back: asked again on every pass.
    if (this.director.unresolved.length) {
      const resolved = await this.director.resolvePending();
      if (resolved.length) log('resolved', { backends: resolved });
    }
  }

  snapshot() {
    return {
      uplink: this.cfg.uplink,
      interfaces: this.director.linkStatus(),
      links: Object.fromEntries(this.links),
      events: this.events,
      unresolved: this.director.unresolved,
      ...counters(this.director.readStats()),
    };
  }

  private listen(host: string, port: number): Promise<Server> {
    const server = createServer((req, res) => {
      if (req.method !== 'GET' || req.url !== '/counters') {
        res.writeHead(404).end();
        return;
      }
      try {
        res.writeHead(200, { 'content-type': 'application/json' }).end(`${json(this.snapshot())}\n`);
      } catch (e) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`);
      }
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve(server));
    });
  }

  run(): Promise<void> {
    this.loop ??= this.pollLoop();
    return this.loop;
  }

  private async pollLoop(): Promise<void> {
    let lastLog = Date.now();
    while (!this.stopping) {
      try {
        await this.poll();
      } catch (e) {
        // A reaction that failed (an attach refused, a backend that does not resolve) is reported
        // and tried again on the next change; the data plane keeps what it has.
        log('error', { message: (e as Error).message, ...(e instanceof LvsError ? { code: e.code, hint: e.hint } : {}) });
      }
      if (this.cfg.logEverySeconds > 0 && Date.now() - lastLog >= this.cfg.logEverySeconds * 1000) {
        lastLog = Date.now();
        log('counters', counters(this.director.readStats()));
      }
      await sleep(this.cfg.pollMs);
    }
  }

  /** Stops watching (a reaction under way finishes first), then detaches or leaves lvs-xdp running. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.server?.close();
    await this.loop;
    if (this.cfg.detachOnExit) {
      const r = await this.director.detach(this.cfg.uplink);
      log('stopped', { detached: r.detached, removed: r.removed });
    } else {
      this.director.close();
      log('stopped', { detached: [] });
    }
  }
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) {
    process.stderr.write('usage: node router.js ROUTER.json\n');
    process.exit(2);
  }
  const router = new EdgeRouter(readRouterConfig(file));
  await router.start();
  let stopped: Promise<void> | undefined;
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.on(sig, () => {
      stopped ??= router.stop().then(() => process.exit(0), (e: unknown) => {
        log('error', { message: (e as Error).message });
        process.exit(1);
      });
    });
  }
  await router.run();
}

main().catch((e: unknown) => {
  if (!(e instanceof LvsError)) throw e;
  process.stderr.write(`edge-router: ${e.code}: ${e.message}${e.hint ? `\nhint: ${e.hint}` : ''}\n`);
  process.exit(e.exitCode);
});
