/**
 * A parsed keepalived.conf (parse.ts) as lvs-xdp's configuration: virtual_server (and
 * virtual_server_group) blocks become services, real_server blocks realservers, and their
 * checkers, timings, sorry server, quorum and notify scripts the `health-check:` blocks that
 * `lvs-xdp run` reads. Whatever has no equivalent is reported per item with its file:line and
 * the reason, and left out; whatever is carried over with a change is reported as such. Every
 * service is validated on its own by the configuration file's parser and the health-check plan,
 * so the whole output validates. Pure: no I/O.
 */
import { parseConfigText } from '../../config/parse.js';
import { formatConfigYaml } from '../../config/format.js';
import { healthPlan } from '../../ops/spec.js';
import { canonicalAddress, familyOf } from '../../model/address.js';
import {
  fwmarkVip, serviceId, MAX_FWMARK, SCHEDULERS, UNSUPPORTED_SCHEDULERS,
  type DirectorConfig, type ForwardingMethod, type Realserver, type SchedFlag, type Scheduler, type VirtualService,
} from '../../model/types.js';
import type { ParseNote, Statement } from './parse.js';

export interface ImportItem {
  file: string;
  line: number;
  /** What it is about, e.g. `virtual_server 10.0.0.1 80`, `real_server 192.168.1.10 80: MISC_CHECK`. */
  item: string;
  /** dropped: not carried over; changed: carried over differently (the reason says how). */
  kind: 'dropped' | 'changed';
  reason: string;
}

export interface ImportResult {
  config: DirectorConfig;
  items: ImportItem[];
  /** virtual_server blocks found (a group counts once). */
  virtualServers: number;
}

export interface TranslateOptions {
  /**
   * Every lb_kind NAT as this forwarding method (the realservers must then hold the VIP:
   * `lvs-xdp realserver setup`). Not needed: without it NAT is `method: nat`, except where
   * lvs-xdp has no LVS-NAT (firewall-mark services, sorry servers), which are then reported.
   */
  natAs?: ForwardingMethod;
}

/** Why an lb_kind NAT firewall-mark service is not carried over (lvs-xdp's validator's reason). */
export const FWMARK_NAT_REASON = 'lb_kind NAT on a firewall-mark service: not supported by lvs-xdp yet (a reply is rewritten to one VIP and port, and a mark may cover several); --nat-as dr|tun carries it over as one of those, with the VIP then needed on the realservers';
/** Why an LVS-NAT sorry server is not carried over. */
export const SORRY_NAT_REASON = 'an LVS-NAT sorry server: not supported by lvs-xdp (a sorry server is dr or tun); --nat-as dr|tun carries it over as one of those, with the VIP then needed on it';

/** Locality schedulers lvs-xdp does not run (UNSUPPORTED_SCHEDULERS says why): the nearest one it does. */
const SUBSTITUTE: Readonly<Record<string, Scheduler>> = { lblc: 'wlc', lblcr: 'wlc' };

const VRRP_REASON = 'VRRP is not part of lvs-xdp: keep keepalived for VRRP alone, or announce the VIPs with BIRD (README "Several directors")';
const TOP_REASONS: Readonly<Record<string, string>> = {
  global_defs: 'global settings (notification e-mail, router id, script security): nothing lvs-xdp uses',
  vrrp_instance: VRRP_REASON, vrrp_sync_group: VRRP_REASON, vrrp_script: VRRP_REASON, vrrp_track_process: VRRP_REASON,
  vrrp_track_file: VRRP_REASON, track_file: VRRP_REASON, static_ipaddress: 'static addresses: configure them in the system, not in lvs-xdp',
  static_routes: 'static routes: configure them in the system, not in lvs-xdp', static_rules: 'static rules: configure them in the system, not in lvs-xdp',
  linkbeat_interfaces: VRRP_REASON, bfd_instance: 'BFD: not supported (checks are tcp, http(s), udp or exec)',
  SSL: 'SSL client certificate for SSL_GET: not supported (the https check presents no client certificate)',
  net_namespace: 'run lvs-xdp inside the namespace instead (nsenter --net=/run/netns/NS)',
};

type Raw = Record<string, unknown>;

function fmtSeconds(s: number): string | number {
  if (Number.isInteger(s)) return `${s}s`;
  return `${Math.round(s * 1000)}ms`;
}

/** keepalived's script syntax: unquoted spaces separate words; single quotes keep spaces. */
export function splitScript(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let have = false;
  let q = false;
  for (const c of text) {
    if (c === "'") {
      q = !q;
      have = true;
    } else if (!q && /\s/.test(c)) {
      if (have) out.push(cur);
      cur = '';
      have = false;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have) out.push(cur);
  return out;
}

/** IPv4 / IPv6 as a bigint (for ranges). */
function toBig(a: string): { v: bigint; family: 4 | 6 } | undefined {
  const c = canonicalAddress(a);
  if (!c) return undefined;
  if (familyOf(c) === 4) return { v: c.split('.').reduce((x, o) => (x << 8n) | BigInt(o), 0n), family: 4 };
  const [head, tail] = c.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return { v: groups.reduce((x, g) => (x << 16n) | BigInt(parseInt(g, 16)), 0n), family: 6 };
}

function fromBig(v: bigint, family: 4 | 6): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 255n)).join('.');
  const groups: string[] = [];
  for (let i = 7; i >= 0; i--) groups.push(((v >> BigInt(i * 16)) & 0xffffn).toString(16));
  return canonicalAddress(groups.join(':'))!;
}

