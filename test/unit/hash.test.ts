/**
 * Known-answer tests for src/hash/jhash.ts against an independent C transcription of the kernel's
 * lookup3 (test/fixtures/hash/jhash_ref.c). The golden file was produced by that program (see its
 * header); when gcc is present the program is also compiled and run here, so golden file, C and
 * TypeScript must all agree.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { jhash, jhash2, jhash3words, jhash2words, jhash1word, jhashString, rol32, JHASH_INITVAL } from '../../src/hash/jhash.js';

const fixtures = fileURLToPath(new URL('../../../test/fixtures/hash/', import.meta.url));
const golden = readFileSync(join(fixtures, 'jhash-golden.txt'), 'utf8');

function hexBytes(hex: string): Uint8Array {
  if (hex === '-') return new Uint8Array(0);
  return Uint8Array.from(hex.match(/../g)!.map((b) => parseInt(b, 16)));
}

function leWords(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i += 4) {
    out.push((bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24)) >>> 0);
  }
  return out;
}

/** Recompute one golden line with the TypeScript port. */
function compute(fn: string, seed: number, input: Uint8Array): number {
  const w = leWords(input);
  switch (fn) {
    case 'jhash': return jhash(input, seed);
    case 'jhash2': return jhash2(w, seed);
    case 'jhash_3words': return jhash3words(w[0]!, w[1]!, w[2]!, seed);
    case 'jhash_2words': return jhash2words(w[0]!, w[1]!, seed);
    case 'jhash_1word': return jhash1word(w[0]!, seed);
    default: throw new Error(`unknown function ${fn}`);
  }
}

function checkLines(text: string): number {
  let n = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [fn, seedHex, inputHex, hashHex] = line.split(' ');
    const got = compute(fn!, parseInt(seedHex!, 16), hexBytes(inputHex!));
    assert.equal(got.toString(16).padStart(8, '0'), hashHex, line);
    n++;
  }
  return n;
}

test('jhash / jhash2 / jhash_Nwords match the golden vectors bit for bit', () => {
  assert.equal(checkLines(golden), 300);
});

test('golden vectors are what the C reference prints (when gcc is available)', (t) => {
  let dir: string | undefined;
  try {
    dir = mkdtempSync(join(tmpdir(), 'jhash-ref-'));
    const bin = join(dir, 'jhash_ref');
    try {
      execFileSync('gcc', ['-O2', '-o', bin, join(fixtures, 'jhash_ref.c')], { stdio: 'pipe' });
    } catch {
      t.skip('gcc not available');
      return;
    }
    const out = execFileSync(bin, { encoding: 'utf8' });
    assert.equal(out, golden);
  } finally {
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
});

test('jhash2 agrees with jhash over the same little-endian bytes when length is a multiple of 4', () => {
  const words = Uint32Array.from([0x01020304, 0xdeadbeef, 0, 0xffffffff, 42]);
  const bytes = new Uint8Array(words.buffer.slice(0)); // host order; Node runs on LE machines
  for (let n = 0; n <= words.length; n++) {
    assert.equal(jhash2(words.subarray(0, n), 7), jhash(bytes.subarray(0, 4 * n), 7));
  }
});

test('helpers: rol32, constants, string hashing, plain arrays', () => {
  assert.equal(rol32(0x80000001, 1), 0x00000003);
  assert.equal(rol32(0x12345678, 16), 0x56781234);
  assert.equal(JHASH_INITVAL, 0xdeadbeef);
  assert.equal(jhash(new Uint8Array(0), 0), 0xdeadbeef);
  assert.equal(jhashString('rs-a', 1), jhash(new TextEncoder().encode('rs-a'), 1));
  assert.equal(jhash2([1, 2, 3, 4], 9), jhash2(Uint32Array.from([1, 2, 3, 4]), 9));
  const h = jhash2([0xffffffff, 0xffffffff], 0xffffffff);
  assert.ok(Number.isInteger(h) && h >= 0 && h <= 0xffffffff);
});
