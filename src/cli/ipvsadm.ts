/**
 * The ipvsadm-compatible front end: `lvs-xdp -A -t VIP:80 -s mh`, `lvs-xdp -L -n --stats`,
 * `lvs-xdp -S -n > rules`, `lvs-xdp -R < rules`. Rule commands go through the same parser as
 * restore files (src/ipvsadm); listings use ipvsadm's layouts byte for byte.
 */
import { readFileSync } from 'node:fs';
import { ConfigError, ExitCode } from '../errors.js';
import {
  parseRule, parseRules, parseAddrPort, parseFwmarkOption, formatSave, formatList, formatStats, formatRate, formatConnections,
  destinationKey,
} from '../ipvsadm/index.js';
import type { ConnCounts, StatsRow, RateRow } from '../ipvsadm/format.js';
import { MAX_IDLE_TIMEOUT, fwmarkVip, serviceId, servicesById, type DirectorConfig } from '../model/types.js';
import { expandShortOptions } from '../ipvsadm/argv.js';
import { effectiveTimeouts } from '../model/timeouts.js';
import type { ApplyResult, Director, StatsSample } from '../director/director.js';
import { boundYoungGeneration, openRepaired, toJson, warnUnresolved, warnNatUnattached, VERSION, type StateOpts } from './common.js';
import { drainOf } from '../director/drain.js';
import { VALUE_OPTIONS as DAEMON_OPTIONS } from '../ipvsadm/daemon.js';

export { isIpvsadmInvocation } from './ipvsadm-detect.js';

interface Parsed {
  action: 'list' | 'save' | 'restore' | 'zero' | 'rule' | 'timeout' | 'set' | 'version';
  state: StateOpts;
  json: boolean;
  stats: boolean;
  rate: boolean;
  exact: boolean;
  /** --thresholds: Uthreshold / Lthreshold columns (ipvsadm's FMT_THRESHOLDS). */
  thresholds: boolean;
  connections: boolean;
  service?: { protocol: 'tcp' | 'udp'; vip: string; port: number; fwmark?: number };
  rule: string[];
  /** --set tcp tcpfin udp (0 = unchanged). */
  timeouts?: [number, number, number];
}

/** List options; `--sort` / `--nosort` are accepted and change nothing (listings are always sorted). */
const INFO_FLAGS: Record<string, keyof Parsed | 'numeric' | 'ignored'> = {
  '-n': 'numeric', '--numeric': 'numeric', '--stats': 'stats', '--rate': 'rate', '--exact': 'exact', '--thresholds': 'thresholds',
  '-c': 'connections', '--connection': 'connections', '--json': 'json', '--sort': 'ignored', '--nosort': 'ignored',
};
const ACTIONS: Record<string, Parsed['action']> = {
  '-L': 'list', '-l': 'list', '--list': 'list', '-S': 'save', '--save': 'save', '-R': 'restore', '--restore': 'restore',
  '-Z': 'zero', '--zero': 'zero', '--timeout': 'timeout', '--set': 'set', '-v': 'version',
};

/** `--set tcp tcpfin udp`: three whole seconds, 0 = leave unchanged (as ipvsadm). */
function setTimeouts(words: readonly string[], at: number): [number, number, number] {
  const v = words.slice(at, at + 3);
  if (v.length < 3 || v.some((x) => !/^\d+$/.test(x))) {
    throw new ConfigError(`needs three timeouts in seconds (tcp tcpfin udp; 0 leaves one unchanged), got ${JSON.stringify(v.join(' '))}`, { field: '--set' });
  }
  const n = v.map(Number) as [number, number, number];
  const bad = n.findIndex((x) => x > MAX_IDLE_TIMEOUT);
  if (bad >= 0) throw new ConfigError(`${['tcp', 'tcpfin', 'udp'][bad]} timeout ${n[bad]} out of range 0..${MAX_IDLE_TIMEOUT}`, { field: '--set' });
  return n;
}