const MAX_RANGE = 256;

/** A virtual_server_group address entry: address, a.b.c.d-e, a.b.c.d-e.f.g.h, x::2-9, a.b.c.d/nn. */
export function expandRange(text: string): string[] | string {
  const cidr = /^(.+)\/(\d+)$/.exec(text);
  if (cidr) {
    const b = toBig(cidr[1]!);
    if (!b) return `not an address: ${cidr[1]}`;
    const bits = b.family === 4 ? 32 : 128;
    const len = Number(cidr[2]);
    if (len > bits) return `prefix /${len} too long`;
    const n = 1n << BigInt(bits - len);
    if (n > BigInt(MAX_RANGE)) return `${text} holds ${n} addresses: more than ${MAX_RANGE} services from one entry`;
    const base = (b.v >> BigInt(bits - len)) << BigInt(bits - len);
    return Array.from({ length: Number(n) }, (_x, i) => fromBig(base + BigInt(i), b.family));
  }
  const dash = text.lastIndexOf('-');
  if (dash < 0) {
    const c = canonicalAddress(text);
    return c ? [c] : `not an address: ${text}`;
  }
  const first = toBig(text.slice(0, dash));
  if (!first) return `not an address: ${text.slice(0, dash)}`;
  const endText = text.slice(dash + 1);
  let last: bigint;
  const full = toBig(endText);
  if (full && full.family === first.family && /[.:]/.test(endText)) last = full.v;
  else if (first.family === 4 && /^\d+$/.test(endText)) last = (first.v & ~255n) | BigInt(Number(endText));
  else if (first.family === 6 && /^[0-9a-fA-F]{1,4}$/.test(endText)) last = (first.v & ~0xffffn) | BigInt(parseInt(endText, 16));
  else return `not a range: ${text}`;
  if (last < first.v) return `range ${text} runs backwards`;
  if (last - first.v + 1n > BigInt(MAX_RANGE)) return `${text} holds ${last - first.v + 1n} addresses: more than ${MAX_RANGE} services from one entry`;
  const out: string[] = [];
  for (let v = first.v; v <= last; v++) out.push(fromBig(v, first.family));
  return out;
}

/** One VIP:port of a virtual_server, or a firewall mark (vip and family settled with the real servers). */
interface Address { vip: string; port: number; at: Statement; fwmark?: number; family?: 4 | 6 }

/** keepalived's IPVS_DEF_SCHED (check_data.c sets it on a virtual_server without lb_algo; the man page does not say). */
const KEEPALIVED_DEFAULT_SCHEDULER: Scheduler = 'wlc';

/** The settings a virtual server passes to its real servers and they to their checkers. */
interface Inherited {
  delayLoop?: number; connectTimeout?: number; retry?: number; delayBeforeRetry?: number; warmup?: number;
  alpha?: boolean; inhibit?: boolean; virtualhost?: string;
}

const BOOL_TRUE = new Set(['on', 'true', 'yes']);
const BOOL_FALSE = new Set(['off', 'false', 'no']);

class Translator {
  readonly items: ImportItem[] = [];
  private readonly groups = new Map<string, Statement>();

  constructor(private readonly opts: TranslateOptions) {}

  drop(s: Statement, item: string, reason: string): void {
    this.items.push({ file: s.file, line: s.line, item, kind: 'dropped', reason });
  }

  change(s: Statement, item: string, reason: string): void {
    this.items.push({ file: s.file, line: s.line, item, kind: 'changed', reason });
  }

  private num(s: Statement, item: string, min = 0): number | undefined {
    const v = Number(s.args[0]);
    if (s.args.length === 0 || !Number.isFinite(v) || v < min) {
      this.drop(s, item, `${s.keyword} needs a number >= ${min}${s.args.length ? `, not ${JSON.stringify(s.args[0])}` : ''}`);
      return undefined;
    }
    return v;
  }

  private bool(s: Statement, item: string): boolean | undefined {
    if (s.args.length === 0) return true;
    const a = s.args[0]!.toLowerCase();
    if (BOOL_TRUE.has(a)) return true;
    if (BOOL_FALSE.has(a)) return false;
    this.drop(s, item, `${s.keyword}: expected on|off|true|false|yes|no, not ${JSON.stringify(s.args[0])}`);
    return undefined;
  }

  /** A timing / behaviour keyword any level may hold; true when it was one. */
  private inherited(s: Statement, item: string, into: Inherited): boolean {
    switch (s.keyword) {
      case 'delay_loop': { const v = this.num(s, item, 0.001); if (v !== undefined) into.delayLoop = v; return true; }
      case 'connect_timeout': { const v = this.num(s, item, 0.001); if (v !== undefined) into.connectTimeout = v; return true; }
      case 'retry':
      case 'nb_get_retry': { const v = this.num(s, item, 0); if (v !== undefined) into.retry = Math.floor(v); return true; }
      case 'delay_before_retry': { const v = this.num(s, item, 0); if (v !== undefined) into.delayBeforeRetry = v; return true; }
      case 'warmup': { const v = this.num(s, item, 0); if (v !== undefined) into.warmup = v; return true; }
      case 'alpha': { const v = this.bool(s, item); if (v !== undefined) into.alpha = v; return true; }
      case 'inhibit_on_failure': { const v = this.bool(s, item); if (v !== undefined) into.inhibit = v; return true; }
      case 'virtualhost': if (s.args[0]) into.virtualhost = s.args[0]; return true;
      default: return false;
    }
  }

