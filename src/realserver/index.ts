/**
 * `lvs-xdp realserver setup | check | teardown`: configures a host (or a network namespace) as an
 * LVS-DR or LVS-Tun realserver, reports what is wrong with the exact fix, and undoes exactly what
 * setup did. The rules live in model.ts (pure); this file reads the kernel, applies the planned
 * changes one by one and records each in the state file before the next.
 */
import { existsSync } from 'node:fs';
import { ConfigError, StateError } from '../errors.js';
import { parseAddress, type Family } from '../model/address.js';
import {
  checkItems, confKey, hasIpv4, parseMode, parseVips, plannedSysctls, resolveDev,
  type CheckItem, type Mode, type Observed, type Vip,
} from './model.js';
import { addAddress, delAddress, readDefaultRoutes, readInterfaces, readProxyNd, readSysctl, setLinkUp, writeSysctl } from './system.js';
import { addDecapVip, attachDecap, detachDecap, readDecapCounters, readDecapStatus, removeDecapVip } from './decap.js';
import { loadState, realserverPaths, saveState, withLock, type RealserverPaths, type RealserverState } from './state.js';

export * from './model.js';
export { realserverPaths } from './state.js';

export interface PathOptions {
  /** Overrides for tests; default per network namespace. */
  pinDir?: string;
  stateDir?: string;
}

const CONF_NAMES = ['arp_ignore', 'arp_announce', 'rp_filter'];

/** Reads everything the rules look at. */
export function observe(mode: Mode, requestedDev: string | undefined, paths: RealserverPaths): Observed {
  const { links, addrs } = readInterfaces();
  const defaultRoutes = readDefaultRoutes();
  const dev = resolveDev(requestedDev, links, defaultRoutes);
  const sysctl: Record<string, number | undefined> = {};
  // Every interface: the ARP problem and rp_filter are per interface, combined with `all`.
  for (const where of ['all', ...links.filter((l) => l.ifname !== 'lo').map((l) => l.ifname)]) {
    for (const n of CONF_NAMES) sysctl[confKey(where, n)] = readSysctl(confKey(where, n));
  }
  sysctl['net/ipv6/conf/lo/disable_ipv6'] = readSysctl('net/ipv6/conf/lo/disable_ipv6');
  const o: Observed = { dev, links, addrs, sysctl, defaultRoutes, proxyNd: readProxyNd() };
  if (mode === 'tun') o.decap = readDecapStatus(paths.pins, dev);
  return o;
}

// ---- setup ------------------------------------------------------------------------------------

export interface SetupOptions extends PathOptions {
  mode: string;
  vips: readonly string[];
  dev?: string;
  /** BPF object to attach (default bpf/lvs_decap.o of this installation). */
  objectPath?: string;
}

export interface ChangeReport {
  dev?: string;
  /** What was changed, one line each, in order. */
  changed: string[];
  /** What was right already (setup) or left alone (teardown), one line each. */
  unchanged: string[];
}

/** Refuses before changing anything when a VIP sits where setup must not touch it. */
function assertVipPlacement(o: Observed, vips: readonly Vip[]): void {
  const problems: string[] = [];
  for (const v of vips) {
    for (const a of o.addrs) {
      if (a.local !== v.text || a.family !== v.addr.family) continue;
      if (a.ifname !== 'lo') problems.push(`VIP ${v.text} is on ${a.ifname} (/${a.prefixlen}): remove it there first: ip addr del ${a.local}/${a.prefixlen} dev ${a.ifname}`);
      else if (a.prefixlen !== v.prefix) problems.push(`VIP ${v.text} is on lo as /${a.prefixlen}, not /${v.prefix}: ip addr del ${a.local}/${a.prefixlen} dev lo`);
    }
  }
  if (problems.length) {
    throw new StateError(`setup would leave a VIP answered for or a whole prefix local:\n  ${problems.join('\n  ')}`, {
      hint: 'setup does not remove addresses it did not add; fix these by hand, then run setup again',
    });
  }
}

function assertDecapFree(o: Observed): void {
  const d = o.decap;
  if (!d) return;
  if (d.pinned && d.linkIfname && d.linkIfname !== o.dev) {
    throw new StateError(`the decapsulation program is attached to ${d.linkIfname} already, not ${o.dev}`, {
      hint: 'lvs-xdp realserver teardown first, then set up the other interface',
    });
  }
  const ours = d.pinned && d.linkProgId === d.devProgId;
  if (d.devProgId !== 0 && !ours) {
    throw new StateError(`another XDP program (id ${d.devProgId}${d.devProgName ? `, ${d.devProgName}` : ''}) is attached to ${o.dev}`, {
      hint: `detach it first (ip link set dev ${o.dev} xdp off) if it is not needed`,
    });
  }
}