/** Pure: splits an ipvsadm argv into our action and options. Bundles (`-Ln`, `-Lnt VIP`) are expanded. */
export function parseIpvsadmArgv(argv: readonly string[]): Parsed {
  const p: Parsed = { action: 'rule', state: {}, json: false, stats: false, rate: false, exact: false, thresholds: false, connections: false, rule: [] };
  const words = expandShortOptions(argv);
  let info = words.some((w) => ACTIONS[w]) || (words.includes('-c') && !words.some((w) => /^-[AEDaed]$/.test(w)));
  if (words.includes('-c') && !words.some((w) => ACTIONS[w])) {
    // `lvs-xdp -c` alone means -L -c
    info = true;
    p.action = 'list';
  }
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    const eq = w.indexOf('=');
    const [key, attached] = w.startsWith('--') && eq > 0 ? [w.slice(0, eq), w.slice(eq + 1)] : [w, undefined];
    if (key === '--pin-dir' || key === '--state-dir') {
      const v = attached ?? words[++i];
      if (!v) throw new ConfigError('needs a value', { field: key });
      if (key === '--pin-dir') p.state.pinDir = v;
      else p.state.stateDir = v;
      continue;
    }
    if (!info) {
      if (key === '--json') {
        p.json = true;
        continue;
      }
      p.rule.push(w);
      continue;
    }
    if (ACTIONS[key]) {
      const next = ACTIONS[key]!;
      // `-L --timeout` lists the timeouts; `-c` alone already made the action a listing.
      const pair = new Set([p.action, next]);
      const merged = p.action === 'rule' || p.action === next ? next
        : pair.has('list') && pair.has('timeout') ? 'timeout' : undefined;
      if (merged === undefined) throw new ConfigError(`only one command at a time (already ${p.action})`, { field: key });
      p.action = merged;
      if (next === 'set') {
        p.timeouts = setTimeouts(words, i + 1);
        i += 3;
      }
      continue;
    }
    const flag = INFO_FLAGS[key];
    if (flag) {
      if (flag !== 'numeric' && flag !== 'ignored') (p as unknown as Record<string, boolean>)[flag] = true;
      continue;
    }
    if (key === '-t' || key === '-u' || key === '--tcp-service' || key === '--udp-service') {
      const v = attached ?? words[++i];
      if (!v) throw new ConfigError('needs a value', { field: key });
      const { address, port } = parseAddrPort(key.startsWith('--') ? (key === '--tcp-service' ? '-t' : '-u') : key, v);
      p.service = { protocol: key === '-t' || key === '--tcp-service' ? 'tcp' : 'udp', vip: address, port: port ?? 0 };
      continue;
    }
    if (key === '-f' || key === '--fwmark-service') {
      const v = attached ?? words[++i];
      if (!v) throw new ConfigError('needs a value', { field: '-f' });
      p.service = { fwmark: parseFwmarkOption('-f', v), protocol: 'tcp', vip: fwmarkVip(4), port: 0 };
      continue;
    }
    if (key === '-6' || key === '--ipv6') {
      if (!p.service?.fwmark) throw new ConfigError('-6 used before -f (it makes a firewall-mark service IPv6)', { field: '-6' });
      p.service.vip = fwmarkVip(6);
      continue;
    }
    throw new ConfigError(`unknown or unsupported option with ${p.action === 'rule' ? '-L' : p.action}`, { field: w });
  }
  // `lvs-xdp` alone lists, as `ipvsadm` alone does (list_all; names are never resolved here, so
  // it is -L -n).
  if (p.action === 'rule' && (info || p.rule.length === 0)) p.action = 'list';
  if (p.connections && (p.stats || p.rate)) {
    throw new ConfigError('options conflict in the list command: -c lists connections, --stats / --rate list counters', { field: '-c' });
  }
  return p;
}