  private method(s: Statement, item: string): ForwardingMethod | undefined {
    const kind = (s.args[0] ?? '').toUpperCase();
    if (kind === 'DR') return 'dr';
    if (kind === 'TUN') {
      const type = s.args.indexOf('type');
      if (type >= 0 && s.args[type + 1] !== 'ipip') {
        this.drop(s, item, `tunnel type ${s.args[type + 1]}: not supported (lvs-xdp's LVS-Tun is IP-in-IP)`);
        return undefined;
      }
      return 'tun';
    }
    if (kind === 'NAT') return 'nat';
    this.drop(s, item, `${s.keyword} ${s.args.join(' ')}: expected NAT, DR or TUN`);
    return undefined;
  }

  /**
   * NAT: --nat-as's method when given (reported); else `nat`, or nothing (reported) where lvs-xdp
   * has no LVS-NAT: `where` names it (a firewall-mark service, a sorry server).
   */
  private resolveNat(m: ForwardingMethod | undefined, s: Statement, item: string, where?: 'fwmark' | 'sorry'): ForwardingMethod | undefined {
    if (m !== 'nat') return m;
    if (this.opts.natAs) {
      this.change(s, item, `lb_kind NAT carried over as ${this.opts.natAs.toUpperCase()} (--nat-as): each realserver needs the VIP (lvs-xdp realserver setup --mode ${this.opts.natAs}) and answers clients directly`);
      return this.opts.natAs;
    }
    if (where === undefined) return 'nat';
    this.drop(s, item, where === 'fwmark' ? FWMARK_NAT_REASON : SORRY_NAT_REASON);
    return undefined;
  }

  /** A notify / quorum script: its argv; a user / group after it is reported. */
  private script(s: Statement, item: string): string[] | undefined {
    if (!s.args[0]) {
      this.drop(s, item, `${s.keyword} needs a script`);
      return undefined;
    }
    if (s.args.length > 1) this.drop(s, item, `${s.keyword}: user ${s.args.slice(1).join(' ')}: not supported (notify commands run as lvs-xdp run's user)`);
    const argv = splitScript(s.args[0]);
    return argv.length ? argv : undefined;
  }

  top(statements: Statement[]): { services: { svc: VirtualService; origin: Statement }[]; virtualServers: number } {
    for (const s of statements) if (s.keyword === 'virtual_server_group' && s.args[0]) this.groups.set(s.args[0], s);
    const services: { svc: VirtualService; origin: Statement }[] = [];
    let virtualServers = 0;
    for (const s of statements) {
      if (s.keyword === 'virtual_server') {
        virtualServers++;
        services.push(...this.virtualServer(s).map((svc) => ({ svc, origin: s })));
      } else if (s.keyword === 'virtual_server_group') {
        continue;
      } else {
        const reason = TOP_REASONS[s.keyword] ?? (s.keyword.startsWith('vrrp_') ? VRRP_REASON : 'not an LVS setting lvs-xdp has');
        this.drop(s, `${s.keyword}${s.args.length ? ` ${s.args.join(' ')}` : ''}`, reason);
      }
    }
    return { services, virtualServers };
  }

  /** A firewall mark as keepalived takes it (1..UINT_MAX), or undefined (reported). */
  private mark(s: Statement, item: string, text: string | undefined): number | undefined {
    const v = Number(text);
    if (text === undefined || !/^\d+$/.test(text) || v < 1 || v > MAX_FWMARK) {
      this.drop(s, item, `not a firewall mark (1..${MAX_FWMARK}): ${JSON.stringify(text ?? '')}`);
      return undefined;
    }
    return v;
  }

