// The director's lock: a live owner is waited for, a dead one is taken over at once, and an owner
// file caught half-written (empty) is never mistaken for a dead owner (that let a second process
// in while the first still held the lock: a lost update under concurrent `-a`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { acquireLock } from '../../src/director/lock.js';

function selfStart(): string {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(`${tmpdir()}/lvs-lock-`);
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

test('free lock: acquired, released, acquired again', () => withDir(async (dir) => {
  const release = await acquireLock(dir, 1000);
  assert.match(readFileSync(`${dir}/lock/owner`, 'utf8'), new RegExp(`^${process.pid} \\d+\\n$`));
  release();
  assert.equal(existsSync(`${dir}/lock`), false);
  (await acquireLock(dir, 1000))();
}));

test('a live owner is waited for (here until the timeout)', () => withDir(async (dir) => {
  mkdirSync(`${dir}/lock`);
  writeFileSync(`${dir}/lock/owner`, `${process.pid} ${selfStart()}\n`);
  await assert.rejects(acquireLock(dir, 300), /has been held for over/);
}));

test('an owner file caught empty or partial is not a dead owner', () => withDir(async (dir) => {
  for (const text of ['', `${process.pid}`, `${process.pid} `]) {
    mkdirSync(`${dir}/lock`);
    writeFileSync(`${dir}/lock/owner`, text);
    await assert.rejects(acquireLock(dir, 300), /has been held for over/, JSON.stringify(text));
    rmSync(`${dir}/lock`, { recursive: true });
  }
}));

test('a dead owner (or a reused pid with another start time) is taken over at once', () => withDir(async (dir) => {
  mkdirSync(`${dir}/lock`);
  writeFileSync(`${dir}/lock/owner`, `${process.pid} 1\n`);
  const release = await acquireLock(dir, 300);
  assert.match(readFileSync(`${dir}/lock/owner`, 'utf8'), new RegExp(`^${process.pid} ${selfStart()}\\n$`));
  release();
}));
