// The load-time skeleton check refuses an object that differs from the generated skeleton (its
// BTF, maps, knobs, program or ABI version), naming what differs; knobs and sizes go in through
// the skeleton's typed tables; the ABI version is read back from a loaded program.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BpfMap, BpfObject, testRun } from '../../src/native/index.js';
import {
  checkAbi, loadDirector, runningAbiVersion, ABI_VERSION, DIRECTOR_OBJECT, DIRECTOR_SKELETON, DEFAULT_SIZES,
} from '../../src/dataplane/loader.js';
import { runningGlobal } from '../../src/abi/running.js';
import { COUNTERS } from '../../src/abi/generated.js';
import { DECAP_ABI_VERSION, DECAP_SKELETON } from '../../src/abi/decap-generated.js';
import { inspectDecap, DECAP_OBJECT } from '../../src/realserver/decap.js';
import { LayoutError } from '../../src/errors.js';
import type { AbiObject } from '../../src/abi/skeleton.js';

/** An object that answers like `obj` except where `over` says otherwise. */
function drifted(obj: AbiObject, over: Partial<AbiObject>): AbiObject {
  return {
    mapNames: () => obj.mapNames(), mapDef: (n) => obj.mapDef(n), progNames: () => obj.progNames(),
    getGlobal: (n) => obj.getGlobal(n), btfStruct: (n) => obj.btfStruct(n), btfEnum: (n) => obj.btfEnum(n),
    ...over,
  };
}

function layoutError(re: RegExp[]): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof LayoutError, String(e));
    for (const r of re) assert.match(e.message, r);
    return true;
  };
}

test('the built object passes; a drifted struct or counter is a LayoutError naming it', () => {
  const obj = BpfObject.inspect(DIRECTOR_OBJECT);
  try {
    checkAbi(obj);
    const bad = drifted(obj, {
      btfStruct: (n) => {
        const s = obj.btfStruct(n);
        return n === 'lvs_conn' ? { ...s, size: s.size + 8 } : s;
      },
      btfEnum: (n) => obj.btfEnum(n).map((v) => (v.name === 'LVS_C_FWD_TUN' ? { ...v, value: 99 } : v)),
    });
    assert.throws(() => checkAbi(bad), layoutError([/struct lvs_conn: size 32 in BTF, 24 here/, /counter FWD_TUN: index 99 in BTF/]));
  } finally {
    obj.close();
  }
});

test('a missing map, knob, program or struct, a changed map or another ABI version is a LayoutError naming it', () => {
  const obj = BpfObject.inspect(DIRECTOR_OBJECT);
  try {
    const bad = drifted(obj, {
      mapNames: () => obj.mapNames().filter((n) => n !== 'lvs_conns'),
      mapDef: (n) => (n === 'lvs_reals' ? { ...obj.mapDef(n), valueSize: 40, type: 1 } : obj.mapDef(n)),
      progNames: () => [],
      getGlobal: (n) => {
        if (n === 'cfg_enable_tun') throw new Error('no such global');
        return n === 'cfg_abi_version' ? Buffer.from([ABI_VERSION + 1, 0, 0, 0]) : obj.getGlobal(n);
      },
      btfStruct: (n) => {
        if (n === 'lvs_pin') throw new Error('not found');
        return obj.btfStruct(n);
      },
    });
    assert.throws(() => checkAbi(bad, 'old.o'), layoutError([
      /^old\.o does not match the control plane/,
      /map lvs_conns: not in the object/,
      /map lvs_reals: type HASH in the object, ARRAY here/,
      /map lvs_reals: value 40 bytes in the object, 64 here \(lvs_real\)/,
      /program lvs_director: not in the object/,
      /global cfg_enable_tun: not in the object's \.rodata/,
      new RegExp(`cfg_abi_version: ABI version ${ABI_VERSION + 1} in the object, ${ABI_VERSION} here`),
      /struct lvs_pin: not in the object's BTF/,
    ]));
  } finally {
    obj.close();
  }
});

test('loading an object that is not a director fails before load, naming what it lacks', async () => {
  await assert.rejects(loadDirector({ path: DECAP_OBJECT }), layoutError([
    /map lvs_services: not in the object/, /global cfg_enable_ipv6: not in the object's \.rodata/,
    /program lvs_director: not in the object/, /enum lvs_counter: not in the object's BTF/,
  ]));
  assert.throws(() => inspectDecap(DIRECTOR_OBJECT), layoutError([/map lvs_decap_vips: not in the object/, /global cfg_decap_abi_version/]));
});

test('knobs and sizes go in through the skeleton; the ABI version is read back from the running program', async () => {
  const d = await loadDirector({ knobs: { ipv6: false, frag: false }, sizes: { maxServices: 8, maxConns: 512 } });
  try {
    assert.equal(runningAbiVersion(d.progFd), ABI_VERSION);
    const knobs = Object.fromEntries(DIRECTOR_SKELETON.globals.filter((g) => g.role === 'knob').map((g) => [g.knob, runningGlobal(d.progFd, g.name)]));
    assert.deepEqual(knobs, { ipv6: 0, tun: 1, icmp: 1, frag: 0 });
    const max = (fd: number) => BpfMap.fromFd(fd, { owned: false, keepAlive: d.obj }).maxEntries;
    assert.equal(max(d.maps.lvs_services), 8);
    assert.equal(max(d.maps.lvs_tables), 16);
    assert.equal(max(d.maps.lvs_rr_cursor), 8);
    assert.equal(max(d.maps.lvs_conns), 512);
    assert.equal(max(d.maps.lvs_reals), DEFAULT_SIZES.maxReals);
    // The program really runs with IPv6 off: an IPv6 frame is passed (XDP_PASS = 2), counted as
    // pass_family_disabled (with IPv6 on it would be pass_not_vip).
    const v6 = Buffer.alloc(14 + 40 + 8);
    v6.writeUInt16BE(0x86dd, 12);
    v6[14] = 0x60;
    v6.writeUInt16BE(8, 14 + 4);
    v6[14 + 6] = 17;
    assert.equal(testRun(d.progFd, v6).retval, 2);
    const key = Buffer.alloc(4);
    key.writeUInt32LE(COUNTERS.find((c) => c.name === 'PASS_FAMILY_DISABLED')!.index);
    const counters = BpfMap.fromFd(d.maps.lvs_counters, { owned: false, keepAlive: d.obj });
    assert.equal((counters.lookupPerCpu(key) ?? []).reduce((n, b) => n + b.readBigUInt64LE(0), 0n), 1n);
  } finally {
    d.obj.close();
  }
});

test('the decapsulator: same check, and its ABI version read back once loaded', async () => {
  const obj = inspectDecap();
  try {
    await obj.load();
    const progFd = obj.progFd(DECAP_SKELETON.program);
    assert.equal(runningAbiVersion(progFd, DECAP_SKELETON.version.global), DECAP_ABI_VERSION);
    // Not the director's: no cfg_abi_version in its .rodata.
    assert.equal(runningAbiVersion(progFd), undefined);
  } finally {
    obj.close();
  }
});
