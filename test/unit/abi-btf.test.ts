// The TypeScript layouts and counter names must agree with the compiled object's BTF.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BtfJson } from '../../src/abi/btf.js';
import { layoutDrift, encode, decode, REAL, STRUCTS } from '../../src/abi/layout.js';
import { COUNTERS } from '../../src/abi/generated.js';

const btf = new BtfJson('bpf/lvs_director.o');

test('every shared struct matches BTF in size and field offsets', () => {
  assert.deepEqual(layoutDrift((n) => btf.struct(n)), []);
  assert.equal(STRUCTS.length, 19);
});

test('a drifted description is reported, not ignored', () => {
  const lying = (n: string) => {
    const s = btf.struct(n);
    if (s && n === 'lvs_real') return { ...s, members: s.members.map((m) => (m.name === 'gen' ? { ...m, offset: m.offset + 4 } : m)) };
    return s;
  };
  const drift = layoutDrift(lying);
  assert.equal(drift.length, 1);
  assert.match(drift[0]!, /lvs_real\.gen: offset/);
});

test('counter list generated from the header equals enum lvs_counter in BTF', () => {
  const values = btf.enumValues('lvs_counter');
  assert.ok(values);
  const expected = COUNTERS.map((c) => ({ name: `LVS_C_${c.name}`, value: c.index }));
  expected.push({ name: 'LVS_C_MAX', value: COUNTERS.length });
  assert.deepEqual(values, expected);
});

test('encode/decode round trip', () => {
  const v = { addr: Uint8Array.from([10, 0, 0, 1]), family: 4, method: 1, flags: 3, gen: 7, ifindex: 0, svc_id: 5 };
  const buf = encode(REAL, v);
  assert.equal(buf.length, 64);
  const back = decode(REAL, buf);
  assert.equal(back.gen, 7);
  assert.equal(back.svc_id, 5);
  assert.deepEqual([...(back.addr as Uint8Array)].slice(0, 4), [10, 0, 0, 1]);
});

test('README counter glossary lists every counter of the header, in order', async () => {
  const { readFileSync } = await import('node:fs');
  const text = readFileSync('README.md', 'utf8');
  const block = text.split('<!-- counters:begin -->')[1]?.split('<!-- counters:end -->')[0] ?? '';
  const names = [...block.matchAll(/^\| `([a-z0-9_]+)` \|/gm)].map((m) => m[1]!.toUpperCase());
  assert.deepEqual(names, COUNTERS.map((c) => c.name));
});

// ---- the generated skeletons (scripts/gen-abi.mjs) against the built objects' BTF ----------

import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import {
  ABI, ABI_VERSION, CONN_STATES, STATE_NAMES, TIMEOUT_STATES, DIRECTOR_MAPS, DIRECTOR_SKELETON, DEFAULT_SIZES,
  SMALL_BOX_SIZES, DEFAULT_KNOBS,
} from '../../src/abi/generated.js';
import { DECAP_SKELETON, DECAP_ABI_VERSION } from '../../src/abi/decap-generated.js';
import { CFG } from '../../src/abi/layout.js';
import { MapType } from '../../src/native/constants.js';
import type { Skeleton } from '../../src/abi/skeleton.js';
import { DECAP_STRUCTS } from '../../src/realserver/decap-abi.js';

interface Gen {
  directorSource(abi: string, maps: string, prog: string): string;
  decapSource(decap: string, maps: string, prog: string): { source: string };
}
const gen = async () => (await import(pathToFileURL('scripts/gen-abi.mjs').href)) as Gen;
const read = (p: string) => readFileSync(p, 'utf8');

/** The skeleton's maps and .rodata globals equal the object's .maps and .rodata sections. */
function assertSkeletonIsBtf(skel: Skeleton, obj: BtfJson, layouts: readonly { name: string; size: number }[]) {
  const scalar: Record<string, number> = { u8: 1, u16: 2, u32: 4, u64: 8, none: 0 }; // none: a ring buffer's key and value
  const sizeOf = (t: string) => scalar[t] ?? layouts.find((d) => d.name === t)?.size ?? obj.struct(t)?.size;
  const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);
  assert.deepEqual(
    obj.maps().sort(byName),
    skel.maps.map((m) => ({ name: m.name, type: MapType[m.type], maxEntries: m.maxEntries, keySize: sizeOf(m.key), valueSize: sizeOf(m.value) })).sort(byName),
  );
  for (const g of skel.globals) assert.equal(obj.datasecVar('.rodata', g.name)?.size, g.size, g.name);
  for (const e of skel.enums) {
    assert.deepEqual(obj.enumValues(e.name), [...e.values.map((v, i) => ({ name: `${e.prefix}${v}`, value: i })), { name: e.max, value: e.values.length }]);
  }
  assert.deepEqual([...skel.structs].sort(), layouts.map((d) => d.name).sort());
}

