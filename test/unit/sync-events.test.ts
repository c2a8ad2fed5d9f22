// Connection sync events decoded into IPVS's sync entries (src/sync/events.ts), without root:
// records are built with the ABI layout (struct lvs_sync_event) as the data plane writes them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encode, SYNC_EVENT } from '../../src/abi/layout.js';
import { ABI } from '../../src/abi/generated.js';
import { parseAddress } from '../../src/model/address.js';
import { decodeSyncEvent, syncConnsOf, syncConnOf, templateOf } from '../../src/sync/events.js';
import { IP_VS_CONN_F, IP_VS_TCP_S, IP_VS_UDP_S_NORMAL, encode as encodeMessage, decode as decodeMessage } from '../../src/sync/proto.js';

const TIMEOUTS = [0, 60, 900, 120, 10, 300]; // NONE SYN_RECV ESTABLISHED FIN_WAIT CLOSE UDP
const b16 = (a: string) => {
  const p = parseAddress(a)!;
  const out = new Uint8Array(16);
  out.set(p.family === 4 ? p.bytes.subarray(0, 4) : p.bytes);
  return out;
};

interface Rec {
  caddr?: string; vaddr?: string; daddr?: string; pcaddr?: string; cport?: number; vport?: number; rport?: number; proto?: number;
  family?: number; dfamily?: number; method?: number; state?: number; flags?: number; fwmark?: number; persist?: number;
}
function record(r: Rec = {}): Buffer {
  const family = r.family ?? 4;
  return encode(SYNC_EVENT, {
    caddr: b16(r.caddr ?? '198.51.100.7'), vaddr: b16(r.vaddr ?? '10.0.0.1'), daddr: b16(r.daddr ?? '192.168.1.10'),
    pcaddr: b16(r.pcaddr ?? r.caddr ?? '198.51.100.7'), cport: r.cport ?? 40000, vport: r.vport ?? 80, rport: r.rport ?? 0,
    proto: r.proto ?? 6, family, dfamily: r.dfamily ?? family, method: r.method ?? ABI.LVS_FWD_DR,
    state: r.state ?? ABI.LVS_CS_ESTABLISHED, flags: r.flags ?? 0, fwmark: r.fwmark ?? 0, persist_timeout: r.persist ?? 0,
  });
}

test('a record decodes field by field (addresses canonical, ports host order)', () => {
  const e = decodeSyncEvent(record({ family: 6, caddr: '2001:db8::7', vaddr: '2001:db8::1', daddr: '2001:db8:1::10', pcaddr: '2001:db8::', flags: ABI.LVS_SYNC_F_PERSIST, persist: 300, rport: 8080, method: ABI.LVS_FWD_NAT, proto: 17, state: ABI.LVS_CS_UDP, cport: 5353, vport: 53 }));
  assert.deepEqual(e, {
    family: 6, proto: 17, caddr: '2001:db8::7', cport: 5353, vaddr: '2001:db8::1', vport: 53, daddr: '2001:db8:1::10', dfamily: 6,
    rport: 8080, method: 'nat', state: 'UDP', fwmark: 0, persistent: true, allPorts: false, pcaddr: '2001:db8::', persistTimeout: 300,
  });
  assert.throws(() => decodeSyncEvent(record().subarray(0, 40)), RangeError);
});

