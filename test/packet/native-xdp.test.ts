// XDP links on a veth pair made for the test (the attach acts in this process's network
// namespace, so the pair lives in the host namespace under a unique name and is deleted after).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  BpfObject,
  LinkType,
  XdpLink,
  attachXdp,
  ifIndex,
  ifName,
  native,
  progInfo,
  xdpQuery,
  type XdpMode,
} from '../../src/native/index.js';
import { InterfaceNotFoundError, NotAttachedError, StateError, XdpModeError } from '../../src/errors.js';
import { repoRoot } from '../lib/paths.js';


const vethA = `lvt${process.pid}a`;
const vethB = `lvt${process.pid}b`;
let obj: BpfObject;
let pinDir: string;

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

before(async () => {
  const root = repoRoot();
  execFileSync('make', ['-s', '-C', join(root, 'bpf'), 'floors.o'], { stdio: 'inherit' });
  obj = await BpfObject.open(join(root, 'bpf', 'floors.o'));
  ip('link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB);
  ip('link', 'set', vethA, 'up');
  ip('link', 'set', vethB, 'up');
  pinDir = mkdtempSync('/sys/fs/bpf/lvsnt-');
});

after(() => {
  try {
    ip('link', 'del', vethA);
  } catch {
    // already gone
  }
  if (pinDir) rmSync(pinDir, { recursive: true, force: true });
  obj?.close();
});

for (const mode of ['native', 'generic', 'auto'] as XdpMode[]) {
  test(`attach, query, update, pin, detach in ${mode} mode`, () => {
    const pass = obj.progFd('floor_pass');
    const drop = obj.progFd('floor_drop');
    const link = attachXdp(pass, vethA, mode);
    try {
      const expected = mode === 'generic' ? 'generic' : 'native'; // veth has native XDP
      assert.equal(link.mode, expected);
      assert.equal(link.ifindex, ifIndex(vethA));
      const q = xdpQuery(vethA);
      assert.equal(q.attachMode, expected);
      assert.equal(q.progId, progInfo(pass).id);
      assert.equal(expected === 'native' ? q.driverProgId : q.skbProgId, q.progId);
      const li = link.info();
      assert.equal(li.type, LinkType.XDP);
      assert.equal(li.ifindex, link.ifindex);
      assert.equal(li.progId, q.progId);

      // A second program cannot take the interface while the link holds it.
      // The kernel's reason is fetched for the message (BPF_LINK_CREATE alone gives none).
      assert.throws(() => attachXdp(drop, vethA, mode), (e: unknown) => {
        assert.ok(e instanceof StateError, String(e));
        assert.match(e.message, /kernel: Can't replace active BPF XDP link/);
        return true;
      });
      const other = mode === 'generic' ? 'native' : 'generic';
      assert.throws(() => attachXdp(drop, vethA, other), /Native and generic XDP can't be active at the same time/);
      assert.equal(xdpQuery(vethA).progId, progInfo(pass).id, 'the failed attaches changed nothing');

      link.update(drop);
      assert.equal(xdpQuery(vethA).progId, progInfo(drop).id);
      assert.throws(() => link.update(pass, pass), (e: unknown) => (e as { errno?: string }).errno === 'EPERM');
      link.update(pass, drop);
      assert.equal(xdpQuery(vethA).progId, progInfo(pass).id);

      const pin = join(pinDir, `link-${mode}`);
      link.pin(pin);
      const reopened = XdpLink.fromPin(pin);
      try {
        assert.equal(reopened.mode, expected);
        assert.equal(reopened.info().id, li.id);
      } finally {
        reopened.close();
      }
      rmSync(pin);

      link.detach();
      assert.equal(xdpQuery(vethA).attachMode, 'none');
      assert.equal(link.info().ifindex, 0);
    } finally {
      link.close();
    }
    assert.throws(() => link.detach(), NotAttachedError);
    assert.equal(xdpQuery(vethA).attachMode, 'none');
  });
}

test('closing an unpinned link detaches the program', () => {
  const link = attachXdp(obj.progFd('floor_pass'), vethA, 'generic');
  assert.equal(xdpQuery(vethA).attachMode, 'generic');
  link.close();
  assert.equal(xdpQuery(vethA).attachMode, 'none');
});

test('interface names and indexes', () => {
  const idx = ifIndex(vethA);
  assert.ok(idx > 0);
  assert.equal(ifName(idx), vethA);
  assert.throws(() => ifIndex('lvtnosuch0'), InterfaceNotFoundError);
});

test('attaching to a missing interface is an InterfaceNotFoundError with the reason', () => {
  const missing = 0x7ffffff0;
  assert.throws(() => attachXdp(obj.progFd('floor_pass'), missing, 'auto'), (e: unknown) => {
    assert.ok(e instanceof InterfaceNotFoundError, String(e));
    assert.equal(e.errno, 'ENODEV');
    assert.match(e.message, new RegExp(`ifindex ${missing}`));
    assert.equal(e.exitCode, 2);
    return true;
  });
  assert.throws(() => native().xdpAttachLink(obj.progFd('floor_pass'), missing, 'native'), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, 'ENODEV');
    assert.equal(e.syscall, 'bpf_link_create');
    assert.match(e.message, /no network interface with ifindex/);
    return true;
  });
  assert.throws(() => xdpQuery(missing), InterfaceNotFoundError);
  assert.throws(() => attachXdp(obj.progFd('floor_pass'), 'lvtnosuch0'), InterfaceNotFoundError);
});

test('native mode refused by the driver: XdpModeError with the kernel message; auto falls back', () => {
  // veth refuses native XDP when the peer's MTU is too large for a page.
  ip('link', 'set', vethB, 'mtu', '9000');
  ip('link', 'set', vethA, 'mtu', '9000');
  try {
    assert.throws(() => attachXdp(obj.progFd('floor_pass'), vethA, 'native'), (e: unknown) => {
      assert.ok(e instanceof XdpModeError, String(e));
      assert.equal(e.mode, 'native');
      assert.match(e.kernelMessage ?? '', /MTU is too large/);
      assert.match(e.hint ?? '', /generic/);
      assert.equal(e.exitCode, 5);
      return true;
    });
    assert.equal(xdpQuery(vethA).attachMode, 'none');
    const link = attachXdp(obj.progFd('floor_pass'), vethA, 'auto');
    try {
      assert.equal(link.mode, 'generic');
      assert.equal(xdpQuery(vethA).attachMode, 'generic');
    } finally {
      link.close();
    }
  } finally {
    ip('link', 'set', vethA, 'mtu', '1500');
    ip('link', 'set', vethB, 'mtu', '1500');
  }
});