function only(config: DirectorConfig, svc: Parsed['service']): DirectorConfig {
  if (!svc) return config;
  const s = config.services.filter((x) => serviceId(x) === serviceId(svc));
  if (s.length === 0) throw new ConfigError(`service ${serviceId(svc)} does not exist`, { field: svc.fwmark ? '-f' : svc.protocol === 'tcp' ? '-t' : '-u' });
  return { ...config, services: s };
}

function statsRows(sample: StatsSample, config: DirectorConfig): Map<string, StatsRow> {
  const rows = new Map<string, StatsRow>();
  const byId = servicesById(config.services);
  for (const s of sample.services) {
    rows.set(s.id, { conns: s.conns, inPkts: s.packets, outPkts: s.outPackets ?? 0n, inBytes: s.bytes, outBytes: s.outBytes ?? 0n });
    const svc = byId.get(s.id);
    for (const r of s.realservers) {
      if (svc) rows.set(destinationKey(svc, r), { conns: r.conns, inPkts: r.packets, outPkts: r.outPackets ?? 0n, inBytes: r.bytes, outBytes: r.outBytes ?? 0n });
    }
  }
  return rows;
}

async function list(d: Director, p: Parsed): Promise<string> {
  const config = only(d.config, p.service);
  const byId = servicesById(config.services);
  // As ipvsadm: listing one service (-t / -u) prints no version line.
  const header = { version: VERSION, tableSizeLabel: d.sizes.maxConns, noVersionLine: p.service !== undefined };
  if (p.connections) {
    // Entries whose realserver was deleted are dead (their next packet is scheduled anew): IPVS
    // lists no connection without a destination, so neither do we.
    const entries = d.connections().filter((c) => c.realserver !== undefined && (!p.service || c.service === serviceId(p.service)));
    if (p.json) return `${toJson(entries)}\n`;
    return formatConnections(entries.map((c) => ({
      protocol: c.protocol, expire: c.expire, state: c.state, client: c.client, virtual: c.virtual, realserver: c.realserver!,
    })));
  }
  // --stats with --rate: ipvsadm prints the statistics (its print_title and print_service_entry
  // test FMT_STATS before FMT_RATE), so the rate is not even sampled.
  if (p.rate && !p.stats) {
    // Loaded for --rate only (it brings the stats view along).
    const v = await (await import('./stats.js')).sampleRates(d, 1);
    const rows = new Map<string, RateRow>();
    for (const s of v.services) {
      const r = (x: number) => BigInt(Math.round(x));
      rows.set(s.id, { cps: r(s.rates.cps), inPps: r(s.rates.pps), outPps: 0, inBps: r(s.rates.bps), outBps: 0 });
      const svc = byId.get(s.id);
      for (const rs of s.realservers) {
        if (svc) rows.set(destinationKey(svc, rs), { cps: r(rs.rates.cps), inPps: r(rs.rates.pps), outPps: 0, inBps: r(rs.rates.bps), outBps: 0 });
      }
    }
    if (p.json) return `${toJson(v.services.filter((s) => byId.has(s.id)))}\n`;
    return formatRate(config, { ...header, rows, exact: p.exact });
  }
  const sample = d.readStats();
  if (p.stats) {
    if (p.json) return `${toJson(sample.services.filter((s) => byId.has(s.id)))}\n`;
    return formatStats(config, { ...header, rows: statsRows(sample, config), exact: p.exact });
  }
  const conns = new Map<string, ConnCounts>();
  for (const s of sample.services) {
    const svc = byId.get(s.id);
    if (svc) for (const r of s.realservers) conns.set(destinationKey(svc, r), { active: r.active, inactive: r.inactive });
  }
  const unresolved = new Map(d.unresolved.map((u) => [`${u.service}/${u.address}`, u]));
  const drains = d.drains;
  if (p.json) {
    return `${toJson({
      version: VERSION,
      services: config.services.map((s) => ({
        ...s,
        realservers: s.realservers.map((r) => {
          const u = unresolved.get(`${serviceId(s)}/${r.address}`);
          const dr = drainOf(drains, s, r.address);
          return {
            ...r, ...conns.get(destinationKey(s, r)),
            ...(u ? { unresolved: { problem: u.problem, since: u.since } } : {}), ...(dr ? { drained: { since: dr.since } } : {}),
          };
        }),
      })),
    })}\n`;
  }
  // ipvsadm's layout on stdout stays byte for byte; what it has no column for goes to stderr.
  for (const s of config.services) {
    for (const r of s.realservers) {
      const u = unresolved.get(`${serviceId(s)}/${r.address}`);
      if (u) process.stderr.write(`lvs-xdp: ${serviceId(s)} -> ${r.address}: UNRESOLVED since ${u.since} (${u.problem}): takes no new flows\n`);
      const dr = drainOf(drains, s, r.address);
      if (dr) process.stderr.write(`lvs-xdp: ${serviceId(s)} -> ${r.address}: DRAINED since ${dr.since} (lvs-xdp undrain ends it)\n`);
    }
  }
  return formatList(config, { ...header, conns, thresholds: p.thresholds });
}

