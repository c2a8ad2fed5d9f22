/**
 * src/model/address.ts against ipaddr.js as an independent oracle (fast-check): where both define
 * the same thing they agree, byte for byte and character for character. Where they differ by
 * design (see the comment at the top of address.ts), the difference is asserted as it is, so that
 * the reason given there stays true.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import { formatAddress, parseAddress } from '../../src/model/address.js';

/** ipaddr.js's bytes for a text, or null when it refuses it. */
function oracleBytes(text: string): number[] | null {
  return ipaddr.isValid(text) ? ipaddr.parse(text).toByteArray() : null;
}

function ourBytes(text: string): number[] | null {
  const p = parseAddress(text);
  return p ? [...p.bytes] : null;
}

/** "::a.b.c.d": inet_pton reads ::/96 (IPv4-compatible), ipaddr.js reads ::ffff:a.b.c.d. */
const COMPATIBLE_TEXT = /^::\d+\.\d+\.\d+\.\d+$/;

const bytesOf = (words: readonly number[]): number[] => words.flatMap((w) => [w >> 8, w & 0xff]);

/** Eight groups, zeros and ffff often enough that compression and the embedded-IPv4 forms come up. */
const words = fc.array(
  fc.oneof({ weight: 4, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.constant(0xffff) }, { weight: 3, arbitrary: fc.integer({ min: 0, max: 0xffff }) }),
  { minLength: 8, maxLength: 8 },
);

/** A valid text for `w`: any run of zero groups compressed (or none), groups in either case with leading zeros, the last 32 bits maybe dotted. */
const textOf = (w: readonly number[]) => fc.record({
  cut: fc.nat(8), len: fc.nat(8), dotted: fc.boolean(),
  groups: fc.array(fc.record({ upper: fc.boolean(), pad: fc.nat(3) }), { minLength: 8, maxLength: 8 }),
}).map(({ cut, len, dotted, groups }) => {
  const parts = w.map((g, i) => {
    const hex = g.toString(16).padStart(Math.min(4, g.toString(16).length + groups[i]!.pad), '0');
    return groups[i]!.upper ? hex.toUpperCase() : hex;
  });
  if (dotted) parts.splice(6, 2, `${w[6]! >> 8}.${w[6]! & 0xff}.${w[7]! >> 8}.${w[7]! & 0xff}`);
  // Compress groups cut..cut+len-1 when all are zero (a dotted tail counts as two groups).
  const slots = parts.map((p, i) => ({ p, zero: dotted && i === 6 ? false : w[i] === 0 }));
  let end = cut;
  while (end < slots.length && end < cut + len && slots[end]!.zero) end++;
  if (end === cut) return parts.join(':');
  return `${slots.slice(0, cut).map((s) => s.p).join(':')}::${slots.slice(end).map((s) => s.p).join(':')}`;
});

test('IPv6 text: both parse every valid form to the same bytes (except "::a.b.c.d", which ipaddr.js maps)', () => {
  fc.assert(fc.property(words.chain((w) => fc.tuple(fc.constant(w), textOf(w))), ([w, text]) => {
    assert.deepEqual(ourBytes(text), bytesOf(w), text);
    const oracle = oracleBytes(text);
    if (COMPATIBLE_TEXT.test(text)) assert.deepEqual(oracle, [...bytesOf(w).slice(0, 10), 0xff, 0xff, ...bytesOf(w).slice(12)], text);
    else assert.deepEqual(oracle, bytesOf(w), text);
  }), { numRuns: 2000 });
  fc.assert(fc.property(fc.ipV6(), (text) => {
    if (!COMPATIBLE_TEXT.test(text)) assert.deepEqual(ourBytes(text), oracleBytes(text), text);
  }), { numRuns: 1000 });
});

