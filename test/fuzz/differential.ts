/**
 * Differential execution: every frame of a case goes through the real program
 * (BPF_PROG_TEST_RUN) and through the reference model (test/model), and everything observable is
 * compared: XDP action, output bytes (TX / REDIRECT; PASS must be untouched), counter deltas,
 * per-service and per-realserver stats deltas, the connection / persistence / fragment maps and
 * the rr cursors.
 *
 * Time: the model runs at both ends of the run's monotonic-clock window. If the two answers differ
 * (a timeout boundary fell inside the window) the frame is "ambiguous" and the program must agree
 * with one of them. Timestamps the model writes must fall inside the window; all others must be
 * unchanged to the nanosecond. The model then continues from the kernel's timestamps.
 */
import { decodeSynRecvSlot, encodeSynRecv, synRecvValid, type SynRecv } from '../model/synrecv.js';
import { DirectorState, FUZZ_SIZES, type DynamicMap, type StatsSum } from '../lib/director-state.js';
import { COUNTERS } from '../../src/abi/generated.js';
import { step } from '../model/step.js';
import {
  applyWrites, cloneDynamic, type DynamicState, type Knobs, type Outcome, type StaticConfig, type Conn, type Pin,
  type Limits, type StatsDelta,
} from '../model/types.js';
import {
  type FuzzCase, CASE_SYNRECV_KEYS, synrecvKeyOf, staticConfig, initialDynamic, encodeSettings, encodeServiceKey, encodeService, encodeReal, encodeMark,
  encodeConn, encodePin, vipFilterWords, acceptedOf, encodeDest, encodeCounts,
} from './case.js';

export const LIMITS: Limits = { services: FUZZ_SIZES.maxServices, reals: FUZZ_SIZES.maxReals, tableSlots: 2 * FUZZ_SIZES.maxServices, synRecv: FUZZ_SIZES.maxSynRecv };
const COUNTER_INDEX = new Map(COUNTERS.map((c) => [c.name as string, c.index]));
const ACTION_NAME = ['ABORTED', 'DROP', 'PASS', 'TX', 'REDIRECT'];

export interface Mismatch {
  frameIndex: number;
  frame: string; // hex
  problems: string[];
  modelPath: string[];
}

export interface CaseResult {
  frames: number; // frames run
  compared: number;
  ambiguous: number; // compared against either end of the clock window
  /** Counter increments of the compared frames (which paths the case exercised). */
  hits: Map<string, number>;
  mismatch?: Mismatch;
}

/** A written timestamp relative to the model's clock: `now`, `now+<ns>` (a template a
 *  connection keeps valid), else absolute. */
function relTime(t: bigint, now: bigint): string {
  if (t === now) return 'now';
  const d = BigInt.asUintN(64, t - now);
  return d < 1n << 62n ? `now+${d}` : String(t);
}

function signature(o: Outcome, now: bigint): string {
  return JSON.stringify({
    a: o.action,
    o: o.out ? o.out.toString('hex') : null,
    c: [...o.counters].sort(),
    s: [...o.svcStats],
    r: [...o.realStats],
    y: o.sync.map((b) => b.toString('hex')),
    // a SYN_RECV slot's check word covers its timestamp: compared as the time is, relatively
    w: o.writes.map((w) => (w.map === 'cursor' || w.map === 'counts' || !w.value ? w
      : w.map === 'synrecv' ? { ...w, value: { ...w.value, lastSeen: relTime(w.value.lastSeen, now), check: 0 } }
      : { ...w, value: { ...w.value, lastSeen: relTime(w.value.lastSeen, now) } })),
  });
}

function decodeConn(b: Buffer): Conn & { pad: string } {
  return { lastSeen: b.readBigUInt64LE(0), real: b.readUInt32LE(8), gen: b.readUInt32LE(12), state: b[16]!, pad: b.toString('hex', 17, 24) };
}

function decodePin(b: Buffer): Pin {
  return { lastSeen: b.readBigUInt64LE(0), real: b.readUInt32LE(8), gen: b.readUInt32LE(12) };
}

