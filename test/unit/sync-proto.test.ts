/**
 * IPVS sync protocol (src/sync/proto.ts) against byte-exact fixtures written from the kernel's
 * definitions (test/fixtures/ipvs-sync/*.hex, derivation beside every byte): each decodes to the
 * fields below and those fields encode back to the same bytes. Property tests: round trip,
 * splitting under sync-maxlen as the kernel packs, and every truncation or corrupted size field
 * of a valid message is a SyncDecodeError (never another exception, never a hang).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { repoRoot } from '../lib/paths.js';
import {
  decode, encode, encodeV0, entryLength, syncMaxlen, syncidAccepted, connFlagNames, stateName,
  ipvsStateOf, lvsStateOf, ipvsConnFlags, lvsMethodOf, canonicalAddr, SyncDecodeError, IP_VS_CONN_F,
  IP_VS_TCP_S, IPPROTO, MESG_HEADER_LEN, type SyncConn,
} from '../../src/sync/proto.js';
import { STATE_NAMES } from '../../src/abi/generated.js';

const dir = join(repoRoot(), 'test/fixtures/ipvs-sync');
function fixture(name: string): Buffer {
  const text = readFileSync(join(dir, name), 'utf8');
  const hex = text.split('\n').map((l) => l.replace(/#.*/, '')).join('').replace(/\s+/g, '');
  assert.match(hex, /^([0-9a-f]{2})+$/);
  return Buffer.from(hex, 'hex');
}

const base = { fwmark: 0 } as const;
const TCP_DR: SyncConn = {
  ...base, family: 4, protocol: 6, flags: 0x0003, state: 1, cport: 51234, vport: 80, dport: 80, timeout: 900,
  caddr: '203.0.113.7', vaddr: '10.0.0.1', daddr: '192.168.1.10',
};
const UDP6: SyncConn = {
  ...base, family: 6, protocol: 17, flags: 0x0103, state: 0, cport: 40000, vport: 53, dport: 53, timeout: 300,
  caddr: '2001:db8:1::7', vaddr: '2001:db8::1', daddr: '2001:db8:1::10',
};
const TEMPLATE: SyncConn = {
  ...base, family: 4, protocol: 6, flags: 0x1103, state: 0, cport: 0, vport: 80, dport: 80, timeout: 360,
  caddr: '203.0.113.0', vaddr: '10.0.0.1', daddr: '192.168.1.11',
};
const SEQ: SyncConn = {
  ...base, family: 4, protocol: 6, flags: 0x0600, state: 1, cport: 33000, vport: 21, dport: 21, timeout: 900,
  caddr: '198.51.100.20', vaddr: '10.0.0.2', daddr: '192.168.1.20',
  seq: { in: { initSeq: 0x11223344, delta: 16, previousDelta: 8 }, out: { initSeq: 0xa0b0c0d0, delta: 0xfffffff0, previousDelta: 0 } },
};
const SEVERAL: SyncConn[] = [
  {
    ...base, family: 4, protocol: 6, flags: 0x0400, state: 3, cport: 33001, vport: 21, dport: 21, timeout: 60,
    caddr: '198.51.100.21', vaddr: '10.0.0.2', daddr: '192.168.1.20',
    seq: { in: { initSeq: 1, delta: 2, previousDelta: 3 }, out: { initSeq: 4, delta: 5, previousDelta: 6 } },
  },
  {
    family: 4, protocol: 17, flags: 0x0102, state: 0, cport: 5060, vport: 5060, dport: 5060, fwmark: 42, timeout: 300,
    caddr: '198.51.100.22', vaddr: '10.0.0.3', daddr: '192.168.2.30', peData: Uint8Array.from(Buffer.from('abc')), peName: 'sip',
  },
  {
    ...base, family: 6, protocol: 6, flags: 0x0102, state: 3, cport: 65535, vport: 443, dport: 443, timeout: 30,
    caddr: '2001:db8:2::abcd', vaddr: '2001:db8::1', daddr: 'fe80::1',
  },
];
const V0: SyncConn[] = [
  { ...TCP_DR, timeout: 0 },
  { ...SEQ, state: 4, timeout: 0 },
];