export async function setup(opts: SetupOptions): Promise<ChangeReport> {
  const mode = parseMode(opts.mode);
  const vips = parseVips(opts.vips);
  const paths = realserverPaths(opts);
  return withLock(paths, async () => {
    const state = loadState(paths.stateFile);
    const o = observe(mode, opts.dev, paths);
    assertVipPlacement(o, vips);
    assertDecapFree(o);
    const report: ChangeReport = { dev: o.dev, changed: [], unchanged: [] };
    const save = () => saveState(paths, state);

    if (!o.links.find((l) => l.ifname === 'lo')?.up) {
      setLinkUp('lo', true);
      state.loBroughtUp = true;
      save();
      report.changed.push('lo: brought up');
    }

    const writes = plannedSysctls(o, mode, vips);
    for (const w of writes) {
      const previous = readSysctl(w.key);
      if (previous === undefined) throw new StateError(`sysctl ${w.key} does not exist`);
      const rec = state.sysctls.find((s) => s.key === w.key);
      if (rec) {
        rec.value = w.value; // changed by someone since setup: the first previous value stays
      } else {
        state.sysctls.push({ key: w.key, previous, value: w.value, reason: w.reason });
      }
      save();
      writeSysctl(w.key, w.value);
      report.changed.push(`${w.key.replace(/\//g, '.')}: ${previous} -> ${w.value}`);
    }
    if (hasIpv4(vips) && writes.length === 0) report.unchanged.push('ARP sysctls already right');

    for (const v of vips) {
      let rec = state.vips.find((r) => r.vip === v.text);
      const present = o.addrs.some((a) => a.ifname === 'lo' && a.local === v.text && a.prefixlen === v.prefix);
      if (!rec) {
        rec = { vip: v.text, prefix: v.prefix, modes: [], addedToLo: false, addedToDecap: false };
        state.vips.push(rec);
      }
      if (!rec.modes.includes(mode)) rec.modes.push(mode);
      if (present) {
        save();
        report.unchanged.push(`${v.text}/${v.prefix} on lo already`);
      } else {
        rec.addedToLo = true;
        save(); // recorded before the change: an address of ours left behind is still undone
        addAddress(v.text, v.prefix, 'lo', v.addr.family);
        report.changed.push(`${v.text}/${v.prefix} added to lo`);
      }
    }

    if (mode === 'tun') {
      const r = await attachDecap(paths.pins, o.dev, opts.objectPath === undefined ? {} : { objectPath: opts.objectPath });
      if (r.attached || !state.decap) {
        state.decap = { dev: o.dev, mode: r.mode, progId: r.progId };
        save();
      }
      if (r.attached) report.changed.push(`decapsulation program attached to ${o.dev} (${r.mode} XDP, program id ${r.progId})`);
      else report.unchanged.push(`decapsulation program on ${o.dev} already`);
      for (const v of vips) {
        const rec = state.vips.find((x) => x.vip === v.text)!;
        rec.addedToDecap = true;
        save();
        if (addDecapVip(paths.pins, v.addr)) report.changed.push(`${v.text} added to the decapsulation map`);
        else report.unchanged.push(`${v.text} in the decapsulation map already`);
      }
    }
    return report;
  });
}

// ---- check ------------------------------------------------------------------------------------

export interface CheckOptions extends PathOptions {
  mode: string;
  /** Default: the VIPs setup recorded for the mode. */
  vips?: readonly string[];
  dev?: string;
}

export interface CheckReport {
  mode: Mode;
  dev: string;
  ok: boolean;
  items: CheckItem[];
  /** Tun: lvs_decap_counters totals when the program's maps are pinned. */
  counters?: Record<string, string>;
}

export function check(opts: CheckOptions): CheckReport {
  const mode = parseMode(opts.mode);
  const paths = realserverPaths(opts);
  let vipTexts = opts.vips ?? [];
  if (vipTexts.length === 0) {
    vipTexts = loadState(paths.stateFile).vips.filter((r) => r.modes.includes(mode)).map((r) => r.vip);
    if (vipTexts.length === 0) throw new ConfigError(`no VIP given and none set up for ${mode}`, { field: '--vip' });
  }
  const vips = parseVips(vipTexts);
  const o = observe(mode, opts.dev, paths);
  const items = checkItems(o, mode, vips);
  const report: CheckReport = { mode, dev: o.dev, ok: !items.some((i) => i.status === 'wrong'), items };
  if (mode === 'tun') {
    const c = readDecapCounters(paths.pins);
    if (c) report.counters = Object.fromEntries(Object.entries(c).map(([k, v]) => [k.toLowerCase(), v.toString()]));
  }
  return report;
}

