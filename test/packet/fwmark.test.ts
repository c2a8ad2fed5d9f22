// Firewall-mark services in the data plane: lvs-xdp's own classification (lvs_fwmarks) by
// protocol, destination prefix and port range; persistence across every port of a mark; a mark
// with a service looked up before the port service (IPVS's order), a mark without one not;
// the longest prefix wins; IPv6 marks. Configurations go through the director's plan and writer.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { clientPacket, TCP, mac, DIRECTOR_MAC } from '../lib/frames.js';
import { DirectorHarness, XDP } from '../lib/director.js';
import type { MacResolver } from '../../src/dataplane/compile.js';
import { DirectorReader } from '../../src/director/reader.js';
import { planTables, tablesDigest } from '../../src/director/digest.js';
import type { DirectorConfig, FirewallMark, VirtualService } from '../../src/model/types.js';
import { ABI } from '../../src/abi/generated.js';

const macOf = (addr: string) => `02:00:00:00:00:${addr.split(/[.:]/).pop()!.padStart(2, '0').slice(-2)}`;
const resolve: MacResolver = (_s, r) => ({ mac: macOf(r.address) });

function fwmarkService(mark: number, reals: string[], o: Partial<VirtualService> = {}): VirtualService {
  const v6 = reals[0]!.includes(':');
  return {
    fwmark: mark, protocol: 'tcp', vip: v6 ? '::' : '0.0.0.0', port: 0, scheduler: 'mh', flags: [], ops: false, tableSize: 251,
    realservers: reals.map((a) => ({ address: a, port: 0, weight: 1, method: 'dr' as const })), ...o,
  };
}

function portService(vip: string, port: number, reals: string[]): VirtualService {
  return {
    protocol: 'tcp', vip, port, scheduler: 'mh', flags: [], ops: false, tableSize: 251,
    realservers: reals.map((a) => ({ address: a, port, weight: 1, method: 'dr' as const })),
  };
}

function config(services: VirtualService[], marks: FirewallMark[]): DirectorConfig {
  return { settings: { hashSeed: 5 }, services, marks };
}

/** The exact DR frame: the client's bytes, destination MAC the realserver's, source the director's. */
function drFrame(frame: Buffer, rs: string): Buffer {
  return Buffer.concat([mac(macOf(rs)), mac(DIRECTOR_MAC), frame.subarray(12)]);
}

/** Which realserver a packet went to (exact bytes checked), or the XDP action when not forwarded. */
function send(src: string, dst: string, dport: number, reals: string[], o: { sport?: number; flags?: number; proto?: 'tcp' | 'udp' } = {}): string | number {
  const frame = clientPacket(src, dst, { proto: o.proto ?? 'tcp', sport: o.sport ?? 40000, dport, flags: o.flags ?? TCP.SYN });
  const r = h.run(frame);
  if (r.action !== XDP.TX) return r.action;
  const to = reals.find((a) => r.out.subarray(0, 6).equals(mac(macOf(a))));
  assert.ok(to, `went to a MAC of no realserver given: ${r.out.subarray(0, 6).toString('hex')}`);
  assert.deepEqual(r.out.subarray(0, frame.length), drFrame(frame, to));
  return to;
}

function readCounter(name: string): bigint {
  return h.counters()[name.toUpperCase()]!;
}

let h: DirectorHarness;
before(async () => { h = await DirectorHarness.load(); });
after(() => h?.close());

const RS = ['192.168.1.11', '192.168.1.12', '192.168.1.13', '192.168.1.14'];
const HTTP_HTTPS: FirewallMark = { mark: 1, match: [{ protocol: 'tcp', address: '10.0.0.0/24', ports: [{ from: 80, to: 80 }, { from: 443, to: 443 }] }] };

