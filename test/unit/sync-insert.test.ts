// Connection sync, backup side, the pure parts (src/sync/insert.ts): IPVS states to lvs-xdp's,
// the keys of lvs_conns (client and LVS-NAT reply) and lvs_persist byte by byte, message timeouts
// as timestamps, IPVS's rule for an entry already there, and the lookups of an applied
// configuration (service by mark, tuple or all-ports; realserver by address).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ABI } from '../../src/abi/generated.js';
import { decode, FLOW_KEY, PERSIST_KEY } from '../../src/abi/layout.js';
import { buildPlan, emptyApplied } from '../../src/director/plan.js';
import { realId } from '../../src/dataplane/compile.js';
import type { DirectorConfig } from '../../src/model/types.js';
import {
  buildSyncIndex, connDecision, connExpired, connStamp, flowKeyOf, persistKeyOf, replyKeyOf, syncedState, syncServiceOf,
  templateLive, templateStamp,
} from '../../src/sync/insert.js';
import { IP_VS_CONN_F, IP_VS_TCP_S, IPPROTO, type SyncConn } from '../../src/sync/proto.js';

const S = 1_000_000_000n;
const b16 = (...bytes: number[]) => { const b = new Uint8Array(16); b.set(bytes); return b; };

test('IPVS states become the lvs-xdp state with the same timeout role; templates and other protocols hold none', () => {
  const tcp = (state: number) => syncedState({ protocol: IPPROTO.TCP, state, flags: 0 });
  assert.equal(tcp(IP_VS_TCP_S.ESTABLISHED), ABI.LVS_CS_ESTABLISHED);
  for (const s of ['NONE', 'SYN_SENT', 'SYN_RECV', 'LISTEN', 'SYNACK'] as const) assert.equal(tcp(IP_VS_TCP_S[s]), ABI.LVS_CS_SYN_RECV, s);
  for (const s of ['FIN_WAIT', 'TIME_WAIT', 'CLOSE_WAIT', 'LAST_ACK'] as const) assert.equal(tcp(IP_VS_TCP_S[s]), ABI.LVS_CS_FIN_WAIT, s);
  assert.equal(tcp(IP_VS_TCP_S.CLOSE), ABI.LVS_CS_CLOSE);
  assert.equal(tcp(11), null, 'past IP_VS_TCP_S_LAST');
  assert.equal(syncedState({ protocol: IPPROTO.UDP, state: 0, flags: 0 }), ABI.LVS_CS_UDP);
  assert.equal(syncedState({ protocol: IPPROTO.SCTP, state: 8, flags: 0 }), null);
  assert.equal(syncedState({ protocol: IPPROTO.TCP, state: 1, flags: IP_VS_CONN_F.TEMPLATE }), null);
});

test('keys: the client flow, the LVS-NAT reply (RIP:rport -> client, dir 1) and the template (masked client, service, family)', () => {
  const client = b16(198, 51, 100, 7);
  const vip = b16(10, 0, 0, 1);
  const k = flowKeyOf(client, vip, 40000, 80, 6, 4);
  assert.equal(k.length, 40);
  assert.equal(k.toString('hex'),
    'c6336407000000000000000000000000' + '0a000001000000000000000000000000' + '9c40' + '0050' + '06' + '04' + '0000');
  const rip = b16(172, 16, 0, 2);
  const r = decode(FLOW_KEY, replyKeyOf(client, 40000, 80, 6, 4, { addr: rip, port: 8080 }));
  assert.deepEqual([r.saddr, r.daddr, r.sport, r.dport, r.proto, r.family, r.dir], [rip, client, 8080, 40000, 6, 4, ABI.LVS_DIR_REPLY]);
  assert.equal(decode(FLOW_KEY, replyKeyOf(client, 40000, 80, 6, 4, { addr: rip, port: 0 })).sport, 80, 'port 0: the client\'s destination port is kept');
  const mask = b16(255, 255, 255, 0);
  const p = persistKeyOf(b16(198, 51, 100, 7), { svcId: 3, family: 4, persistMask: mask });
  assert.deepEqual(decode(PERSIST_KEY, p), { caddr: b16(198, 51, 100, 0), svc_id: 3, family: 4, pad: new Uint8Array(3) });
});

test('timestamps: a shorter message timeout back-dates a connection, a longer one cannot; a template takes any', () => {
  const now = 10_000n * S;
  assert.equal(connStamp(now, 60, 900), now - 840n * S);
  assert.equal(connStamp(now, 900, 900), now);
  assert.equal(connStamp(now, 2000, 900), now, 'held to the state\'s timeout: a future stamp reads as old');
  assert.equal(connStamp(now, 0, 900), now, 'no timeout (version 0): the state\'s');
  assert.equal(connStamp(now, 60, 0), now, 'a state that never expires');
  // the entry then expires exactly `timeout` after `now`
  assert.equal(connExpired(now + 60n * S, connStamp(now, 60, 900), 900), false);
  assert.equal(connExpired(now + 60n * S + 1n, connStamp(now, 60, 900), 900), true);
  assert.equal(connExpired(now, now + S, 900), true, 'a stamp in the future is old (u64 age)');
  assert.equal(connExpired(now + 10_000n * S, now, 0), false, 'timeout 0 never expires');
  assert.equal(templateStamp(now, 600, 300), now + 300n * S);
  assert.equal(templateStamp(now, 30, 300), now - 270n * S);
  assert.equal(templateStamp(now, 0, 300), now);
  assert.equal(templateLive(now + 600n * S, templateStamp(now, 600, 300), 300), true);
  assert.equal(templateLive(now + 600n * S + 1n, templateStamp(now, 600, 300), 300), false);
});