const V1_FIXTURES: [string, number, SyncConn[]][] = [
  ['v1-ipv4-tcp-dr.hex', 7, [TCP_DR]],
  ['v1-ipv6-udp.hex', 0, [UDP6]],
  ['v1-template.hex', 7, [TEMPLATE]],
  ['v1-seq.hex', 1, [SEQ]],
  ['v1-several.hex', 200, SEVERAL],
];

for (const [name, syncid, conns] of V1_FIXTURES) {
  test(`fixture ${name}: decodes to its fields and encodes back to the same bytes`, () => {
    const bytes = fixture(name);
    const msg = decode(bytes);
    assert.deepEqual(msg, { version: 1, syncid, conns, dropped: [] });
    const out = encode(conns, { syncid, maxLen: 1472 });
    assert.equal(out.length, 1);
    assert.equal(out[0]!.toString('hex'), bytes.toString('hex'));
  });
}

test('fixture v0-two.hex: a version 0 message decodes (no timeout, no fwmark) and encodes back', () => {
  const bytes = fixture('v0-two.hex');
  assert.deepEqual(decode(bytes), { version: 0, syncid: 7, conns: V0, dropped: [] });
  const out = encodeV0(V0, { syncid: 7, maxLen: 1472 });
  assert.equal(out.length, 1);
  assert.equal(out[0]!.toString('hex'), bytes.toString('hex'));
});