test('director skeleton: maps, sizes, knobs, structs and enums equal bpf/lvs_director.o BTF', () => {
  assertSkeletonIsBtf(DIRECTOR_SKELETON, btf, STRUCTS);
  // Pinned maps: all but the private clock cache, in the order they are pinned.
  assert.deepEqual([...DIRECTOR_MAPS], DIRECTOR_SKELETON.maps.filter((m) => !m.private).map((m) => m.name));
  assert.ok(!(DIRECTOR_MAPS as readonly string[]).includes('lvs_clock'));
  // Defaults are what the object was compiled with; tables are two per service.
  const max = Object.fromEntries(btf.maps().map((m) => [m.name, m.maxEntries]));
  assert.equal(max.lvs_services, DEFAULT_SIZES.maxServices);
  assert.equal(max.lvs_tables, 2 * DEFAULT_SIZES.maxServices);
  assert.equal(max.lvs_conns, DEFAULT_SIZES.maxConns);
  assert.deepEqual(SMALL_BOX_SIZES, { maxServices: 64, maxReals: 512, maxConns: 16384, maxPersist: 4096, maxFrags: 1024, maxStrays: 1024, maxSyncRing: 65536, maxSynRecv: 2048, maxFlowcache: 2048, maxCaptureRing: 131072 });
  assert.deepEqual(DEFAULT_KNOBS, { ipv6: true, tun: true, icmp: true, frag: true });
  assert.equal(ABI_VERSION, ABI.LVS_ABI_VERSION);
});

test('connection states and the timeout order come from enum lvs_conn_state', () => {
  assert.deepEqual(btf.enumValues('lvs_conn_state')?.map((v) => v.name), [...STATE_NAMES.map((n) => `LVS_CS_${n}`), 'LVS_CS_MAX']);
  assert.deepEqual([...STATE_NAMES], ['NONE', 'SYN_RECV', 'ESTABLISHED', 'FIN_WAIT', 'CLOSE', 'UDP']);
  assert.deepEqual([...TIMEOUT_STATES], [null, 'synRecv', 'tcp', 'tcpFin', 'close', 'udp']);
  assert.deepEqual(CONN_STATES.map((s) => s.value), STATE_NAMES.map((_, i) => i));
  assert.equal(ABI.LVS_CS_UDP, STATE_NAMES.indexOf('UDP'));
  // lvs_cfg.timeout_s holds one u32 per state.
  const timeouts = btf.struct('lvs_cfg')?.members.find((m) => m.name === 'timeout_s');
  assert.equal(timeouts?.size, TIMEOUT_STATES.length * 4);
  assert.equal(CFG.fields.find((f) => f.name === 'timeout_s')?.size, TIMEOUT_STATES.length * 4);
});

test('decapsulator skeleton equals bpf/lvs_decap.o BTF', () => {
  assertSkeletonIsBtf(DECAP_SKELETON, new BtfJson('bpf/lvs_decap.o'), DECAP_STRUCTS);
  assert.equal(DECAP_SKELETON.version.value, DECAP_ABI_VERSION);
});

test('the generated files are what the headers generate now', async () => {
  const g = await gen();
  assert.equal(read('src/abi/generated.ts'), g.directorSource(read('bpf/lvs_abi.h'), read('bpf/lvs_maps.h'), read('bpf/lvs_director.bpf.c')));
  assert.equal(read('src/abi/decap-generated.ts'), g.decapSource(read('bpf/lvs_decap.h'), read('bpf/lvs_decap_maps.h'), read('bpf/lvs_decap.bpf.c')).source);
  assert.ok(existsSync('bpf/lvs_maps.h'));
});

test('a changed header changes the skeleton: a new map, knob, size and state appear', async () => {
  const g = await gen();
  const maps = read('bpf/lvs_maps.h')
    .replace('#define LVS_DEFAULT_MAX_FRAGS    8192', '#define LVS_DEFAULT_MAX_FRAGS    8192\n#define LVS_DEFAULT_MAX_QUOTAS 77')
    .replace('const volatile __u8 cfg_enable_frag = 1;', 'const volatile __u8 cfg_enable_frag = 1;\nconst volatile __u8 cfg_enable_nat = 0; /* no NAT */')
    .replace('#endif /* LVS_MAPS_H */', `struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, LVS_DEFAULT_MAX_QUOTAS);
	__type(key, __u32);
	__type(value, __u64);
} lvs_quotas SEC(".maps");
#endif`);
  const abi = read('bpf/lvs_abi.h').replace('X(UDP, udp, "UDP flow")', 'X(UDP, udp, "UDP flow") \\\n\tX(TIME_WAIT, tcpTimeWait, "both FINs seen")');
  const src = g.directorSource(abi, maps, read('bpf/lvs_director.bpf.c'));
  assert.match(src, /"lvs_vip_filter",\n(?: {2}"\w+",\n)* {2}"lvs_quotas",\n\] as const/); // appended last
  assert.match(src, /maxQuotas: number;/);
  assert.match(src, /nat: boolean;/);
  assert.match(src, /export const DEFAULT_KNOBS: Knobs = \{ ipv6: true, tun: true, icmp: true, frag: true, nat: false \}/);
  assert.match(src, /TIMEOUT_STATES = \[[^\]]*"tcpTimeWait"/);
  // An unclassified global is refused rather than silently left out of the skeleton.
  assert.throws(() => g.directorSource(read('bpf/lvs_abi.h'), maps.replace('cfg_enable_nat', 'cfg_nat_mode'), read('bpf/lvs_director.bpf.c')), /cfg_nat_mode/);
});

test('README knob table lists the skeleton\'s knobs with their defaults', () => {
  const block = read('README.md').split('<!-- knobs:begin -->')[1]?.split('<!-- knobs:end -->')[0] ?? '';
  const rows = [...block.matchAll(/^\| `(\w+)` \| (\d+) \|/gm)].map((m) => [m[1], Number(m[2])]);
  assert.deepEqual(rows, DIRECTOR_SKELETON.globals.filter((g) => g.role === 'knob').map((g) => [g.name, g.default]));
});