test('IPv6 output: RFC 5952 text as ipaddr.js prints it, but embedded IPv4 dotted where inet_ntop prints it so', () => {
  fc.assert(fc.property(words, (w) => {
    const bytes = bytesOf(w);
    const ours = formatAddress({ family: 6, bytes: Uint8Array.from(bytes) });
    const theirs = ipaddr.fromByteArray(bytes).toString();
    // glibc inet_ntop: ::a.b.c.d for ::/96 past ::ffff (w6 != 0 there), ::ffff:a.b.c.d for ::ffff:0:0/96.
    const zeros5 = w.slice(0, 5).every((g) => g === 0);
    const compatible = zeros5 && w[5] === 0 && w[6] !== 0;
    const mapped = zeros5 && w[5] === 0xffff;
    if (compatible || mapped) {
      assert.equal(ours, `::${mapped ? 'ffff:' : ''}${bytes.slice(12).join('.')}`);
      assert.deepEqual(ourBytes(theirs), bytes, theirs); // the same address, in hex
    } else {
      assert.equal(ours, theirs);
    }
  }), { numRuns: 3000 });
});

test('IPv4: both agree on bytes and text; ours is exactly ipaddr.js\'s four-part-decimal form', () => {
  fc.assert(fc.property(fc.array(fc.nat(255), { minLength: 4, maxLength: 4 }), (b) => {
    assert.equal(formatAddress({ family: 4, bytes: Uint8Array.from(b) }), ipaddr.fromByteArray(b).toString());
  }));
  const text = fc.array(fc.constantFrom('0', '1', '9', '00', '01', '25', '255', '256', '0x1f', '1e1', '.', '.', '.', ' '), { maxLength: 9 }).map((t) => t.join(''));
  fc.assert(fc.property(fc.oneof(text, fc.ipV4(), fc.ipV4Extended()), (s) => {
    assert.equal(parseAddress(s)?.family === 4, ipaddr.IPv4.isValidFourPartDecimal(s), s);
    if (parseAddress(s)?.family === 4) assert.deepEqual(ourBytes(s), oracleBytes(s), s);
  }), { numRuns: 3000 });
});

test('strictness: whatever text we accept, ipaddr.js accepts as the same address', () => {
  const junk = fc.array(fc.constantFrom('0', '1', 'a', 'F', 'ffff', '0001', '12345', '255', '256', '01', '0x', ':', ':', '::', '.', '%', 'eth0', 'g', ' ', '/'), { maxLength: 12 })
    .map((t) => t.join(''));
  const nearMiss = fc.tuple(words.chain(textOf), fc.nat(40), fc.constantFrom('', ':', '.', '0', 'f', '%1', '::', '00000'))
    .map(([t, at, ins]) => t.slice(0, at % (t.length + 1)) + ins + t.slice((at % (t.length + 1)) + (ins === '' ? 1 : 0)));
  let accepted = 0;
  fc.assert(fc.property(fc.oneof(junk, nearMiss), (s) => {
    const ours = ourBytes(s);
    if (ours === null) return;
    accepted++;
    const oracle = oracleBytes(s);
    assert.notEqual(oracle, null, `we accept ${JSON.stringify(s)}, ipaddr.js does not`);
    if (!COMPATIBLE_TEXT.test(s)) assert.deepEqual(ours, oracle, s);
  }), { numRuns: 5000 });
  assert.ok(accepted > 100, `only ${accepted} generated texts were addresses: the property checked little`);
});

test('where we refuse what ipaddr.js accepts, and the one text it reads as another address', () => {
  // inet_pton's strictness: each of these names an address to ipaddr.js, none to us.
  for (const [text, theirs] of [['10.1', '10.0.0.1'], ['0x0a.0.0.1', '10.0.0.1'], ['010.0.0.1', '8.0.0.1'], ['1', '0.0.0.1'], ['fe80::1%eth0', 'fe80::1%eth0']] as const) {
    assert.equal(parseAddress(text), null, text);
    assert.equal(ipaddr.parse(text).toString(), theirs, `ipaddr.js ${JSON.stringify(text)}: revisit the comment at the top of address.ts`);
  }
  // inet_ntop prints ::/96 as ::a.b.c.d (ipvsadm's listings too); ipaddr.js reads that back as ::ffff:a.b.c.d.
  assert.equal(formatAddress({ family: 6, bytes: Uint8Array.from([...new Array<number>(12).fill(0), 1, 2, 3, 4]) }), '::1.2.3.4');
  assert.deepEqual(ourBytes('::1.2.3.4'), [...new Array<number>(12).fill(0), 1, 2, 3, 4]);
  assert.equal(ipaddr.parse('::1.2.3.4').toString(), '::ffff:102:304');
  assert.equal(ipaddr.parse('::ffff:192.0.2.1').toString(), '::ffff:c000:201');
});