test('a mark classifies by prefix and ports: in the ranges forwarded exactly, outside them passed', () => {
  h.reset();
  h.apply(config([fwmarkService(1, RS)], [HTTP_HTTPS]), resolve);
  for (const dst of ['10.0.0.1', '10.0.0.200', '10.0.0.255']) {
    for (const port of [80, 443]) assert.ok(RS.includes(send('198.51.100.9', dst, port, RS) as string), `${dst}:${port}`);
  }
  const passes = readCounter('pass_not_vip');
  assert.equal(send('198.51.100.9', '10.0.0.7', 22, RS), XDP.PASS, 'port outside the mark');
  assert.equal(send('198.51.100.9', '10.0.1.7', 80, RS), XDP.PASS, 'address outside the prefix');
  assert.equal(send('198.51.100.9', '10.0.0.7', 80, RS, { proto: 'udp' }), XDP.PASS, 'protocol outside the mark');
  assert.equal(readCounter('pass_not_vip'), passes + 3n);
});

test('port ranges: both ends in, one past each end out', () => {
  h.reset();
  h.apply(config([fwmarkService(7, RS)], [{ mark: 7, match: [{ protocol: 'udp', address: '10.9.0.1', ports: [{ from: 8000, to: 8099 }] }] }]), resolve);
  for (const p of [8000, 8050, 8099]) assert.ok(RS.includes(send('198.51.100.9', '10.9.0.1', p, RS, { proto: 'udp' }) as string), String(p));
  for (const p of [7999, 8100]) assert.equal(send('198.51.100.9', '10.9.0.1', p, RS, { proto: 'udp' }), XDP.PASS, String(p));
});

test('persistence across the ports of one mark: a client\'s http and https go to one realserver (HOWTO)', () => {
  h.reset();
  h.apply(config([fwmarkService(1, RS, { persistence: { timeout: 300, netmask: '255.255.255.255' } })], [HTTP_HTTPS]), resolve);
  const seen = new Set<string>();
  for (let c = 1; c <= 40; c++) {
    const client = `198.51.100.${c}`;
    const first = send(client, '10.0.0.10', 80, RS, { sport: 20000 + c }) as string;
    seen.add(first);
    // Other ports of the mark, other VIPs of the prefix, other source ports: the same realserver.
    assert.equal(send(client, '10.0.0.10', 443, RS, { sport: 30000 + c }), first, `${client} https`);
    assert.equal(send(client, '10.0.0.99', 443, RS, { sport: 31000 + c }), first, `${client} another VIP of the mark`);
    assert.equal(send(client, '10.0.0.10', 80, RS, { sport: 32000 + c }), first, `${client} another connection`);
  }
  assert.ok(seen.size >= 3, `clients spread over the realservers: ${[...seen]}`);
  assert.equal(readCounter('persist_new'), 40n);
  assert.equal(readCounter('persist_hit'), 120n);
  // Without persistence the ports are scheduled independently (mh hashes the whole 5-tuple).
  h.reset();
  h.apply(config([fwmarkService(1, RS)], [HTTP_HTTPS]), resolve);
  let differ = 0;
  for (let c = 1; c <= 40; c++) {
    const client = `198.51.100.${c}`;
    if (send(client, '10.0.0.10', 80, RS, { sport: 20000 + c }) !== send(client, '10.0.0.10', 443, RS, { sport: 30000 + c })) differ++;
  }
  assert.ok(differ > 10, `without -p the two ports split: ${differ} of 40`);
});

test('precedence: a mark with a service wins over the port service it covers (IPVS looks the mark up first); a mark without one does not', () => {
  h.reset();
  const markRs = ['192.168.1.21'];
  const portRs = ['192.168.1.31'];
  const both = [...markRs, ...portRs];
  const cfg = config(
    [fwmarkService(1, markRs), portService('10.0.0.5', 80, portRs), portService('10.0.0.5', 8080, portRs), portService('10.0.0.6', 80, portRs)],
    [HTTP_HTTPS, { mark: 2, match: [{ protocol: 'tcp', address: '10.0.0.6', ports: [{ from: 80, to: 80 }] }] }],
  );
  const plan = h.apply(cfg, resolve);
  assert.equal(send('198.51.100.9', '10.0.0.5', 80, both), markRs[0], 'covered port service: the mark\'s');
  assert.equal(send('198.51.100.9', '10.0.0.5', 8080, both), portRs[0], 'port outside the mark: the port service');
  // 10.0.0.6:80 is in mark 1 (the /24) and mark 2 (the /32, more specific): mark 2 has no service.
  assert.equal(send('198.51.100.9', '10.0.0.6', 80, both), portRs[0], 'mark without a service: the port service');
  // Only the covered port service carries the flag (the others never pay the classification).
  const flagged = plan.compiled!.services.filter((s) => (s.value(0).readUInt16LE(32) & ABI.LVS_SVC_F_MARKED) !== 0).map((s) => s.id);
  assert.deepEqual(flagged, ['tcp 10.0.0.5:80']);
  // The mark's service gone: the port service takes its traffic back.
  h.apply(config(cfg.services.slice(1), cfg.marks!), resolve);
  assert.equal(send('198.51.100.8', '10.0.0.5', 80, both, { sport: 41000 }), portRs[0]);
});

