// The snapshot file of version 6: a head, then the applied state's large records and each service
// as values of their own, whose bytes a later write copies instead of packing them again. The
// bytes are those of packing everything anew; version 5 files (one msgpack map) still read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Packr } from 'msgpackr';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import {
  encodeSnapshot, decodeSnapshot, readSnapshot, writeSnapshot, writePending, writeCommitted, pendingPath, deltaPath, SNAPSHOT_FORMAT, SNAPSHOT_VERSION,
  type Snapshot, type AppliedState,
} from '../../src/director/snapshot.js';
import { buildPlan, emptyApplied } from '../../src/director/plan.js';
import { realId } from '../../src/dataplane/compile.js';
import { DEFAULT_SIZES, DEFAULT_KNOBS } from '../../src/dataplane/loader.js';
import { StateError } from '../../src/errors.js';
import type { DirectorConfig, VirtualService } from '../../src/model/types.js';

const LIMITS = { maxServices: 256, maxReals: 1024, maxTableSize: 131071 };
const hex = (n: number) => n.toString(16).padStart(2, '0');
const service = (i: number): VirtualService => ({
  protocol: 'tcp', vip: `10.10.${i}.1`, port: 80, scheduler: 'mh', flags: [], ops: false,
  realservers: [0, 1].map((j) => ({ address: `10.99.${j}.${i + 1}`, port: 80, weight: 1, method: 'dr' as const, mac: `02:00:00:00:${hex(j)}:${hex(i)}` })),
});

function applied(running: AppliedState, config: DirectorConfig): AppliedState {
  const l2 = new Map(config.services.flatMap((s) => s.realservers.map((r) => [realId(s, r), { mac: r.mac! }] as const)));
  return buildPlan({ running, desired: config, l2, tunnel: {}, limits: LIMITS, now: 0 }).target;
}

function snapshot(a: AppliedState, version = SNAPSHOT_VERSION): Snapshot {
  return {
    format: SNAPSHOT_FORMAT, version, tool: '0.1.0', createdAt: 'x', updatedAt: 'y', sizes: DEFAULT_SIZES, knobs: DEFAULT_KNOBS,
    progId: 7, interfaces: { eth0: { ifindex: 2, mode: 'native', attachedAt: 'z' } }, applied: a,
  };
}

/** A deep copy: the same values, none of whose objects was packed or read before. */
const fresh = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;

test('snapshot version 6: records copied from what was read or packed give the bytes of packing everything anew', () => {
  const config: DirectorConfig = { services: Array.from({ length: 40 }, (_, i) => service(i)) };
  const first = applied(emptyApplied(), config);
  const file = encodeSnapshot(snapshot(first));
  const read = decodeSnapshot(file, 'f');
  assert.deepEqual(read, snapshot(first));
  // Read, then written again unchanged: the same bytes (every record copied from the file).
  assert.ok(encodeSnapshot(read).equals(file));
  // One realserver's weight: the target keeps the running records and services it leaves alone.
  const edited = { ...config, services: read.applied.config.services.map((s, i) => (i === 20 ? { ...s, realservers: s.realservers.map((r, j) => (j === 1 ? { ...r, weight: 3 } : r)) } : s)) };
  const target = applied(read.applied, edited);
  assert.equal(target.l2, read.applied.l2, 'the next hops record is the running one');
  assert.equal(target.config.services[3], read.applied.config.services[3]);
  const pending: Snapshot = { ...read, pending: { target, steps: [], startedAt: 't' } };
  const written = encodeSnapshot(pending);
  assert.ok(written.equals(encodeSnapshot(fresh(pending))), 'the same bytes as packing a copy');
  assert.deepEqual(decodeSnapshot(written, 'f'), fresh(pending));
  const committed: Snapshot = { ...read, applied: target };
  assert.ok(encodeSnapshot(committed).equals(encodeSnapshot(fresh(committed))));
});