test('an entry already there: IPVS replaces it with an active entry only; stale entries do not count', () => {
  const now = 5000n * S;
  const timeouts = [0, 60, 900, 120, 10, 300];
  const slots = new Map([[1, 7], [2, 8]]);
  const est = ABI.LVS_CS_ESTABLISHED;
  const active = { real: 2, gen: 8, flags: IP_VS_CONN_F.DROUTE };
  const inactive = { ...active, flags: IP_VS_CONN_F.DROUTE | IP_VS_CONN_F.INACTIVE };
  const localA = { real: 1, gen: 7, state: est, lastSeen: now - S };
  assert.equal(connDecision(null, slots, timeouts, now, active), 'insert');
  assert.equal(connDecision(localA, slots, timeouts, now, active), 'replace');
  assert.equal(connDecision(localA, slots, timeouts, now, inactive), 'conflict');
  assert.equal(connDecision({ ...localA, real: 2, gen: 8 }, slots, timeouts, now, inactive), 'update');
  assert.equal(connDecision({ ...localA, gen: 6 }, slots, timeouts, now, inactive), 'insert', 'its slot was reused: not the flow\'s any more');
  assert.equal(connDecision({ ...localA, lastSeen: now - 901n * S }, slots, timeouts, now, inactive), 'insert', 'expired');
});

test('lookups of an applied configuration: by mark first, then the port service, then all ports; realservers by address', () => {
  const desired: DirectorConfig = {
    services: [
      { protocol: 'tcp', vip: '10.0.0.1', port: 80, scheduler: 'rr', flags: [], ops: false, persistence: { timeout: 120, netmask: '255.255.255.0' },
        realservers: [{ address: '192.168.1.11', port: 80, weight: 1, method: 'dr' }, { address: '192.168.1.12', port: 80, weight: 1, method: 'tun' }] },
      { protocol: 'tcp', vip: '10.0.0.1', port: 0, scheduler: 'rr', flags: [], ops: false,
        realservers: [{ address: '172.16.0.2', port: 0, weight: 1, method: 'nat' }] },
      { fwmark: 9, protocol: 'tcp', vip: '0.0.0.0', port: 0, scheduler: 'rr', flags: [], ops: false,
        realservers: [{ address: '192.168.1.13', port: 0, weight: 1, method: 'dr' }] },
    ],
    marks: [{ mark: 9, match: [{ protocol: 'tcp', address: '10.0.9.0/24', ports: [{ from: 80, to: 80 }] }] }],
  };
  const l2 = new Map(desired.services.flatMap((s) => s.realservers.map((r) => [realId(s, r), { mac: '02:00:00:00:00:01' }] as const)));
  const plan = buildPlan({ running: emptyApplied(), desired, l2, tunnel: { source4: '192.168.1.1' }, limits: { maxServices: 8, maxReals: 8, maxTableSize: 131071 } });
  const entries = new Map(plan.compiled!.services.map((s) => [s.key.toString('hex'), s.value(plan.target.tableSlots![s.id]!)]));
  const ix = buildSyncIndex(plan.target, (k) => entries.get(k.toString('hex')) ?? null);
  const conn = (o: Partial<SyncConn>): SyncConn => ({
    family: 4, protocol: 6, flags: 0, state: 1, cport: 1, vport: 80, dport: 80, fwmark: 0, timeout: 0, caddr: '1.2.3.4', vaddr: '10.0.0.1', daddr: '192.168.1.11', ...o,
  });
  const vip = b16(10, 0, 0, 1);
  const port80 = syncServiceOf(ix, conn({}), vip)!;
  assert.equal(port80.id, 'tcp 10.0.0.1:80');
  assert.equal(port80.persistTimeout, 120);
  assert.deepEqual([...port80.persistMask.slice(0, 4)], [255, 255, 255, 0], 'the mask as the service entry holds it');
  assert.deepEqual([...port80.reals.values()].map((r) => r.method), ['dr', 'tun']);
  assert.equal(syncServiceOf(ix, conn({ vport: 8080 }), vip)!.id, 'tcp 10.0.0.1:0');
  assert.equal(syncServiceOf(ix, conn({ fwmark: 9 }), vip)!.id, 'fwm 9');
  assert.equal(syncServiceOf(ix, conn({ fwmark: 4 }), vip)!.id, 'tcp 10.0.0.1:80', 'a mark without a service: the port service (IPVS)');
  assert.equal(syncServiceOf(ix, conn({ protocol: 17 }), vip), undefined);
  assert.equal(syncServiceOf(ix, conn({ family: 6 }), vip)?.id, 'tcp 10.0.0.1:80', 'family is checked by the caller against the service');
  const nat = syncServiceOf(ix, conn({ vport: 8080 }), vip)!.reals.values().next().value!;
  assert.deepEqual([nat.method, nat.port, nat.index], ['nat', 0, plan.target.allocation.reals['tcp 10.0.0.1:0/172.16.0.2']!.index]);
  assert.equal(ix.slotGen.size, 4);
});