test('connections: flags and state as IPVS has them, dport the realserver\'s, timeout the state\'s', () => {
  const dr = syncConnOf(decodeSyncEvent(record()), TIMEOUTS)!;
  assert.deepEqual(dr, {
    family: 4, protocol: 6, flags: IP_VS_CONN_F.DROUTE, state: IP_VS_TCP_S.ESTABLISHED, cport: 40000, vport: 80, dport: 80, fwmark: 0,
    timeout: 900, caddr: '198.51.100.7', vaddr: '10.0.0.1', daddr: '192.168.1.10',
  });
  const fin = syncConnOf(decodeSyncEvent(record({ method: ABI.LVS_FWD_TUN, state: ABI.LVS_CS_FIN_WAIT })), TIMEOUTS)!;
  assert.deepEqual([fin.flags, fin.state, fin.timeout], [IP_VS_CONN_F.TUNNEL | IP_VS_CONN_F.INACTIVE, IP_VS_TCP_S.FIN_WAIT, 120]);
  // LVS-NAT is IPVS's MASQ; its realserver port is the entry's dport.
  const nat = syncConnOf(decodeSyncEvent(record({ method: ABI.LVS_FWD_NAT, rport: 8080, proto: 17, state: ABI.LVS_CS_UDP })), TIMEOUTS)!;
  assert.deepEqual([nat.flags, nat.state, nat.dport, nat.vport, nat.timeout], [IP_VS_CONN_F.MASQ | IP_VS_CONN_F.INACTIVE, IP_VS_UDP_S_NORMAL, 8080, 80, 300]);
  // Never sent: a state IPVS does not sync from lvs-xdp (NONE), an unknown method, a realserver
  // of the other family (one entry, one address family).
  assert.equal(syncConnOf(decodeSyncEvent(record({ state: ABI.LVS_CS_NONE })), TIMEOUTS), null);
  assert.equal(syncConnOf(decodeSyncEvent(record({ method: 9 })), TIMEOUTS), null);
  assert.equal(syncConnOf(decodeSyncEvent(record({ dfamily: 6, daddr: '2001:db8::10' })), TIMEOUTS), null);
});

test('templates as ip_vs_sched_persist makes them: port service, all-ports, FTP, firewall mark', () => {
  const persist = { flags: ABI.LVS_SYNC_F_PERSIST, persist: 360, pcaddr: '198.51.100.0' };
  const tpl = (r: Rec) => templateOf(decodeSyncEvent(record({ ...persist, ...r })))!;
  const port = tpl({ vport: 443 });
  assert.deepEqual(port, {
    family: 4, protocol: 6, flags: IP_VS_CONN_F.TEMPLATE | IP_VS_CONN_F.DROUTE | IP_VS_CONN_F.INACTIVE, state: 0, cport: 0, vport: 443,
    dport: 443, fwmark: 0, timeout: 360, caddr: '198.51.100.0', vaddr: '10.0.0.1', daddr: '192.168.1.10',
  });
  assert.deepEqual([tpl({ vport: 8080, flags: ABI.LVS_SYNC_F_PERSIST | ABI.LVS_SYNC_F_ALLPORTS }).vport, tpl({ vport: 8080, flags: ABI.LVS_SYNC_F_PERSIST | ABI.LVS_SYNC_F_ALLPORTS }).dport], [0, 0]);
  assert.deepEqual([tpl({ vport: 21 }).vport, tpl({ vport: 21 }).dport], [0, 0]);
  const mark = tpl({ fwmark: 0x01020304 });
  assert.deepEqual([mark.protocol, mark.vaddr, mark.vport, mark.dport, mark.fwmark], [0, '1.2.3.4', 0, 0, 0x01020304]);
  const mark6 = tpl({ fwmark: 5, family: 6, caddr: '2001:db8::7', vaddr: '2001:db8::1', daddr: '2001:db8::10', pcaddr: '2001:db8::' });
  assert.equal(mark6.vaddr, '0:5::');
  assert.equal(templateOf(decodeSyncEvent(record())), null, 'not persistent: no template');
});

test('a batch: each connection then its template, a template once per batch; encodable as a sync message', () => {
  const persist = { flags: ABI.LVS_SYNC_F_PERSIST, persist: 300 };
  const batch = [
    record({ ...persist, cport: 1 }), record({ ...persist, cport: 2 }), record({ cport: 3 }),
    record({ ...persist, cport: 4, caddr: '198.51.100.8', pcaddr: '198.51.100.8' }),
    record({ ...persist, cport: 5, state: ABI.LVS_CS_SYN_RECV }), // never reported by the data plane, still encodable
  ].map(decodeSyncEvent);
  const conns = syncConnsOf(batch, TIMEOUTS);
  const tpl = (c: { flags: number }) => (c.flags & IP_VS_CONN_F.TEMPLATE ? 'T' : 'C');
  assert.deepEqual(conns.map((c) => `${tpl(c)}${c.cport}:${c.caddr}`), [
    'C1:198.51.100.7', 'T0:198.51.100.7', 'C2:198.51.100.7', 'C3:198.51.100.7', 'C4:198.51.100.8', 'T0:198.51.100.8', 'C5:198.51.100.7',
  ]);
  const msgs = encodeMessage(conns, { syncid: 1, maxLen: 1472 });
  assert.deepEqual(msgs.flatMap((m) => decodeMessage(m).conns), conns);
});