test('snapshot version 6: a file cut short or with a value missing is incomplete, one of version 5 (a single map) is read', () => {
  const a = applied(emptyApplied(), { services: [service(1), service(2)] });
  const file = encodeSnapshot(snapshot(a));
  const bad = (buf: Buffer, re: RegExp) => assert.throws(() => decodeSnapshot(buf, '/run/x/state.msgpack'), (e: unknown) => e instanceof StateError && re.test(e.message));
  // The last service's value is missing: the head counts two.
  const packr = new Packr({ useRecords: false, variableMapSize: true });
  const lastService = packr.pack(a.config.services[1]);
  bad(file.subarray(0, file.length - lastService.length), /incomplete/);
  bad(file.subarray(0, file.length - 3), /corrupt|incomplete/);
  bad(Buffer.concat([file, packr.pack({ x: 1 })]), /incomplete/);
  // What lvs-xdp wrote before version 6: the snapshot as one msgpack map.
  const v5 = packr.pack(fresh(snapshot(a, 5)));
  const m = decodeSnapshot(v5, 'f');
  assert.equal(m.version, SNAPSHOT_VERSION);
  assert.deepEqual(m.applied, a);
  // Written back in this version's layout, read the same.
  assert.deepEqual(decodeSnapshot(encodeSnapshot(m), 'f'), m);
  assert.ok(encodeSnapshot(m).length > 0 && !encodeSnapshot(m).equals(v5));
});

/** `fn` with a snapshot path in a temporary directory (removed afterwards) and a configuration
 *  of `count` services. */