// ---- teardown ---------------------------------------------------------------------------------

export interface TeardownOptions extends PathOptions {
  /** Only this mode's part (default: every mode). */
  mode?: string;
  /** Only these VIPs (default: every VIP setup recorded). */
  vips?: readonly string[];
}

function familyOfText(vip: string): Family {
  return parseAddress(vip)!.family;
}

/** Restores a recorded sysctl unless someone changed it since setup (then it is left alone). */
function restoreSysctl(rec: RealserverState['sysctls'][number], report: ChangeReport): void {
  const now = readSysctl(rec.key);
  const name = rec.key.replace(/\//g, '.');
  if (now === undefined) report.unchanged.push(`${name}: gone (its interface was removed)`);
  else if (now !== rec.value) report.unchanged.push(`${name}: left at ${now} (changed since setup set ${rec.value})`);
  else {
    writeSysctl(rec.key, rec.previous);
    report.changed.push(`${name}: ${rec.value} -> ${rec.previous}`);
  }
}

export async function teardown(opts: TeardownOptions = {}): Promise<ChangeReport> {
  const mode = opts.mode === undefined ? undefined : parseMode(opts.mode);
  const only = opts.vips && opts.vips.length ? parseVips(opts.vips).map((v) => v.text) : undefined;
  const paths = realserverPaths(opts);
  return withLock(paths, async () => {
    const state = loadState(paths.stateFile);
    const report: ChangeReport = { changed: [], unchanged: [] };
    const save = () => saveState(paths, state);
    for (const v of only ?? []) {
      if (!state.vips.some((r) => r.vip === v && (!mode || r.modes.includes(mode)))) {
        report.unchanged.push(`${v}: not set up${mode ? ` for ${mode}` : ''} by lvs-xdp realserver setup; left alone`);
      }
    }
    const { addrs } = readInterfaces();

    for (const rec of [...state.vips]) {
      if (only && !only.includes(rec.vip)) continue;
      const removing = mode ? rec.modes.filter((m) => m === mode) : [...rec.modes];
      if (removing.length === 0) continue;
      const addr = parseAddress(rec.vip)!;
      if (removing.includes('tun') && rec.addedToDecap) {
        if (removeDecapVip(paths.pins, addr)) report.changed.push(`${rec.vip} removed from the decapsulation map`);
        rec.addedToDecap = false;
      }
      rec.modes = rec.modes.filter((m) => !removing.includes(m));
      if (rec.modes.length === 0) {
        if (rec.addedToLo) {
          if (addrs.some((a) => a.ifname === 'lo' && a.local === rec.vip && a.prefixlen === rec.prefix)) {
            delAddress(rec.vip, rec.prefix, 'lo', addr.family);
            report.changed.push(`${rec.vip}/${rec.prefix} removed from lo`);
          } else report.unchanged.push(`${rec.vip}/${rec.prefix}: gone from lo already`);
        } else report.unchanged.push(`${rec.vip}/${rec.prefix} left on lo (it was there before setup)`);
        state.vips.splice(state.vips.indexOf(rec), 1);
      }
      save();
    }

    const anyTun = state.vips.some((r) => r.modes.includes('tun'));
    if (!anyTun && (state.decap || [paths.pins.link, paths.pins.vips, paths.pins.counters].some((p) => existsSync(p)))) {
      const dev = state.decap?.dev;
      if (detachDecap(paths.pins)) report.changed.push(`decapsulation program detached${dev ? ` from ${dev}` : ''}`);
      else report.unchanged.push('decapsulation program was not attached any more');
      delete state.decap;
      save();
    }

    const needArp = state.vips.some((r) => familyOfText(r.vip) === 4);
    const needRp = state.vips.some((r) => familyOfText(r.vip) === 4 && r.modes.includes('tun'));
    for (const rec of [...state.sysctls]) {
      if (rec.reason === 'arp' ? needArp : needRp) continue;
      restoreSysctl(rec, report);
      state.sysctls.splice(state.sysctls.indexOf(rec), 1);
      save();
    }

    if (state.vips.length === 0 && state.loBroughtUp) {
      setLinkUp('lo', false);
      state.loBroughtUp = false;
      save();
      report.changed.push('lo: down again (setup had brought it up)');
    }
    if (report.changed.length === 0 && report.unchanged.length === 0) report.unchanged.push('nothing recorded to undo');
    return report;
  });
}