test('fixtures agree with a second derivation: C structs laid out by the compiler (sync_ref.c)', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'sync-ref-'));
  try {
    execFileSync('cc', ['-O2', '-Wall', '-Werror', '-o', join(tmp, 'ref'), join(dir, 'sync_ref.c')]);
    const lines = execFileSync(join(tmp, 'ref'), { encoding: 'utf8' }).trim().split('\n');
    const names = readdirSync(dir).filter((f) => f.endsWith('.hex')).sort();
    assert.deepEqual(lines.map((l) => l.split(' ')[0]).sort(), names, 'sync_ref.c builds every fixture');
    for (const l of lines) {
      const [name, hex] = l.split(' ') as [string, string];
      assert.equal(fixture(name).toString('hex'), hex, name);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('flags and states by name, as the kernel headers define them', () => {
  assert.deepEqual(connFlagNames(0x0003), ['DROUTE']);
  assert.deepEqual(connFlagNames(0x1103), ['DROUTE', 'INACTIVE', 'TEMPLATE']);
  assert.deepEqual(connFlagNames(0x2000 | 0x0080 | 0x0002), ['TUNNEL', 'NOOUTPUT', 'ONE_PACKET']);
  assert.deepEqual(connFlagNames(0x0000), ['MASQ']);
  assert.deepEqual(connFlagNames(0x0001), ['LOCALNODE']);
  assert.deepEqual(connFlagNames(0x0004), ['BYPASS']);
  assert.deepEqual(connFlagNames(0x0005 | 0x10000), ['FWD(5)', '0x10000']);
  assert.equal(stateName(6, IP_VS_TCP_S.TIME_WAIT), 'TIME_WAIT');
  assert.equal(stateName(6, 10), 'SYNACK');
  assert.equal(stateName(6, 11), 'TCP(11)');
  assert.equal(stateName(17, 0), 'UDP');
  assert.equal(stateName(6, 1, IP_VS_CONN_F.TEMPLATE), 'ASSURED');
});

test('lvs-xdp states <-> IPVS states: every synchronised state maps back to itself', () => {
  for (const s of STATE_NAMES) {
    const ipvs = ipvsStateOf(s);
    if (s === 'NONE') {
      assert.equal(ipvs, null, 'a stray is never synchronised');
      continue;
    }
    assert.ok(ipvs, s);
    assert.equal(lvsStateOf(ipvs.protocol, ipvs.state), s);
  }
  assert.deepEqual(ipvsStateOf('ESTABLISHED'), { protocol: 6, state: 1 });
  assert.deepEqual(ipvsStateOf('SYN_RECV'), { protocol: 6, state: 3 });
  assert.deepEqual(ipvsStateOf('UDP'), { protocol: 17, state: 0 });
  // IPVS's extra TCP states fold into the lvs-xdp state with the same timeout role
  const fold: [number, string | null][] = [
    [IP_VS_TCP_S.NONE, 'SYN_RECV'], [IP_VS_TCP_S.SYN_SENT, 'SYN_RECV'], [IP_VS_TCP_S.LISTEN, 'SYN_RECV'],
    [IP_VS_TCP_S.SYNACK, 'SYN_RECV'], [IP_VS_TCP_S.TIME_WAIT, 'FIN_WAIT'], [IP_VS_TCP_S.CLOSE_WAIT, 'FIN_WAIT'],
    [IP_VS_TCP_S.LAST_ACK, 'FIN_WAIT'], [IP_VS_TCP_S.CLOSE, 'CLOSE'], [11, null],
  ];
  for (const [st, want] of fold) assert.equal(lvsStateOf(6, st), want, `TCP state ${st}`);
  assert.equal(lvsStateOf(132, 8), null, 'SCTP: lvs-xdp has no SCTP');
  assert.equal(lvsStateOf(6, 1, IP_VS_CONN_F.TEMPLATE), null, 'a template is not a connection');
  assert.equal(ipvsConnFlags('dr', 'ESTABLISHED'), IP_VS_CONN_F.DROUTE);
  assert.equal(ipvsConnFlags('tun', 'UDP'), IP_VS_CONN_F.TUNNEL | IP_VS_CONN_F.INACTIVE);
  assert.equal(lvsMethodOf(0x1103), 'dr');
  assert.equal(lvsMethodOf(0x0102), 'tun');
  assert.equal(lvsMethodOf(0x0000), 'nat', 'IPVS MASQ is LVS-NAT');
  assert.equal(lvsMethodOf(0x0001), null, 'LOCALNODE: lvs-xdp has none');
  assert.equal(ipvsConnFlags('nat', 'ESTABLISHED'), IP_VS_CONN_F.MASQ);
});

test('sync-maxlen as the kernel computes it from the MTU', () => {
  assert.equal(syncMaxlen({ role: 'master', family: 4 }), 1472);
  assert.equal(syncMaxlen({ role: 'master', family: 6 }), 1452);
  assert.equal(syncMaxlen({ role: 'master', family: 4, ifaceMtu: 9000 }), 1472, 'the master ignores a larger MTU');
  assert.equal(syncMaxlen({ role: 'backup', family: 4, ifaceMtu: 9000 }), 8972);
  assert.equal(syncMaxlen({ role: 'backup', family: 4, ifaceMtu: 1280 }), 1472, 'backup MTU clamped to >= 1500');
  assert.equal(syncMaxlen({ role: 'master', family: 4, requested: 100000 }), 65507);
  assert.equal(syncMaxlen({ role: 'backup', family: 6, requested: 10 }), 1024);
  assert.equal(syncMaxlen({ role: 'master', family: 4, requested: 10 }), 10);
});

test('syncid filtering: a backup with syncid 0 takes every message, otherwise only its own', () => {
  assert.ok(syncidAccepted(0, 7));
  assert.ok(syncidAccepted(7, 7));
  assert.ok(!syncidAccepted(7, 8));
});

test('decode errors name the byte and the fault', () => {
  const good = fixture('v1-ipv4-tcp-dr.hex');
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['short header', (b) => b.subarray(0, 3), /byte 0: message header too short/],
    ['size mismatch', (b) => { b.writeUInt16BE(45, 2); return b; }, /byte 2: size field says 45 bytes, the datagram has 44/],
    ['bad version', (b) => { b[5] = 2; return b; }, /byte 5: bad version 2/],
    ['spare', (b) => { b[7] = 1; return b; }, /byte 6: spare field/],
    ['entry version', (b) => { b[10] = 0x10; return b; }, /byte 10: entry 0: unknown entry version 1/],
    ['entry type', (b) => { b[8] = 2; return b; }, /byte 8: entry 0: unknown type 0x2/],
    ['entry too long', (b) => { b[11] = 40; return b; }, /byte 10: entry 0 says 40 bytes, only 36 left/],
    ['fixed part', (b) => { b[11] = 30; return b; }, /entry 0: IPv4 entry of 30 bytes, the fixed part alone has 36/],
    ['missing entry', (b) => { b[4] = 2; return b; }, /byte 44: entry 1 of 2 truncated: 0 bytes left/],
  ];
  for (const [what, corrupt, want] of cases) {
    assert.throws(() => decode(corrupt(Buffer.from(good))), (e: unknown) => e instanceof SyncDecodeError && want.test(e.message), what);
  }
  const seq = fixture('v1-seq.hex');
  const badLen = Buffer.from(seq);
  badLen[45] = 20;
  assert.throws(() => decode(badLen), /byte 45: entry 0: sequence option of 20 bytes, must be 24/);
  const zero = Buffer.from(seq);
  zero[45] = 0;
  assert.throws(() => decode(zero), /byte 45: entry 0: option 1 has length 0/);
});

test('entries the kernel skips one by one are listed as dropped, the rest is kept', () => {
  const b = fixture('v1-several.hex');
  b[108] = 5; // entry 1's PE_DATA option becomes an unknown mandatory option 5
  const msg = decode(b);
  assert.equal(msg.conns.length, 2);
  assert.deepEqual(msg.dropped, [{ offset: 108, reason: 'entry 1: unknown mandatory option 5' }]);
  const optional = fixture('v1-several.hex');
  optional[108] = 5 | 0x40; // optional (IPVS_OPT_F_PARAM): skipped, the entry is kept without PE data
  const kept = decode(optional);
  assert.equal(kept.conns.length, 3);
  assert.equal(kept.conns[1]!.peData, undefined);
  assert.equal(kept.conns[1]!.peName, 'sip');
  const proto = fixture('v1-ipv4-tcp-dr.hex');
  proto[9] = 1; // ICMP is no protocol IPVS synchronises
  assert.deepEqual(decode(proto).dropped, [{ offset: 8, reason: 'entry 0: protocol 1 is not one IPVS synchronises' }]);
  const state = fixture('v1-ipv4-tcp-dr.hex');
  state[17] = 11;
  assert.match(decode(state).dropped[0]!.reason, /state 11 out of range for protocol 6/);
  const tpl = fixture('v1-template.hex');
  tpl[17] = 9; // templates' states are not checked by the backup
  assert.equal(decode(tpl).conns.length, 1);
});

// ---- properties -------------------------------------------------------------------------------

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const ipv4 = fc.ipV4().map(canonicalAddr);
const ipv6 = fc.ipV6().map(canonicalAddr);
const seqArb = fc.record({ initSeq: u32, delta: u32, previousDelta: u32 });
const connArb: fc.Arbitrary<SyncConn> = fc.oneof(fc.constant(4 as const), fc.constant(6 as const)).chain((family) => {
  const addr = family === 4 ? ipv4 : ipv6;
  return fc.record({
    family: fc.constant(family),
    protocol: fc.constantFrom(IPPROTO.TCP, IPPROTO.UDP),
    flags: u32.map((f) => (f & ~IP_VS_CONN_F.TEMPLATE) >>> 0),
    state: fc.constant(0),
    cport: u16, vport: u16, dport: u16, fwmark: u32, timeout: u32,
    caddr: addr, vaddr: addr, daddr: addr,
    seq: fc.option(fc.record({ in: seqArb, out: seqArb }), { nil: undefined }),
    pe: fc.option(fc.record({
      data: fc.uint8Array({ minLength: 1, maxLength: 255 }),
      name: fc.string({ minLength: 1, maxLength: 16 }).filter((s) => /^[\x21-\x7e]+$/.test(s)),
    }), { nil: undefined }),
  }).map(({ seq, pe, ...c }) => {
    const out: SyncConn = { ...c };
    if (seq) out.seq = { in: { ...seq.in }, out: { ...seq.out } }; // plain objects (fast-check records have no prototype)
    if (pe) { out.peData = pe.data; out.peName = pe.name; }
    return out;
  });
});

test('property: encode then decode gives back every entry, in order', () => {
  fc.assert(fc.property(fc.array(connArb, { maxLength: 60 }), fc.integer({ min: 1, max: 3000 }), fc.integer({ min: 0, max: 255 }), (conns, maxLen, syncid) => {
    const msgs = encode(conns, { syncid, maxLen });
    const back = msgs.flatMap((m) => {
      const d = decode(m);
      assert.equal(d.syncid, syncid);
      assert.deepEqual(d.dropped, []);
      return d.conns;
    });
    assert.deepEqual(back, conns);
  }), { numRuns: 300 });
});

test('property: messages split under maxLen as the kernel packs its sync buffer', () => {
  fc.assert(fc.property(fc.array(connArb, { minLength: 1, maxLength: 80 }), fc.integer({ min: 40, max: 2000 }), (conns, maxLen) => {
    const msgs = encode(conns, { syncid: 1, maxLen });
    let i = 0;
    for (const [k, m] of msgs.entries()) {
      const n = m[4]!;
      assert.ok(n >= 1 && n <= 255);
      const first = conns[i]!;
      // a message passes maxLen only when it holds one entry that alone does not fit
      if (m.length > maxLen) assert.ok(n === 1 && MESG_HEADER_LEN + entryLength(first) > maxLen);
      // and it was full: the next entry (with its padding) would not have fitted
      if (k < msgs.length - 1 && n < 255) {
        const next = conns[i + n]!;
        const pad = (4 - m.length) & 3;
        assert.ok(m.length + pad + entryLength(next) > maxLen, `message ${k} had room for the next entry`);
      }
      i += n;
    }
    assert.equal(i, conns.length);
  }), { numRuns: 300 });
});

test('property: every truncation and corrupted size field of a valid message is a SyncDecodeError', () => {
  const msgs = [...V1_FIXTURES.map(([f]) => fixture(f)), fixture('v0-two.hex')];
  for (const m of msgs) {
    for (let len = 0; len < m.length; len++) {
      const cut = Buffer.from(m.subarray(0, len));
      assert.throws(() => decode(cut), SyncDecodeError, `truncated to ${len}`);
      // a truncation with its size field rewritten to match: the entries no longer fit
      if (len >= 4) {
        cut.writeUInt16BE(len, 2);
        try { decode(cut); } catch (e) { assert.ok(e instanceof SyncDecodeError, `${len}: ${String(e)}`); }
      }
    }
  }
  fc.assert(fc.property(fc.array(connArb, { minLength: 1, maxLength: 8 }), fc.nat(), fc.integer({ min: 0, max: 255 }), (conns, which, value) => {
    const m = encode(conns, { syncid: 3, maxLen: 65000 })[0]!;
    const bad = Buffer.from(m);
    // corrupt one size field: the message's own, or an entry's ver_size (high or low byte)
    const sizes = [2, 3];
    let p = MESG_HEADER_LEN;
    for (const c of conns) { sizes.push(p + 2, p + 3); p += (entryLength(c) + 3) & ~3; }
    const off = sizes[which % sizes.length]!;
    if (bad[off] === value) return;
    bad[off] = value;
    try {
      decode(bad);
    } catch (e) {
      assert.ok(e instanceof SyncDecodeError, String(e));
    }
  }), { numRuns: 1000 });
});

test('property: arbitrary bytes decode or fail with SyncDecodeError, never another exception', () => {
  fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, fixSize) => {
    const b = Buffer.from(bytes);
    if (fixSize && b.length >= 4) b.writeUInt16BE(b.length, 2);
    if (fixSize && b.length >= 8 && b[0] === 0) { b[5] = 1; b[6] = 0; b[7] = 0; }
    try { decode(b); } catch (e) { assert.ok(e instanceof SyncDecodeError, String(e)); }
  }), { numRuns: 3000 });
});