test('the longest prefix wins, and keeps the ranges of the prefixes covering it', () => {
  h.reset();
  const a = ['192.168.1.41'];
  const b = ['192.168.1.51'];
  h.apply(config([fwmarkService(1, a), fwmarkService(2, b)], [
    { mark: 1, match: [{ protocol: 'tcp', address: '10.1.0.0/16', ports: [] }] },
    { mark: 2, match: [{ protocol: 'tcp', address: '10.1.2.3', ports: [{ from: 443, to: 443 }] }] },
  ]), resolve);
  const all = [...a, ...b];
  assert.equal(send('198.51.100.9', '10.1.2.3', 443, all), b[0]);
  assert.equal(send('198.51.100.9', '10.1.2.3', 80, all), a[0], 'a port the /32 does not have: the /16\'s');
  assert.equal(send('198.51.100.9', '10.1.9.9', 443, all), a[0]);
});

test('IPv6 marks (-f MARK -6): classified in their family only', () => {
  h.reset();
  const rs6 = ['2001:db8:1::11', '2001:db8:1::12'];
  const rs4 = ['192.168.1.61'];
  h.apply(config([fwmarkService(3, rs6), fwmarkService(3, rs4)], [{ mark: 3, match: [
    { protocol: 'tcp', address: '2001:db8:100::/64', ports: [{ from: 80, to: 80 }, { from: 443, to: 443 }] },
    { protocol: 'tcp', address: '10.3.0.1', ports: [{ from: 80, to: 80 }] },
  ] }]), resolve);
  const got = send('2001:db8:ff::9', '2001:db8:100::abcd', 443, rs6) as string;
  assert.ok(rs6.includes(got));
  assert.equal(send('2001:db8:ff::9', '2001:db8:100:1::1', 443, rs6), XDP.PASS, 'outside the /64');
  assert.equal(send('198.51.100.9', '10.3.0.1', 80, rs4), rs4[0], 'the IPv4 service of the same mark');
});

test('no marks: the classification flag is off and established flows of a mark end with it', () => {
  h.reset();
  const p = h.apply(config([fwmarkService(1, RS)], [HTTP_HTTPS]), resolve);
  assert.ok(p.steps.some((s) => s.op === 'marks'));
  assert.ok(RS.includes(send('198.51.100.9', '10.0.0.1', 80, RS) as string));
  const p2 = h.apply(config([fwmarkService(1, RS)], []), resolve);
  const m = p2.steps.find((s) => s.op === 'marks');
  assert.ok(m && m.op === 'marks' && m.remove.length === 1 && m.put.length === 0);
  assert.equal(send('198.51.100.9', '10.0.0.1', 80, RS, { flags: TCP.ACK }), XDP.PASS);
});

test('the table digest covers the marks: read back from the maps it equals the plan\'s, and differs without them', () => {
  h.reset();
  const withMarks = config([fwmarkService(1, RS)], [HTTP_HTTPS]);
  const p = h.apply(withMarks, resolve);
  const reader = new DirectorReader(h.writer.maps);
  const live = tablesDigest(reader.tableViews(p.target));
  assert.equal(live.digest, tablesDigest(planTables(p.target, p.compiled!)).digest);
  assert.equal(reader.tableViews(p.target).marks?.length, 1);
  const other = h.apply(config([fwmarkService(1, RS)], [{ mark: 1, match: [{ protocol: 'tcp', address: '10.0.0.0/24', ports: [{ from: 80, to: 80 }] }] }]), resolve);
  assert.notEqual(tablesDigest(reader.tableViews(other.target)).digest, live.digest, 'another mark definition, another digest');
});