const showEntry = (v: Conn | Pin | undefined) => (v ? JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? String(x) : x)) : 'absent');

export class Differential {
  private directors = new Map<string, DirectorState>();
  /** Allowed distance (ns) between a written timestamp and the run's clock window. */
  slackNs = 0n;

  /** Changes the model's copy of each case's configuration (tests use it to check that the
   *  comparison notices a model that differs from the program). */
  tweakModel?: (cfg: StaticConfig) => void;

  /** objectPath: another build of lvs_director.o (default: the repository's bpf/). */
  constructor(private readonly objectPath?: string) {}

  /** The program loaded with `knobs` and lvs_synrecv key `synrecvKey` (hex). */
  async director(knobs: Knobs, synrecvKey: string = CASE_SYNRECV_KEYS[0]): Promise<DirectorState> {
    const id = `${JSON.stringify(knobs)} ${synrecvKey}`;
    let d = this.directors.get(id);
    if (!d) {
      d = await DirectorState.load(knobs, undefined, this.objectPath, Buffer.from(synrecvKey, 'hex'));
      this.directors.set(id, d);
    }
    return d;
  }

  close(): void {
    for (const d of this.directors.values()) d.close();
    this.directors.clear();
  }

  private install(d: DirectorState, c: FuzzCase): { cfg: StaticConfig; dyn: DynamicState } {
    const k = c.config;
    for (const m of ['lvs_conns', 'lvs_strays', 'lvs_persist', 'lvs_frags', 'lvs_services'] as const) d.clear(m);
    d.clearSynRecv();
    d.syncEvents(); // an earlier case's, if it stopped between a run and its check
    d.resetCursors();
    if (k.vipFilter) d.setVipFilter(vipFilterWords(k)); // before the services and the flag, as the ABI says
    d.setCfg(encodeSettings(k));
    d.setReals(
      new Map(k.reals.filter((r) => r.index < LIMITS.reals).map((r) => [r.index, encodeReal(r)])),
      new Map((k.dests ?? []).filter((x) => x.index < LIMITS.reals).map((x) => [x.index, encodeDest(x)])),
    );
    d.setCounts(new Map((k.counts ?? []).filter((x) => x.index < LIMITS.reals).map((x) => [x.index, encodeCounts(x)])));
    // Tables left from earlier cases stay where no service of this case looks (unobservable).
    const present = new Set<number>();
    for (const t of k.tables) {
      if (t.slot < LIMITS.tableSlots && t.entries.length) {
        d.setTable(t.slot, Uint32Array.from(t.entries));
        present.add(t.slot);
      }
    }
    for (const s of k.services) if (!present.has(s.tableSlot)) d.deleteTable(s.tableSlot);
    for (const s of k.services) d.setService(encodeServiceKey(s), encodeService(s));
    d.setMarks((k.marks ?? []).map(encodeMark));
    d.setTxPorts(k.txPorts);
    d.setAccepted(acceptedOf(k));
    for (const cur of k.cursors) if (cur.id < LIMITS.services) d.setCursor(cur.id, cur.value);
    const at = process.hrtime.bigint();
    const cfg = staticConfig(k, LIMITS);
    this.tweakModel?.(cfg);
    const dyn = initialDynamic(k, at, LIMITS);
    for (const [key, v] of dyn.conns) d.put('lvs_conns', key, encodeConn(v.lastSeen, v.real, v.gen, v.state));
    for (const [key, v] of dyn.strays) d.put('lvs_strays', key, encodeConn(v.lastSeen, v.real, v.gen, v.state));
    for (const [key, v] of dyn.persist) d.put('lvs_persist', key, encodePin(v.lastSeen, v.real, v.gen));
    for (const [key, v] of dyn.frags) d.put('lvs_frags', key, encodePin(v.lastSeen, v.real, v.gen));
    d.putSynRecv(new Map([...dyn.synrecv].map(([slot, v]) => [slot, encodeSynRecv(v)])));
    return { cfg, dyn };
  }

