/**
 * Bob Jenkins' lookup3 hash exactly as the Linux kernel has it (include/linux/jhash.h).
 *
 * The XDP data plane hashes flows with the kernel's jhash2 in C; the control plane must compute
 * the same values bit for bit (e.g. to predict which realserver a flow lands on, and for Maglev
 * permutations shared by every director). All arithmetic is u32: Math.imul is not needed since
 * lookup3 only adds, subtracts, xors and rotates; `>>> 0` keeps every value an unsigned 32-bit int.
 */

/** The kernel's arbitrary initial value, added to the length and the caller's seed. */
export const JHASH_INITVAL = 0xdeadbeef;

/** Rotate a u32 left by `shift` bits (1..31). */
export function rol32(word: number, shift: number): number {
  return ((word << shift) | (word >>> (32 - shift))) >>> 0;
}

/** Internal state (a, b, c) mixed in place; one array avoids allocating per block. */
type State = Uint32Array;

/** __jhash_mix: mix 3 u32 state words reversibly. Uint32Array stores wrap to u32 for us. */
function mix(s: State): void {
  s[0] -= s[2]; s[0] ^= rol32(s[2], 4); s[2] += s[1];
  s[1] -= s[0]; s[1] ^= rol32(s[0], 6); s[0] += s[2];
  s[2] -= s[1]; s[2] ^= rol32(s[1], 8); s[1] += s[0];
  s[0] -= s[2]; s[0] ^= rol32(s[2], 16); s[2] += s[1];
  s[1] -= s[0]; s[1] ^= rol32(s[0], 19); s[0] += s[2];
  s[2] -= s[1]; s[2] ^= rol32(s[1], 4); s[1] += s[0];
}

/** __jhash_final: final mixing of 3 u32 state words into c. */
function final(s: State): void {
  s[2] ^= s[1]; s[2] -= rol32(s[1], 14);
  s[0] ^= s[2]; s[0] -= rol32(s[2], 11);
  s[1] ^= s[0]; s[1] -= rol32(s[0], 25);
  s[2] ^= s[1]; s[2] -= rol32(s[1], 16);
  s[0] ^= s[2]; s[0] -= rol32(s[2], 4);
  s[1] ^= s[0]; s[1] -= rol32(s[0], 14);
  s[2] ^= s[1]; s[2] -= rol32(s[1], 24);
}

function initState(seed: number): State {
  const s = new Uint32Array(3);
  s[0] = s[1] = s[2] = seed;
  return s;
}

/** Little-endian u32 at k[i..i+3]: the kernel's __get_unaligned_cpu32 on x86 / arm64 (LE). */
function readLE32(k: Uint8Array, i: number): number {
  return (k[i]! | (k[i + 1]! << 8) | (k[i + 2]! << 16) | (k[i + 3]! << 24)) >>> 0;
}

/**
 * jhash(key, length, initval): hash an arbitrary byte string.
 * Full 12-byte blocks are read as CPU-order (little-endian) words like the kernel on LE machines;
 * the tail is assembled byte by byte, which is endian independent.
 */
export function jhash(bytes: Uint8Array, initval: number): number {
  let length = bytes.length;
  const s = initState((JHASH_INITVAL + length + initval) >>> 0);
  let k = 0;
  while (length > 12) {
    s[0] += readLE32(bytes, k);
    s[1] += readLE32(bytes, k + 4);
    s[2] += readLE32(bytes, k + 8);
    mix(s);
    length -= 12;
    k += 12;
  }
  if (length === 0) return s[2]!;
  // The kernel's fall-through switch, written as a loop over the remaining bytes.
  for (let i = length - 1; i >= 0; i--) {
    s[i >> 2] += bytes[k + i]! << ((i & 3) * 8);
  }
  final(s);
  return s[2]!;
}

/** jhash2(k, length, initval): hash an array of u32 words (length counted in words). */
export function jhash2(words: Uint32Array | readonly number[], initval: number): number {
  let length = words.length;
  const s = initState((JHASH_INITVAL + (length << 2) + initval) >>> 0);
  let k = 0;
  while (length > 3) {
    s[0] += words[k]!;
    s[1] += words[k + 1]!;
    s[2] += words[k + 2]!;
    mix(s);
    length -= 3;
    k += 3;
  }
  if (length === 0) return s[2]!;
  if (length >= 3) s[2] += words[k + 2]!;
  if (length >= 2) s[1] += words[k + 1]!;
  s[0] += words[k]!;
  final(s);
  return s[2]!;
}

/** __jhash_nwords: the fixed-size helpers below add initval to each word, then final-mix. */
function jhashNwords(a: number, b: number, c: number, initval: number): number {
  const s = new Uint32Array([a + initval, b + initval, c + initval]);
  final(s);
  return s[2]!;
}

/** jhash_3words(a, b, c, initval) */
export function jhash3words(a: number, b: number, c: number, initval: number): number {
  return jhashNwords(a, b, c, (initval + JHASH_INITVAL + (3 << 2)) >>> 0);
}

/** jhash_2words(a, b, initval) */
export function jhash2words(a: number, b: number, initval: number): number {
  return jhashNwords(a, b, 0, (initval + JHASH_INITVAL + (2 << 2)) >>> 0);
}

/** jhash_1word(a, initval) */
export function jhash1word(a: number, initval: number): number {
  return jhashNwords(a, 0, 0, (initval + JHASH_INITVAL + (1 << 2)) >>> 0);
}

const utf8 = new TextEncoder();

/** jhash over the UTF-8 bytes of a string (realserver keys for Maglev permutations). */
export function jhashString(text: string, initval: number): number {
  return jhash(utf8.encode(text), initval);
}