  /** The VIP:port pairs and firewall marks a virtual_server names (one, or a group's). */
  private addresses(s: Statement, item: string): Address[] {
    if (s.args[0] === 'fwmark') {
      const mark = this.mark(s, item, s.args[1]);
      return mark === undefined ? [] : [{ vip: '', port: 0, at: s, fwmark: mark }];
    }
    if (s.args[0] === 'group') {
      const g = this.groups.get(s.args[1] ?? '');
      if (!g) {
        this.drop(s, item, `virtual_server_group ${s.args[1] ?? ''} is not defined`);
        return [];
      }
      const out: Address[] = [];
      for (const e of g.block ?? []) {
        const what = `virtual_server_group ${g.args[0]}: ${e.keyword} ${e.args.join(' ')}`.trim();
        if (e.keyword === 'fwmark') {
          const mark = this.mark(e, what, e.args[0]);
          const fam = e.args[1];
          if (mark === undefined) continue;
          if (fam !== undefined && fam !== 'inet' && fam !== 'inet6') {
            this.drop(e, what, `expected inet or inet6, not ${JSON.stringify(fam)}`);
            continue;
          }
          out.push({ vip: '', port: 0, at: e, fwmark: mark, ...(fam ? { family: fam === 'inet6' ? 6 as const : 4 as const } : {}) });
          continue;
        }
        const r = expandRange(e.keyword);
        if (typeof r === 'string') {
          this.drop(e, what, r);
          continue;
        }
        const port = e.args[0] === undefined ? 0 : Number(e.args[0]);
        if (!Number.isInteger(port) || port < 0 || port > 65535) {
          this.drop(e, what, `not a port: ${e.args[0]}`);
          continue;
        }
        for (const vip of r) out.push({ vip, port, at: e });
      }
      return out;
    }
    const vip = canonicalAddress(s.args[0] ?? '');
    if (!vip) {
      this.drop(s, item, `not an address: ${JSON.stringify(s.args[0] ?? '')}`);
      return [];
    }
    const port = s.args[1] === undefined ? 0 : Number(s.args[1]);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      this.drop(s, item, `not a port: ${s.args[1]}`);
      return [];
    }
    return [{ vip, port, at: s }];
  }

  private virtualServer(vs: Statement): VirtualService[] {
    const item = `virtual_server ${vs.args.join(' ')}`;
    let addrs = this.addresses(vs, item);
    // Nothing to carry over (reported): what is inside would only repeat it.
    if (addrs.length === 0) return [];
    const block = vs.block ?? [];
    let protocol: 'tcp' | 'udp' = 'tcp';
    let scheduler: Scheduler = KEEPALIVED_DEFAULT_SCHEDULER;
    let protocolAt: Statement | undefined;
    let ipFamily: 4 | 6 | undefined;
    let method: ForwardingMethod | undefined = 'nat';
    let methodAt: Statement = vs;
    const flags: string[] = [];
    let ops = false;
    let persistTimeout: number | undefined;
    let granularity: string | undefined;
    const inh: Inherited = {};
    const svcCheck: Raw = {};
    const notify: Raw = {};
    let sorry: { s: Statement; address: string; port?: number } | undefined;
    let sorryMethod: Statement | undefined;
    let skip: string | undefined;
    const reals: Statement[] = [];
    for (const s of block) {
      const it = `${item}: ${s.keyword}`;
      if (this.inherited(s, it, inh)) continue;
      switch (s.keyword) {
        case 'protocol': {
          const p = (s.args[0] ?? '').toUpperCase();
          protocolAt = s;
          if (p === 'TCP' || p === 'UDP') protocol = p.toLowerCase() as 'tcp' | 'udp';
          else skip = `protocol ${s.args[0]}: not supported (TCP and UDP only)`;
          break;
        }
        case 'lb_algo':
        case 'lvs_sched': {
          const a = s.args[0] ?? '';
          if ((SCHEDULERS as readonly string[]).includes(a)) scheduler = a as Scheduler;
          else if (SUBSTITUTE[a]) {
            scheduler = SUBSTITUTE[a];
            this.change(s, it, `scheduler ${a} is not supported by lvs-xdp: ${UNSUPPORTED_SCHEDULERS[a]}: ${scheduler} instead (weights kept)`);
          } else skip = `unknown scheduler ${JSON.stringify(a)}`;
          break;
        }
        case 'lb_kind':
        case 'lvs_method':
          method = this.method(s, it);
          methodAt = s;
          if (method === undefined) skip = 'its forwarding method cannot be carried over (above)';
          break;
        case 'persistence_timeout': persistTimeout = s.args[0] === undefined ? 360 : this.num(s, it, 1); break;
        case 'persistence_granularity': granularity = s.args[0]; break;
        case 'ops': ops = true; break;
        case 'sh-port': case 'sh-fallback': case 'mh-port': case 'mh-fallback': flags.push(s.keyword); break;
        case 'flag-1': case 'flag-2': flags.push(`${s.keyword}@${s.line}`); break;
        case 'quorum': { const v = this.num(s, it, 1); if (v !== undefined) svcCheck.quorum = Math.floor(v); break; }
        case 'hysteresis': { const v = this.num(s, it, 0); if (v !== undefined) svcCheck.hysteresis = Math.floor(v); break; }
        case 'quorum_up': { const a = this.script(s, it); if (a) notify['quorum-up'] = a; break; }
        case 'quorum_down': { const a = this.script(s, it); if (a) notify['quorum-down'] = a; break; }
        case 'sorry_server': {
          const address = canonicalAddress(s.args[0] ?? '');
          if (!address) this.drop(s, it, `not an address: ${JSON.stringify(s.args[0] ?? '')}`);
          else sorry = { s, address, ...(s.args[1] !== undefined ? { port: Number(s.args[1]) } : {}) };
          break;
        }
        case 'sorry_server_lvs_method': sorryMethod = s; break;
        case 'sorry_server_inhibit': this.change(s, it, 'the sorry server is in the table (weight 1) only while it is needed, as keepalived without sorry_server_inhibit: removed otherwise'); break;
        case 'omega': this.drop(s, it, 'lvs-xdp run leaves the data plane forwarding when it stops, so nothing goes down at shutdown and no down notifier runs then'); break;
        case 'real_server': reals.push(s); break;
        case 'ha_suspend': this.drop(s, it, 'checks always run (the VIP need not be local to the director)'); break;
        case 'smtp_alert': this.drop(s, it, 'e-mail alerts: not supported (use the notify commands or the health log lines)'); break;
        case 'snmp_name': this.drop(s, it, 'SNMP: not supported (Prometheus metrics at /metrics)'); break;
        case 'persistence_engine': this.drop(s, it, 'persistence engines (sip): not supported'); break;
        // The family of a firewall-mark service without real servers (else theirs, as keepalived).
        case 'ip_family': if (s.args[0] === 'inet' || s.args[0] === 'inet6') ipFamily = s.args[0] === 'inet6' ? 6 : 4; break;
        default:
          if (s.keyword === 'flag-3') this.drop(s, it, 'scheduler flag-3: no scheduler here uses it');
          else if (/_CHECK$|^HTTP_GET$|^SSL_GET$/.test(s.keyword)) this.drop(s, it, 'a checker directly in virtual_server: put it in a real_server');
          else this.drop(s, it, `not supported by lvs-xdp`);
      }
    }
    if (skip) {
      this.drop(vs, item, skip);
      return [];
    }
    // LVS-NAT is `method: nat` (or --nat-as's) for VIP:port services; firewall-mark services have none in lvs-xdp.
    let ipFwd: ForwardingMethod | undefined;
    let fwFwd: ForwardingMethod | undefined;
    const marks = addrs.filter((a) => a.fwmark !== undefined);
    if (method === 'nat' && !this.opts.natAs) {
      ipFwd = 'nat';
      if (marks.length) fwFwd = this.resolveNat(method, methodAt, vs.args[0] === 'fwmark' ? item : `${item}: ${marks.map((a) => `fwmark ${a.fwmark}`).join(', ')}`, 'fwmark');
    } else {
      ipFwd = fwFwd = this.resolveNat(method, methodAt, item);
    }
    if (!fwFwd) addrs = addrs.filter((a) => a.fwmark === undefined);
    if (addrs.length === 0) return [];
    if (marks.length && protocolAt && protocol !== 'tcp') {
      this.change(protocolAt, `${item}: protocol`, 'a firewall-mark service has no protocol of its own (keepalived ignores it too): the mark\'s definition says which protocols are its');
    }
    // A firewall-mark service's family: the group entry's, else ip_family, else its real servers' (as keepalived).
    const realFamily = reals.map((r) => canonicalAddress(r.args[0] ?? '')).find((a) => a !== null);
    for (const a of addrs) {
      if (a.fwmark === undefined) continue;
      const family = a.family ?? ipFamily ?? (realFamily ? familyOf(realFamily) : 4);
      a.vip = fwmarkVip(family);
      this.drop(a.at, `${a.at === vs ? item : `virtual_server_group ${vs.args[1] ?? ''}: fwmark ${a.fwmark}`}: mark ${a.fwmark}`,
        `define mark ${a.fwmark} with \`lvs-xdp fwmark add ${a.fwmark} ...\` or \`marks:\` (the iptables rule that sets it is not in keepalived.conf); until then no packet reaches the service fwm ${a.fwmark}${family === 6 ? ' ipv6' : ''}`);
    }
    // flag-1 / flag-2 mean sh-fallback / sh-port for sh and mh-fallback / mh-port for mh.
    const finalFlags: SchedFlag[] = [];
    for (const f of flags) {
      const m = /^flag-([12])@/.exec(f);
      const name = m ? (scheduler === 'sh' || scheduler === 'mh' ? `${scheduler}-${m[1] === '1' ? 'fallback' : 'port'}` : undefined) : f;
      const s = block.find((x) => x.keyword === (m ? `flag-${m[1]}` : f))!;
      if (!name) this.drop(s, `${item}: ${s.keyword}`, `scheduler flags apply to sh and mh only, not ${scheduler}`);
      else if (!name.startsWith(scheduler)) this.drop(s, `${item}: ${s.keyword}`, `${name} applies to scheduler ${name.split('-')[0]}, not ${scheduler}`);
      else finalFlags.push(name as SchedFlag);
    }
    if (Object.keys(notify).length) svcCheck.notify = notify;
    if (sorry) {
      const m = sorryMethod ? this.method(sorryMethod, `${item}: sorry_server_lvs_method`) : (ipFwd ?? fwFwd);
      const sm = m === 'nat' ? this.resolveNat(m, sorryMethod ?? sorry.s, `${item}: sorry_server`, 'sorry') : m;
      if (sm) {
        svcCheck['all-down'] = 'sorry-server';
        svcCheck['sorry-server'] = { address: sorry.address, method: sm };
        if (sorry.port !== undefined && addrs.some((a) => a.port !== sorry!.port)) {
          this.change(sorry.s, `${item}: sorry_server`, `port ${sorry.port} dropped: LVS-DR and LVS-Tun forward to the service port (IPVS ignores it there too)`);
        }
      }
    }
    const out: VirtualService[] = [];
    for (const a of addrs) {
      const svc: VirtualService = {
        ...(a.fwmark !== undefined ? { fwmark: a.fwmark } : {}),
        protocol: a.fwmark !== undefined ? 'tcp' : protocol, vip: a.vip, port: a.port, scheduler, flags: finalFlags, ops, realservers: [],
      };
      const fwd = (a.fwmark !== undefined ? fwFwd : ipFwd)!;
      if (persistTimeout !== undefined) {
        svc.persistence = { timeout: persistTimeout, netmask: granularity ?? (familyOf(a.vip) === 4 ? '32' : '128') };
      } else if (granularity !== undefined) {
        const g = block.find((x) => x.keyword === 'persistence_granularity')!;
        this.drop(g, `${item}: persistence_granularity`, 'without persistence_timeout the service is not persistent');
      }
      const realservers: Realserver[] = [];
      // Real servers are reported once: with the first VIP:port, or the first mark when there is none.
      const first = a === (addrs.find((x) => x.fwmark === undefined) ?? addrs[0]);
      for (const r of reals) {
        const rs = this.realServer(r, svc, fwd, inh, first);
        if (rs) realservers.push(rs);
      }
      svc.realservers = realservers;
      if (Object.keys(svcCheck).length) svc.healthCheck = structuredClone(svcCheck);
      // A service block holding only policy keys would check unchecked realservers with tcp.
      if (svc.healthCheck) for (const r of svc.realservers) r.healthCheck ??= { type: 'none' };
      hoist(svc);
      out.push(svc);
    }
    return out;
  }

  /** One real_server; `report` is false for the second and later VIPs of a group (reported once). */
  private realServer(r: Statement, svc: VirtualService, svcMethod: ForwardingMethod, svcInh: Inherited, report: boolean): Realserver | undefined {
    const item = `real_server ${r.args.join(' ')}`;
    const say = report ? this : undefined;
    const address = canonicalAddress(r.args[0] ?? '');
    if (!address) {
      say?.drop(r, item, `not an address: ${JSON.stringify(r.args[0] ?? '')}`);
      return undefined;
    }
    const rport = r.args[1] === undefined ? svc.port : Number(r.args[1]);
    const inh: Inherited = { ...svcInh };
    let weight = 1;
    let method: ForwardingMethod | undefined = svcMethod;
    let upper: number | undefined;
    let lower: number | undefined;
    const notify: Raw = {};
    const checks: Statement[] = [];
    // Reports of the second and later VIPs of a group would repeat the first's: a scratch translator.
    const t = report ? this : new Translator(this.opts);
    for (const s of r.block ?? []) {
      const it = `${item}: ${s.keyword}`;
      if (t.inherited(s, it, inh)) continue;
      switch (s.keyword) {
        case 'weight': { const v = t.num(s, it, 0); if (v !== undefined) weight = Math.min(Math.floor(v), 65535); break; }
        case 'lb_kind':
        case 'lvs_method': {
          const m = t.method(s, it);
          method = m === undefined ? undefined : t.resolveNat(m, s, it, svc.fwmark !== undefined ? 'fwmark' : undefined);
          if (!method) {
            say?.drop(r, item, 'not carried over: its forwarding method cannot be (above)');
            return undefined;
          }
          break;
        }
        case 'notify_up': { const a = t.script(s, it); if (a) notify['realserver-up'] = a; break; }
        case 'notify_down': { const a = t.script(s, it); if (a) notify['realserver-down'] = a; break; }
        case 'uthreshold': { const v = t.num(s, it, 0); if (v !== undefined) upper = Math.floor(v); break; }
        case 'lthreshold': { const v = t.num(s, it, 0); if (v !== undefined) lower = Math.floor(v); break; }
        case 'smtp_alert': t.drop(s, it, 'e-mail alerts: not supported (use the notify commands or the health log lines)'); break;
        case 'snmp_name': t.drop(s, it, 'SNMP: not supported (Prometheus metrics at /metrics)'); break;
        default:
          if (/_CHECK$|^HTTP_GET$|^SSL_GET$/.test(s.keyword)) checks.push(s);
          else t.drop(s, it, 'not supported by lvs-xdp');
      }
    }
    // LVS-NAT maps to the realserver's own port; a firewall-mark service's realservers keep the
    // packet's port (the given one is kept, as IPVS stores it); DR and Tun forward to the service port.
    const ownPort = method === 'nat' || svc.fwmark !== undefined;
    if (!ownPort && rport !== svc.port && report) {
      this.change(r, item, `port ${rport}: LVS-DR and LVS-Tun forward to the service port ${svc.port} (IPVS ignores a realserver port there too); the health check still probes ${rport}`);
    }
    if (svcMethod === 'dr' && method === 'dr' && familyOf(address) !== familyOf(svc.vip)) {
      say?.drop(r, item, `an LVS-DR realserver must have the VIP's address family (${svc.vip})`);
      return undefined;
    }
    const rs: Realserver = {
      address, port: ownPort ? rport : svc.port, weight, method: method!,
      ...(upper ? { upperThreshold: upper } : {}), ...(lower ? { lowerThreshold: lower } : {}),
    };
    let check: Raw | undefined;
    for (const c of checks) {
      if (check) {
        t.drop(c, `${item}: ${c.keyword}`, 'lvs-xdp runs one check per realserver: the first supported one above is kept');
        continue;
      }
      check = t.checker(c, `${item}: ${c.keyword}`, inh, rport, rs.port);
    }
    if (check) {
      if (Object.keys(notify).length) check.notify = notify;
      rs.healthCheck = check;
    } else if (Object.keys(notify).length) {
      const n = (r.block ?? []).find((x) => x.keyword.startsWith('notify_'))!;
      t.drop(n, `${item}: ${n.keyword}`, 'a realserver without a check never changes state: its notify never runs');
    }
    return rs;
  }

  /** One checker block as a health-check; undefined (reported) when it has no equivalent. */
  private checker(c: Statement, item: string, parent: Inherited, rport: number, vport: number): Raw | undefined {
    const kind = c.keyword;
    const inh: Inherited = { ...parent };
    const type = kind === 'HTTP_GET' ? 'http' : kind === 'SSL_GET' ? 'https' : kind === 'TCP_CHECK' ? 'tcp' : kind === 'MISC_CHECK' ? 'exec' : kind === 'UDP_CHECK' ? 'udp' : undefined;
    if (!type) {
      const why: Record<string, string> = {
        PING_CHECK: 'ICMP echo checks: not supported (tcp, http(s), udp, exec): the realserver is left unchecked',
        SMTP_CHECK: 'SMTP dialogue checks: not supported (a tcp check of port 25, or an exec check, comes closest): the realserver is left unchecked',
        DNS_CHECK: 'DNS query checks: not supported (a udp check with a payload, or an exec check, comes closest): the realserver is left unchecked',
        BFD_CHECK: 'BFD: not supported: the realserver is left unchecked',
        FILE_CHECK: 'file checks: not supported: the realserver is left unchecked',
      };
      this.drop(c, item, why[kind] ?? `unknown checker ${kind}: the realserver is left unchecked`);
      return undefined;
    }
    const out: Raw = { type };
    let port: number | undefined;
    const urls: Raw[] = [];
    let command: string[] | undefined;
    let miscTimeout: number | undefined;
    let payload: string | undefined;
    let expect: string | undefined;
    let requireReply = false;
    for (const s of c.block ?? []) {
      const it = `${item}: ${s.keyword}`;
      if (this.inherited(s, it, inh)) continue;
      switch (s.keyword) {
        case 'connect_port': { const v = this.num(s, it, 1); if (v !== undefined) port = v; break; }
        case 'url': if (type === 'http' || type === 'https') { const u = this.url(s, it); if (u) urls.push(u); } else this.drop(s, it, `url applies to HTTP_GET / SSL_GET`); break;
        case 'misc_path': command = splitScript(s.args.join(' ')); break;
        case 'misc_timeout': miscTimeout = this.num(s, it, 0.001); break;
        case 'misc_dynamic': this.drop(s, it, 'weights set by the exit code: not supported (exit 0 is up, anything else down)'); break;
        case 'payload': payload = hexText(s.args.join(' ')); if (payload === undefined) this.drop(s, it, 'a payload that is not UTF-8 text: not supported (the udp check sends text)'); break;
        case 'require_reply': {
          requireReply = true;
          if (s.args.length) {
            const h = s.args.join(' ');
            expect = /[xX]/.test(h) ? undefined : hexText(h);
            if (expect === undefined) this.drop(s, it, 'a reply pattern with X nibbles or bytes that are not UTF-8 text: not supported (the udp check looks for text): any reply passes');
          }
          break;
        }
        case 'min_reply_length': case 'max_reply_length': this.drop(s, it, 'reply length limits: not supported (any reply containing `expect` passes)'); break;
        case 'http_protocol': this.change(s, it, 'the http check always sends HTTP/1.1 with Connection: close'); break;
        case 'enable_sni': if (inh.virtualhost === undefined) this.drop(s, it, 'SNI is sent when the check has a host (virtualhost)'); break;
        case 'fast_recovery': this.drop(s, it, 'every URL is checked in each check, so a recovering realserver needs no more than rise checks'); break;
        case 'user': this.drop(s, it, 'exec checks run as lvs-xdp run\'s user'); break;
        case 'log_all_failures': this.drop(s, it, '--log-level debug logs every check result'); break;
        case 'connect_ip': case 'bindto': case 'bind_if': case 'bind_port': case 'fwmark': case 'source_ip':
          this.drop(s, it, 'checks go from the director\'s own address to the realserver\'s (or, with via: forwarding, to the VIP through the forwarding path)'); break;
        default: this.drop(s, it, 'not supported by lvs-xdp');
      }
    }
    const interval = inh.delayLoop ?? 60;
    let timeout = type === 'exec' ? (miscTimeout ?? interval) : (inh.connectTimeout ?? 5);
    if (timeout > interval) {
      this.change(c, item, `timeout ${timeout} s longer than delay_loop ${interval} s: the check's timeout is ${interval} s (a check must end before the next one)`);
      timeout = interval;
    }
    const retry = inh.retry ?? (type === 'exec' ? 0 : 1);
    out.interval = fmtSeconds(interval);
    out.timeout = fmtSeconds(timeout);
    out.rise = 1;
    out.fall = Math.min(retry + 1, 1000);
    if (retry > 0) out['delay-before-retry'] = fmtSeconds(inh.delayBeforeRetry ?? (type === 'http' || type === 'https' ? 3 : 1));
    if (inh.warmup !== undefined) out.warmup = inh.warmup === 0 ? 0 : fmtSeconds(inh.warmup);
    if (inh.alpha) out.initial = 'down';
    // keepalived takes a failed realserver out of IPVS, or with inhibit_on_failure sets its weight 0.
    out['on-down'] = inh.inhibit ? 'finish' : 'cut';
    if (port !== undefined ? port !== vport : rport !== vport) out.port = port ?? rport;
    if (type === 'http' || type === 'https') {
      if (inh.virtualhost !== undefined) out.host = inh.virtualhost;
      if (urls.length === 0) {
        this.drop(c, item, `${kind} without url: keepalived checks nothing then; the check is carried over as GET / with status 200-299`);
        urls.push({ path: '/', 'expect-status': '200-299' });
      }
      if (urls.length === 1) Object.assign(out, urls[0]);
      else out.urls = urls;
    }
    if (type === 'exec') {
      if (!command?.length) {
        this.drop(c, item, 'MISC_CHECK without misc_path: the realserver is left unchecked');
        return undefined;
      }
      out.command = command;
    }
    if (type === 'udp') {
      if (!requireReply) {
        this.drop(c, item, "UDP_CHECK without require_reply passes while no ICMP error comes back; lvs-xdp's udp check needs an answer: the realserver is left unchecked");
        return undefined;
      }
      out.payload = payload ?? '';
      if (expect !== undefined) out.expect = expect;
    }
    return out;
  }

  private url(u: Statement, item: string): Raw | undefined {
    const out: Raw = {};
    const codes: (number | string)[] = [];
    for (const s of u.block ?? []) {
      const it = `${item}: ${s.keyword}`;
      switch (s.keyword) {
        case 'path': out.path = s.args[0]?.startsWith('/') ? s.args[0] : `/${s.args[0] ?? ''}`; break;
        case 'digest': out.digest = (s.args[0] ?? '').toLowerCase(); break;
        case 'status_code':
          for (const a of s.args) {
            if (/^\d{3}$/.test(a)) codes.push(Number(a));
            else if (/^\d{3}-\d{3}$/.test(a)) codes.push(a);
            else this.drop(s, it, `not a status or range: ${a}`);
          }
          break;
        case 'virtualhost': out.host = s.args[0]; break;
        case 'regex': out['expect-body'] = s.args.join(' '); break;
        default: this.drop(s, it, s.keyword.startsWith('regex_') ? 'regular expression options: not supported (JavaScript regular expressions, on the first 64 KiB)' : 'not supported by lvs-xdp');
      }
    }
    if (out.path === undefined) {
      this.drop(u, item, 'url without path: skipped');
      return undefined;
    }
    // keepalived's default status_code is 200-299 (lvs-xdp's would be 200-399): say it.
    out['expect-status'] = codes.length === 0 ? '200-299' : codes.length === 1 ? codes[0] : codes;
    const ordered: Raw = { path: out.path };
    for (const k of ['host', 'expect-status', 'expect-body', 'digest']) if (out[k] !== undefined) ordered[k] = out[k];
    return ordered;
  }
}

