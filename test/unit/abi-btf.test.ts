// The TypeScript layouts and counter names must agree with the compiled object's BTF.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BtfJson } from '../../src/abi/btf.js';
import { layoutDrift, encode, decode, REAL, STRUCTS } from '../../src/abi/layout.js';
import { COUNTERS } from '../../src/abi/generated.js';

const btf = new BtfJson('bpf/lvs_director.o');

test('every shared struct matches BTF in size and field offsets', () => {
  assert.deepEqual(layoutDrift((n) => btf.struct(n)), []);
  assert.equal(STRUCTS.length, 10);
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
  assert.equal(buf.length, 48);
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