  /** Runs a case; stops at the first mismatch (the states have diverged from there on).
   *  perFrame: read stats and rr cursors after every frame (else once, at the end of the case;
   *  a difference there is then pinpointed by running the case again with perFrame). */
  async runCase(c: FuzzCase, opts: { perFrame?: boolean } = {}): Promise<CaseResult> {
    const d = await this.director(c.config.knobs, synrecvKeyOf(c.config));
    const { cfg, dyn: initial } = this.install(d, c);
    const perFrame = opts.perFrame ?? false;
    const rotating = c.config.services.some((s) => s.flags & 4) || c.config.cursors.length > 0;
    let dyn = initial;
    let counters = d.counters();
    const stats0 = { svc: d.stats('lvs_svc_stats'), real: d.stats('lvs_real_stats') };
    let statsPrev = stats0;
    const expectStats = { svc: new Map<number, StatsDelta>(), real: new Map<number, StatsDelta>() };
    let cursors = rotating ? d.cursors() : [];
    const result: CaseResult = { frames: 0, compared: 0, ambiguous: 0, hits: new Map() };
    const fail = (i: number, problems: string[], path: string[]): CaseResult => {
      result.mismatch = { frameIndex: i, frame: i >= 0 ? c.frames[i]! : '', problems, modelPath: path };
      return result;
    };

    for (let i = 0; i < c.frames.length; i++) {
      const frame = Buffer.from(c.frames[i]!, 'hex');
      const run = d.run(frame);
      result.frames++;
      const oLo = step(cfg, dyn, frame, run.lo);
      const oHi = step(cfg, dyn, frame, run.hi);
      const ambiguous = signature(oLo, run.lo) !== signature(oHi, run.hi);
      const counters2 = d.counters();
      const counts2 = d.counts();
      const syncEvents = d.syncEvents().map((b) => b.toString('hex'));
      const dumps = {
        lvs_conns: d.dump('lvs_conns'), lvs_strays: d.dump('lvs_strays'), lvs_persist: d.dump('lvs_persist'), lvs_frags: d.dump('lvs_frags'),
      } satisfies Record<DynamicMap, Map<string, Buffer>>;
      const synrecvDump = d.dumpSynRecv();
      const writesCursor = (o: Outcome) => o.writes.some((w) => w.map === 'cursor');
      const readCursors = rotating && (perFrame || writesCursor(oLo) || writesCursor(oHi));
      const cursors2 = readCursors ? d.cursors() : cursors;
      const stats2 = perFrame ? { svc: d.stats('lvs_svc_stats'), real: d.stats('lvs_real_stats') } : statsPrev;

      // The kernel read its clock somewhere in [lo, hi]: it must agree with the model at one end.
      const check = (o: Outcome, now: bigint): string[] => {
        const problems: string[] = [];
        if (run.action !== o.action) problems.push(`action: model ${ACTION_NAME[o.action]}, program ${ACTION_NAME[run.action] ?? run.action}`);
        if (o.out && run.action === o.action && !run.out.equals(o.out)) {
          problems.push(`output bytes differ (first at ${firstDiff(run.out, o.out)}):\n    model   ${o.out.toString('hex')}\n    program ${run.out.toString('hex')}`);
        }
        const want = new Array<number>(COUNTERS.length).fill(0);
        for (const n of o.counters) want[COUNTER_INDEX.get(n)!]! += 1;
        for (const cdef of COUNTERS) {
          const got = counters2[cdef.index]! - counters[cdef.index]!;
          if (got !== want[cdef.index]) problems.push(`counter ${cdef.name}: model +${want[cdef.index]}, program +${got}`);
        }
        if (perFrame) {
          compareStats('svc_stats', o.svcStats, statsPrev.svc, stats2.svc, problems);
          compareStats('real_stats', o.realStats, statsPrev.real, stats2.real, problems);
        }
        this.compareMaps(o, now, dyn, dumps, run, problems);
        compareCounts(o, dyn, counts2, problems);
        this.compareSynRecv(o, now, dyn, synrecvDump, run, problems);
        const wantSync = o.sync.map((b) => b.toString('hex'));
        if (JSON.stringify(wantSync) !== JSON.stringify(syncEvents)) problems.push(`sync events: model [${wantSync.join(', ')}], program [${syncEvents.join(', ')}]`);
        if (readCursors) compareCursors(o, dyn, cursors, cursors2, problems, d.cpus);
        return problems;
      };
      let chosen = oLo;
      let problems = check(oLo, run.lo);
      if (problems.length && ambiguous && check(oHi, run.hi).length === 0) {
        chosen = oHi;
        problems = [];
      }
      if (problems.length) return fail(i, problems, oLo.path);
      if (ambiguous) result.ambiguous++;
      result.compared++;
      for (const n of chosen.counters) bump(result.hits, n);
      bump(result.hits, `action ${ACTION_NAME[chosen.action]}`);
      addStats(expectStats.svc, chosen.svcStats);
      addStats(expectStats.real, chosen.realStats);

      // The model continues from the kernel's state (same contents, the kernel's timestamps).
      dyn = stateFromKernel(dumps, chosen, dyn);
      dyn.synrecv = new Map([...synrecvDump].map(([slot, b]) => [slot, decodeSynRecvSlot(b)]));
      dyn.counts = countsFromKernel(counts2);
      if (readCursors) {
        // The CPU that ran the frame advanced its cursor; put every CPU at the model's value so
        // the next frame starts from it whichever CPU runs it.
        for (const [id, v] of dyn.cursors) {
          const row = cursors2[id];
          if (row && row.some((x) => x !== v)) d.setCursor(id, v);
        }
        cursors = d.cursors();
      }
      counters = counters2;
      statsPrev = stats2;
    }

    if (!perFrame) {
      // Stats over the whole case, and every CPU's rr cursor where the model left it.
      const problems: string[] = [];
      compareStats('svc_stats (whole case)', expectStats.svc, stats0.svc, d.stats('lvs_svc_stats'), problems);
      compareStats('real_stats (whole case)', expectStats.real, stats0.real, d.stats('lvs_real_stats'), problems);
      if (rotating) {
        d.cursors().forEach((row, id) => {
          const want = dyn.cursors.get(id) ?? 0;
          if (row.some((x) => x !== want)) problems.push(`rr cursor ${id} after the case: model ${want}, program ${row.join('/')}`);
        });
      }
      if (problems.length) return fail(-1, problems, []);
    }
    return result;
  }