/** keepalived's HEX_STR ("Ab12f 3 456") as text, or undefined when it is not UTF-8 text. */
export function hexText(h: string): string | undefined {
  const bytes: number[] = [];
  for (const word of h.trim().split(/\s+/)) {
    if (!/^[0-9a-fA-F]+$/.test(word)) return undefined;
    // Odd-length words: the last digit is a byte on its own (keepalived's "Ab12f" = AB 12 0F).
    const w = word.length % 2 ? word.slice(0, -1) + '0' + word.slice(-1) : word;
    for (let i = 0; i < w.length; i += 2) bytes.push(parseInt(w.slice(i, i + 2), 16));
  }
  const text = Buffer.from(bytes).toString('utf8');
  return Buffer.from(text, 'utf8').equals(Buffer.from(bytes)) && !/[\x00-\x08\x0e-\x1f]/.test(text) ? text : undefined;
}

/** Every realserver with the same check: it moves to the service block (merged there). */
function hoist(svc: VirtualService): void {
  const blocks = svc.realservers.map((r) => r.healthCheck as Raw | undefined);
  if (blocks.length === 0 || blocks.some((b) => b === undefined)) return;
  const first = JSON.stringify(blocks[0]);
  if (blocks.some((b) => JSON.stringify(b) !== first)) return;
  const check = blocks[0]!;
  const base = (svc.healthCheck as Raw | undefined) ?? {};
  const notify = { ...(base.notify as Raw | undefined), ...(check.notify as Raw | undefined) };
  svc.healthCheck = { ...check, ...base, ...(Object.keys(notify).length ? { notify } : {}) };
  for (const r of svc.realservers) delete r.healthCheck;
  if ((svc.healthCheck as Raw).type === 'none') {
    // Nothing is checked: only the policy keys stay (which then check nothing either).
    const { type: _t, ...rest } = svc.healthCheck as Raw;
    svc.healthCheck = Object.keys(rest).length ? { type: 'none', ...rest } : undefined;
    if (!svc.healthCheck) delete svc.healthCheck;
  }
}

