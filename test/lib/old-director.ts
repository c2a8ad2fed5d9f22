/**
 * Stands in for an older lvs-xdp in the upgrade tests: replaces a running director's program
 * with bpf/test-objects/lvs_director_abi0*.o (ABI version 0, other lvs_conn and lvs_real layouts)
 * or lvs_director_abi1.o (ABI 1: no accepted-MAC maps; bpf/lvs_abi.h, `make -C bpf test-objects`),
 * loaded without the skeleton check as that version would load it. Maps the old object does not
 * have are unpinned (that version never had them); maps whose layout agrees are shared; lvs_reals is converted field by field into
 * the old layout and lvs_conns starts empty in it. The program and the two maps are pinned the
 * way lifecycle.ts pins them, every pinned link switches to the program, and the snapshot names
 * it and an older tool, with no ABI version recorded (as snapshots before upgrades were).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, renameSync, rmSync } from 'node:fs';
import { BpfMap, BpfObject, XdpLink, pinObject, progInfo } from '../../src/native/index.js';
import { BtfJson } from '../../src/abi/btf.js';
import { COUNTERS, DIRECTOR_SKELETON } from '../../src/abi/generated.js';
import { loadGlobals, mapSizes } from '../../src/abi/skeleton.js';
import { DIRECTOR_MAPS, DIRECTOR_OBJECT } from '../../src/dataplane/loader.js';
import { readSnapshot, writeSnapshot } from '../../src/director/snapshot.js';
import { convert, fieldMap } from '../../src/director/migrate.js';
import { repoRoot } from './paths.js';

export const OLD_OBJECT = `${repoRoot()}/bpf/test-objects/lvs_director_abi0.o`;
/** The same with an lvs_conn field this build does not have (test_cookie): an upgrade refuses it. */
export const OLD_OBJECT_EXTRA = `${repoRoot()}/bpf/test-objects/lvs_director_abi0_extra.o`;
/** ABI version 1: this build's layouts, without the accepted-MAC maps (lvs_l2_ifs, lvs_l2_addrs). */
export const OLD_OBJECT_NO_L2 = `${repoRoot()}/bpf/test-objects/lvs_director_abi1.o`;
export const OLD_TOOL = '0.0.1-old';

export function buildOldObjects(): void {
  execFileSync('make', ['-s', '-C', `${repoRoot()}/bpf`, 'test-objects'], { stdio: 'inherit' });
}

/** Turns the director at `pinDir` / `snapshot` into one of the older version; returns its program
 *  id. `globals`: .rodata values beyond the knobs and sizes (e.g. its lvs_synrecv key). */
export async function swapInOldDirector(objPath: string, pinDir: string, snapshot: string, globals: Record<string, Buffer> = {}): Promise<number> {
  const snap = readSnapshot(snapshot)!;
  const obj = BpfObject.inspect(objPath);
  // Maps of this build the older version does not have (the accepted-MAC maps): not pinned by it.
  const has = (m: string): boolean => { try { obj.mapDef(m); return true; } catch { return false; } };
  const absent = DIRECTOR_MAPS.filter((m) => !has(m));
  const shared = Object.fromEntries(DIRECTOR_MAPS.filter((m) => m !== 'lvs_reals' && m !== 'lvs_conns' && !absent.includes(m)).map((m) => [m, BpfMap.fromPin(`${pinDir}/${m}`)]));
  try {
    obj.configure({
      globals: { ...loadGlobals(DIRECTOR_SKELETON, { ...snap.knobs }, { ...snap.sizes }), ...globals }, maxEntries: mapSizes(DIRECTOR_SKELETON, { ...snap.sizes }), reuseMaps: shared,
    });
    await obj.load();
    const toOld = fieldMap(new BtfJson(DIRECTOR_OBJECT).struct('lvs_real')!, new BtfJson(objPath).struct('lvs_real')!, 'lvs_real');
    assert.deepEqual(toOld.problems, []);
    const reals = BpfMap.fromPin(`${pinDir}/lvs_reals`);
    try {
      const { keys, values } = reals.entries();
      obj.map('lvs_reals').updateMany(keys.map((k) => Buffer.from(k)), values.map((v) => convert(toOld.map!, v)));
    } finally {
      reals.close();
    }
    // rename(2) replaces a pin in one step (bpffs refuses dots in names).
    for (const m of ['lvs_reals', 'lvs_conns']) {
      pinObject(obj.map(m).fd, `${pinDir}/tmp_${m}`);
      renameSync(`${pinDir}/tmp_${m}`, `${pinDir}/${m}`);
    }
    const progFd = obj.progFd(DIRECTOR_SKELETON.program);
    pinObject(progFd, `${pinDir}/tmp_prog`);
    renameSync(`${pinDir}/tmp_prog`, `${pinDir}/prog_lvs_director`);
    for (const f of readdirSync(pinDir).filter((x) => x.startsWith('link_'))) {
      const link = XdpLink.fromPin(`${pinDir}/${f}`);
      try {
        link.update(progFd);
      } finally {
        link.close();
      }
    }
    for (const m of absent) rmSync(`${pinDir}/${m}`);
    const id = progInfo(progFd).id;
    snap.progId = id;
    snap.tool = OLD_TOOL;
    delete snap.abiVersion;
    writeSnapshot(snapshot, snap);
    return id;
  } finally {
    obj.close();
    for (const m of Object.values(shared)) m.close();
  }
}

/** A data plane counter summed over CPUs, read from the pinned lvs_counters (the CLI refuses a
 *  director of an older ABI; the counters' order is the same in every ABI). */
export function pinnedCounter(pinDir: string, name: string): bigint {
  const m = BpfMap.fromPin(`${pinDir}/lvs_counters`);
  try {
    const k = Buffer.alloc(4);
    k.writeUInt32LE(COUNTERS.findIndex((c) => c.name === name));
    return m.lookupPerCpu(k)!.reduce((n, v) => n + v.readBigUInt64LE(0), 0n);
  } finally {
    m.close();
  }
}