function inStateDir(count: number, fn: (path: string, config: DirectorConfig, dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-snap-'));
  try {
    fn(join(dir, 'state.msgpack'), { services: Array.from({ length: count }, (_, i) => service(i)) }, dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('an apply in progress is recorded beside the snapshot as what it changes, and is not pending once a later write of the snapshot committed it', () => {
  inStateDir(100, (path, config) => {
    const snap = snapshot(applied(emptyApplied(), config));
    writeSnapshot(path, snap);
    const read = readSnapshot(path)!;
    assert.equal(read.pending, undefined);
    const edited = { ...config, services: read.applied.config.services.map((s, i) => (i === 50 ? { ...s, realservers: s.realservers.map((r) => ({ ...r, weight: 2 })) } : s)) };
    const target = applied(read.applied, edited);
    read.pending = { target, steps: [{ op: 'settings', value: Buffer.from([1, 2]) }], startedAt: 't' };
    writePending(path, read);
    // The record holds the changed service and records, the rest as references: much smaller.
    assert.ok(statSync(pendingPath(path)).size * 4 < statSync(path).size, `${statSync(pendingPath(path)).size} vs ${statSync(path).size}`);
    const back = readSnapshot(path)!;
    assert.deepEqual(fresh(back.pending), fresh(read.pending));
    assert.deepEqual(back.pending!.target.config.services[50], edited.services[50]);
    // Committed: the snapshot is written again (the record not removed yet, as after a kill there).
    delete back.pending;
    back.applied = target;
    writeSnapshot(path, back);
    assert.ok(existsSync(pendingPath(path)));
    const after = readSnapshot(path)!;
    assert.equal(after.pending, undefined, 'the record starts from an earlier state: not pending');
    assert.deepEqual(fresh(after.applied), fresh(target));
  });
});

test('a change commits what it changed beside the snapshot (version 7), read back over it; a whole write makes an earlier delta stale', () => {
  inStateDir(200, (path, config, dir) => {
    writeSnapshot(path, snapshot(applied(emptyApplied(), config)));
    const whole = readFileSync(path);
    const weight = (a: AppliedState, at: number, w: number): AppliedState => applied(a, {
      ...a.config, services: a.config.services.map((s, i) => (i === at ? { ...s, realservers: s.realservers.map((r) => ({ ...r, weight: w })) } : s)),
    });
    // Two changes, each committed as a delta against the file, which stays as it was.
    let snap = readSnapshot(path)!;
    for (const [at, w] of [[50, 2], [120, 3]] as const) {
      snap.pending = { target: weight(snap.applied, at, w), steps: [], startedAt: 't' };
      writePending(path, snap);
      assert.ok(statSync(pendingPath(path)).size * 20 < whole.length, `pending ${statSync(pendingPath(path)).size} vs ${whole.length} bytes`);
      const target = snap.pending.target;
      delete snap.pending;
      snap.applied = target;
      writeCommitted(path, snap);
      rmSync(pendingPath(path));
      assert.ok(readFileSync(path).equals(whole), 'the snapshot file is not written again');
      assert.ok(statSync(deltaPath(path)).size * 20 < whole.length, `delta ${statSync(deltaPath(path)).size} vs ${whole.length} bytes`);
      const back = readSnapshot(path)!;
      assert.deepEqual(fresh(back.applied), fresh(target));
      assert.equal(back.seq, snap.seq);
      snap = back;
    }
    // A pending record written from the committed state is pending against it; once a later
    // delta commits, it is not (as after a kill between the commit and its removal).
    const next = weight(snap.applied, 7, 4);
    snap.pending = { target: next, steps: [{ op: 'settings', value: Buffer.from([1]) }], startedAt: 't' };
    writePending(path, snap);
    const pending = readSnapshot(path)!;
    assert.deepEqual(fresh(pending.pending!.target), fresh(next));
    pending.applied = pending.pending!.target;
    delete pending.pending;
    writeCommitted(path, pending);
    assert.equal(readSnapshot(path)!.pending, undefined, 'committed: not pending any more');
    assert.deepEqual(fresh(readSnapshot(path)!.applied), fresh(next));
    rmSync(pendingPath(path));
    // A whole write (attach, detach, upgrade; a delta grown too large) makes the delta beside it stale.
    const stale = join(dir, 'stale');
    copyFileSync(deltaPath(path), stale);
    const s = readSnapshot(path)!;
    writeSnapshot(path, s);
    assert.ok(!existsSync(deltaPath(path)), 'the delta is removed');
    copyFileSync(stale, deltaPath(path)); // as if left behind by a kill before its removal
    assert.deepEqual(fresh(readSnapshot(path)!.applied), fresh(next), 'a delta against an earlier write is not read');
    // A delta that does not decode is an error, not a silently older state.
    const cur = readSnapshot(path)!;
    cur.applied = weight(cur.applied, 9, 5);
    writeCommitted(path, cur);
    writeFileSync(deltaPath(path), readFileSync(deltaPath(path)).subarray(0, 40));
    assert.throws(() => readSnapshot(path), (e: unknown) => e instanceof StateError);
  });
});

test('a version 6 file is written whole on its first commit (an lvs-xdp of version 6 would not read a delta)', () => {
  inStateDir(20, (path, config) => {
    writeFileSync(path, encodeSnapshot(snapshot(applied(emptyApplied(), config), 6)));
    const snap = readSnapshot(path)!;
    snap.applied = applied(snap.applied, { ...config, services: config.services.slice(1) });
    writeCommitted(path, snap);
    assert.ok(!existsSync(deltaPath(path)));
    assert.equal(new Packr({ useRecords: false, variableMapSize: true }).unpackMultiple(readFileSync(path))![0].version, SNAPSHOT_VERSION);
    assert.deepEqual(fresh(readSnapshot(path)!.applied), fresh(snap.applied));
  });
});

test('a process that read the file reads another process\'s committed change as the delta only: the services it leaves alone stay the objects it had', () => {
  inStateDir(50, (path, config) => {
    writeSnapshot(path, snapshot(applied(emptyApplied(), config)));
    const whole = readFileSync(path);
    const first = readSnapshot(path)!;
    // Another process commits a change (the last service deleted): a delta beside the file.
    const mod = (m: string) => new URL(`../../src/${m}`, import.meta.url).href;
    execFileSync(process.execPath, ['--input-type=module', '-e', `
      const { readSnapshot, writeCommitted } = await import(${JSON.stringify(mod('director/snapshot.js'))});
      const { buildPlan } = await import(${JSON.stringify(mod('director/plan.js'))});
      const s = readSnapshot(${JSON.stringify(path)});
      const desired = { ...s.applied.config, services: s.applied.config.services.slice(0, 49) };
      s.applied = buildPlan({ running: s.applied, desired, l2: new Map(), tunnel: {}, limits: ${JSON.stringify(LIMITS)}, now: 0 }).target;
      writeCommitted(${JSON.stringify(path)}, s);
    `]);
    assert.ok(existsSync(deltaPath(path)) && readFileSync(path).equals(whole));
    const again = readSnapshot(path)!;
    assert.equal(again.applied.config.services.length, 49);
    assert.ok(again.applied.config.services.every((s, i) => s === first.applied.config.services[i]), 'the same service objects');
    assert.equal(again.pending, undefined);
    // A file replaced by other bytes is decoded again.
    writeFileSync(path, whole.subarray(0, 20));
    assert.throws(() => readSnapshot(path), (e: unknown) => e instanceof StateError);
  });
});