  /** lvs_synrecv after a frame: the model's slots plus what it wrote. A slot written now holds
   *  the kernel's clock (inside the run's window) and a check word that holds for the kernel's
   *  fields; any other slot is byte for byte what it was. */
  private compareSynRecv(o: Outcome, now: bigint, dyn: DynamicState, got: Map<number, Buffer>, run: { lo: bigint; hi: bigint }, problems: string[]): void {
    const expected = cloneDynamic(dyn);
    applyWrites(expected, o.writes);
    const written = new Set(o.writes.filter((w) => w.map === 'synrecv').map((w) => (w as { slot: number }).slot));
    for (const slot of new Set([...expected.synrecv.keys(), ...got.keys()])) {
      const exp = expected.synrecv.get(slot);
      const raw = got.get(slot);
      const g = raw ? decodeSynRecvSlot(raw) : undefined;
      const show = (e?: SynRecv) => (e ? `${e.key.slice(0, 12)}.. real ${e.real} gen ${e.gen} svc ${e.svcId} at ${e.lastSeen} check ${e.check}` : 'none');
      if (!exp || !g) {
        problems.push(`lvs_synrecv[${slot}]: model ${show(exp)}, program ${show(g)}`);
        continue;
      }
      const fresh = written.has(slot);
      const delta = BigInt.asUintN(64, exp.lastSeen - now);
      const at = BigInt.asUintN(64, g.lastSeen - delta);
      const timeOk = fresh ? at + this.slackNs >= run.lo && at <= run.hi + this.slackNs : g.lastSeen === exp.lastSeen;
      const checkOk = fresh ? synRecvValid(g) : g.check === exp.check;
      if (!timeOk || !checkOk || g.key !== exp.key || g.real !== exp.real || g.gen !== exp.gen || g.svcId !== exp.svcId) {
        problems.push(`lvs_synrecv[${slot}]: model ${show(exp)}${fresh ? ' (written now)' : ''}, program ${show(g)}; window ${run.lo}..${run.hi}`);
      }
    }
  }