/** A change (its input already parsed): applied on the running director, its report with --json. */
async function change(p: Parsed, apply: (d: Director) => Promise<ApplyResult>): Promise<number> {
  const d = await openRepaired(p.state);
  try {
    const r = await apply(d);
    warnUnresolved(r);
    warnNatUnattached(d);
    if (p.json) console.log(toJson(r.report));
  } finally {
    d.close();
  }
  return ExitCode.OK;
}

/** Runs an ipvsadm-style invocation; returns the exit code. */
export async function runIpvsadm(argv: readonly string[]): Promise<number> {
  // The sync daemon's commands load the sync machinery (sockets, its state, zod): only an argv
  // that names one of their options loads them, a rule change or a listing never does.
  const words = expandShortOptions(argv);
  if (words.some((w) => w === '--daemon' || (DAEMON_OPTIONS as readonly string[]).includes(w))) {
    const { parseDaemonInvocation, runDaemonCommand } = await import('./ipvsadm-daemon.js');
    const daemon = parseDaemonInvocation(argv);
    if (daemon) return runDaemonCommand(daemon.cmd, daemon.state);
  }
  const p = parseIpvsadmArgv(argv);
  if (p.action === 'version') {
    console.log(`lvs-xdp v${VERSION} (ipvsadm-compatible rules; XDP data plane)`);
    return ExitCode.OK;
  }
  if (p.action === 'set') {
    const [tcp, tcpFin, udp] = p.timeouts!;
    const t = { ...(tcp ? { tcp } : {}), ...(tcpFin ? { tcpFin } : {}), ...(udp ? { udp } : {}) };
    return change(p, (d) => d.setTimeouts(t));
  }
  if (p.action === 'rule') {
    const cmd = parseRule(p.rule, 'command line');
    return change(p, (d) => d.run([cmd]));
  }
  if (p.action === 'restore') {
    await boundYoungGeneration();
    const cmds = parseRules(readFileSync(0, 'utf8'), '<stdin>');
    return change(p, (d) => d.run(cmds));
  }
  const d = await openRepaired(p.state);
  try {
    if (p.action === 'save') {
      const cfg = only(d.config, p.service);
      process.stdout.write(p.json ? `${toJson(cfg)}\n` : formatSave(cfg));
    } else if (p.action === 'timeout') {
      const t = effectiveTimeouts(d.config.settings?.timeouts);
      process.stdout.write(p.json ? `${toJson({ tcp: t.tcp, tcpFin: t.tcpFin, udp: t.udp })}\n` : `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpFin} ${t.udp}\n`);
    } else if (p.action === 'zero') {
      d.zeroStats(p.service ? serviceId(p.service) : undefined);
    } else {
      process.stdout.write(await list(d, p));
    }
  } finally {
    d.close();
  }
  return ExitCode.OK;
}
