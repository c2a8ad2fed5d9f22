import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileDirector, emptyAllocation } from '../../src/dataplane/compile.js';
import { decode, SVC, REAL } from '../../src/abi/layout.js';
import { ABI } from '../../src/abi/generated.js';
import type { DirectorConfig, VirtualService } from '../../src/model/types.js';

const limits = { maxServices: 4, maxReals: 8, maxTableSize: 4093 };
const svc = (vip: string, port: number, reals: string[], extra: Partial<VirtualService> = {}): VirtualService => ({
  protocol: 'tcp', vip, port, scheduler: 'mh', flags: [], ops: false, tableSize: 251,
  realservers: reals.map((a) => ({ address: a, port, weight: 1, method: 'dr' as const, mac: '02:00:00:00:00:01' })),
  ...extra,
});

test('service and realserver ids are stable across recompiles and reuse the lowest free slot', () => {
  const a: DirectorConfig = { services: [svc('10.0.0.1', 80, ['192.168.1.1', '192.168.1.2']), svc('10.0.0.2', 80, ['192.168.1.3'])] };
  const c1 = compileDirector(a, () => undefined, limits);
  assert.deepEqual(Object.values(c1.allocation.services), [0, 1]);
  const b: DirectorConfig = { services: [svc('10.0.0.2', 80, ['192.168.1.3', '192.168.1.9'])] };
  const c2 = compileDirector(b, () => undefined, limits, c1.allocation);
  assert.equal(c2.allocation.services['tcp 10.0.0.2:80'], 1);
  assert.equal(c2.allocation.reals['tcp 10.0.0.2:80/192.168.1.3']!.index, 2);
  const added = c2.allocation.reals['tcp 10.0.0.2:80/192.168.1.9']!;
  assert.equal(added.index, 0, 'lowest free slot reused');
  assert.ok(added.gen > Math.max(...Object.values(c1.allocation.reals).map((r) => r.gen)), 'with a new generation');
});

test('flags, hash fields and persistence mask are compiled from the scheduler and options', () => {
  const c = compileDirector({ services: [
    svc('10.0.0.1', 53, ['192.168.1.1'], { protocol: 'udp', scheduler: 'sh', flags: ['sh-port'], ops: true }),
    svc('10.0.0.2', 80, ['192.168.1.1'], { scheduler: 'wrr', persistence: { timeout: 600, netmask: '255.255.255.0' } }),
  ] }, () => undefined, limits);
  const v0 = decode(SVC, c.services[0]!.value(0));
  assert.equal(v0.hash_fields, ABI.LVS_HF_SADDR | ABI.LVS_HF_SPORT);
  assert.equal(v0.flags, ABI.LVS_SVC_F_OPS);
  const v1 = decode(SVC, c.services[1]!.value(3));
  assert.equal(v1.flags, ABI.LVS_SVC_F_ROTATE | ABI.LVS_SVC_F_PERSIST);
  assert.equal(v1.table_slot, 3);
  assert.equal(v1.persist_timeout, 600);
  assert.deepEqual([...(v1.persist_mask as Uint8Array)].slice(0, 5), [255, 255, 255, 0, 0]);
});

test('weight 0 marks the realserver quiesced and gives it no slots', () => {
  const s = svc('10.0.0.1', 80, ['192.168.1.1', '192.168.1.2']);
  s.realservers[0]!.weight = 0;
  const c = compileDirector({ services: [s] }, () => undefined, limits);
  assert.equal((decode(REAL, c.reals[0]!.value).flags as number) & ABI.LVS_REAL_F_QUIESCED, ABI.LVS_REAL_F_QUIESCED);
  assert.ok(c.services[0]!.table.every((i) => i === c.reals[1]!.index));
});

test('clear errors: unresolvable MAC, too many services, too many realservers, table too large', () => {
  const noMac = svc('10.0.0.1', 80, ['192.168.1.1']);
  delete noMac.realservers[0]!.mac;
  assert.throws(() => compileDirector({ services: [noMac] }, () => undefined, limits), /tcp 10\.0\.0\.1:80: realserver 192\.168\.1\.1: no MAC address/);
  const many = Array.from({ length: 5 }, (_, i) => svc(`10.0.0.${i + 1}`, 80, []));
  assert.throws(() => compileDirector({ services: many }, () => undefined, limits), /5 services, .* at most 4/);
  const reals = Array.from({ length: 9 }, (_, i) => `192.168.1.${i + 1}`);
  assert.throws(() => compileDirector({ services: [svc('10.0.0.1', 80, reals)] }, () => undefined, limits), /9 realservers .* at most 8/);
  assert.throws(() => compileDirector({ services: [svc('10.0.0.1', 80, ['192.168.1.1'], { tableSize: 8191 })] }, () => undefined, limits), /8191 slots/);
  assert.deepEqual(emptyAllocation().nextGen, 1);
});