  /** Connection, persistence and fragment maps after a frame: what the model had plus what it
   *  wrote; timestamps it wrote inside the run's window, all others unchanged. */
  private compareMaps(o: Outcome, now: bigint, dyn: DynamicState, dumps: Record<DynamicMap, Map<string, Buffer>>, run: { lo: bigint; hi: bigint }, problems: string[]): void {
    const expected = cloneDynamic(dyn);
    applyWrites(expected, o.writes);
    const SHORT = { lvs_conns: 'conns', lvs_strays: 'strays', lvs_persist: 'persist', lvs_frags: 'frags' } as const;
    for (const m of ['lvs_conns', 'lvs_strays', 'lvs_persist', 'lvs_frags'] as const) {
      const short = SHORT[m];
      const isConn = m === 'lvs_conns' || m === 'lvs_strays';
      const model: Map<string, Conn | Pin> = expected[short];
      const written = new Set(o.writes.filter((w) => w.map === short).map((w) => (w as { key: string }).key));
      for (const key of new Set([...model.keys(), ...dumps[m].keys()])) {
        const raw = dumps[m].get(key);
        const got = raw ? (isConn ? decodeConn(raw) : decodePin(raw)) : undefined;
        const exp = model.get(key);
        if (!got || !exp) {
          problems.push(`${m} ${key}: model ${showEntry(exp)}, program ${showEntry(got)}`);
          continue;
        }
        const fresh = written.has(key);
        // a written timestamp is the kernel's clock plus what the model added to its own
        const delta = BigInt.asUintN(64, exp.lastSeen - now);
        const at = BigInt.asUintN(64, got.lastSeen - delta);
        const timeOk = fresh ? at + this.slackNs >= run.lo && at <= run.hi + this.slackNs : got.lastSeen === exp.lastSeen;
        const sameRest = got.real === exp.real && got.gen === exp.gen &&
          (!isConn || ((got as Conn).state === (exp as Conn).state && (got as unknown as { pad: string }).pad === '00000000000000'));
        if (!timeOk || !sameRest) {
          problems.push(`${m} ${key}: model ${showEntry(exp)}${fresh ? ' (written now)' : ''}, program ${showEntry(got)}; window ${run.lo}..${run.hi}`);
        }
      }
    }
  }
}

const decodeCounts = (b: Buffer) => ({ active: b.readInt32LE(0), inactive: b.readInt32LE(4), overloaded: b.readUInt32LE(8), pad: b.readUInt32LE(12) });

/** lvs_real_conns after a frame: what the model had plus what it wrote, every slot. */
function compareCounts(o: Outcome, dyn: DynamicState, got: Buffer[], problems: string[]): void {
  const expected = cloneDynamic(dyn);
  applyWrites(expected, o.writes);
  for (let i = 0; i < got.length; i++) {
    const g = decodeCounts(got[i]!);
    const e = expected.counts.get(i) ?? { active: 0, inactive: 0, overloaded: 0 };
    if (g.active !== e.active || g.inactive !== e.inactive || g.overloaded !== e.overloaded || g.pad !== 0) {
      problems.push(`lvs_real_conns[${i}]: model ${JSON.stringify(e)}, program ${JSON.stringify(g)}`);
    }
  }
}