/** Whether one service validates as lvs-xdp reads files; the first problem otherwise. */
function problemOf(svc: VirtualService): { message: string; realserver?: number } | undefined {
  try {
    healthPlan(parseConfigText(formatConfigYaml({ services: [svc] }), 'import'));
    return undefined;
  } catch (e) {
    const msg = (e as Error).message;
    const m = /services\[0\]\.realservers\[(\d+)\]/.exec(msg);
    return { message: msg.replace(/^import:\d+:\d+: /, '').replace(/^services\[0\]\.?/, ''), ...(m ? { realserver: Number(m[1]) } : {}) };
  }
}

/** Translates the statements of a parsed keepalived.conf. */
export function translateKeepalived(statements: Statement[], notes: ParseNote[] = [], opts: TranslateOptions = {}): ImportResult {
  const t = new Translator(opts);
  for (const n of notes) t.items.push({ file: n.file, line: n.line, item: 'include', kind: 'dropped', reason: n.note });
  const { services, virtualServers } = t.top(statements);
  const seen = new Set<string>();
  const kept: VirtualService[] = [];
  for (const { svc, origin } of services) {
    const id = serviceId(svc);
    if (seen.has(id)) {
      t.drop(origin, id, 'a second virtual_server for the same protocol, VIP and port: the first is kept');
      continue;
    }
    // Validate as lvs-xdp reads it; a realserver that does not validate goes (reported), then the rest is tried again.
    let ok = true;
    for (let guard = 0; guard <= svc.realservers.length + 1; guard++) {
      const p = problemOf(svc);
      if (!p) break;
      if (p.realserver !== undefined && svc.realservers[p.realserver]) {
        const r = svc.realservers[p.realserver]!;
        t.drop(origin, `${id}: real_server ${r.address}`, p.message);
        svc.realservers.splice(p.realserver, 1);
        continue;
      }
      t.drop(origin, id, p.message);
      ok = false;
      break;
    }
    if (!ok) continue;
    seen.add(id);
    kept.push(svc);
  }
  t.items.sort((a, b) => (a.file === b.file ? a.line - b.line : 0));
  return { config: { services: kept }, items: t.items, virtualServers };
}

/** One report line: `file:line: item: not carried over|changed: reason`. */
export function formatItem(i: ImportItem): string {
  return `${i.file}:${i.line}: ${i.item}: ${i.kind === 'dropped' ? 'not carried over' : 'changed'}: ${i.reason}`;
}