function countsFromKernel(got: Buffer[]): DynamicState['counts'] {
  const m: DynamicState['counts'] = new Map();
  got.forEach((b, i) => {
    const c = decodeCounts(b);
    if (c.active || c.inactive || c.overloaded) m.set(i, { active: c.active, inactive: c.inactive, overloaded: c.overloaded });
  });
  return m;
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

function addStats(into: Map<number, StatsDelta>, from: Map<number, StatsDelta>): void {
  for (const [i, v] of from) {
    const s = into.get(i) ?? { packets: 0, bytes: 0, conns: 0 };
    s.packets += v.packets;
    s.bytes += v.bytes;
    s.conns += v.conns;
    s.outPackets = (s.outPackets ?? 0) + (v.outPackets ?? 0);
    s.outBytes = (s.outBytes ?? 0) + (v.outBytes ?? 0);
    into.set(i, s);
  }
}

function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}

function compareStats(name: string, model: Map<number, StatsDelta>, before: StatsSum[], after: StatsSum[], problems: string[]): void {
  for (let i = 0; i < after.length; i++) {
    const a = after[i]!, b = before[i]!;
    const got = {
      packets: a.packets - b.packets, bytes: a.bytes - b.bytes, conns: a.conns - b.conns,
      outPackets: a.outPackets - b.outPackets, outBytes: a.outBytes - b.outBytes,
    };
    const m = model.get(i);
    const want = { packets: m?.packets ?? 0, bytes: m?.bytes ?? 0, conns: m?.conns ?? 0, outPackets: m?.outPackets ?? 0, outBytes: m?.outBytes ?? 0 };
    if (got.packets !== want.packets || got.bytes !== want.bytes || got.conns !== want.conns ||
      got.outPackets !== want.outPackets || got.outBytes !== want.outBytes) {
      problems.push(`${name}[${i}]: model ${JSON.stringify(want)}, program ${JSON.stringify(got)}`);
    }
  }
}

/** Before a frame every CPU holds the model's cursor; after it, the CPU that ran the frame holds
 *  the model's new value and the others the old one. */
function compareCursors(o: Outcome, dyn: DynamicState, before: number[][], after: number[][], problems: string[], cpus: number): void {
  const writes = new Map<number, number>();
  for (const w of o.writes) if (w.map === 'cursor') writes.set(w.id, w.value);
  for (let id = 0; id < after.length; id++) {
    const row = after[id];
    if (!row) continue;
    const old = dyn.cursors.get(id) ?? 0;
    const prev = before[id] ?? new Array<number>(cpus).fill(old);
    const w = writes.get(id);
    const changed = row.filter((x, c) => x !== prev[c]!).length;
    if (w === undefined) {
      if (changed) problems.push(`rr cursor ${id}: model unchanged (${old}), program ${row.join('/')}`);
    } else if (w === old) {
      if (changed) problems.push(`rr cursor ${id}: model ${w} (same), program ${row.join('/')}`);
    } else if (changed !== 1 || !row.includes(w)) {
      problems.push(`rr cursor ${id}: model ${old} -> ${w}, program ${prev.join('/')} -> ${row.join('/')}`);
    }
  }
}

function stateFromKernel(dumps: Record<DynamicMap, Map<string, Buffer>>, o: Outcome, prev: DynamicState): DynamicState {
  const d: DynamicState = { conns: new Map(), strays: new Map(), persist: new Map(), frags: new Map(), cursors: new Map(prev.cursors), counts: new Map(prev.counts), synrecv: new Map(prev.synrecv) };
  for (const [k, v] of dumps.lvs_conns) { const c = decodeConn(v); d.conns.set(k, { lastSeen: c.lastSeen, real: c.real, gen: c.gen, state: c.state }); }
  for (const [k, v] of dumps.lvs_strays) { const c = decodeConn(v); d.strays.set(k, { lastSeen: c.lastSeen, real: c.real, gen: c.gen, state: c.state }); }
  for (const [k, v] of dumps.lvs_persist) d.persist.set(k, decodePin(v));
  for (const [k, v] of dumps.lvs_frags) d.frags.set(k, decodePin(v));
  for (const w of o.writes) if (w.map === 'cursor') d.cursors.set(w.id, w.value); // checked against the kernel's
  return d;
}

