// XDP links on a veth pair (native XDP) and a bridge (no native XDP) made for the test (the attach
// acts in this process's network namespace, so they live in the host namespace under unique names
// and are deleted after).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import {
  BpfObject,
  LinkType,
  XdpLink,
  attachXdp,
  ifIndex,
  ifName,
  progInfo,
  xdpQuery,
  type XdpMode,
} from '../../src/native/index.js';
import { native } from '../../src/native/testing.js';
import { nativeRefusalAllowsGeneric } from '../../src/native/xdp.js';
import { InterfaceNotFoundError, NotAttachedError, StateError, XdpModeError } from '../../src/errors.js';
import { repoRoot } from '../lib/paths.js';


const vethA = `lvt${process.pid}a`;
const vethB = `lvt${process.pid}b`;
const bridge = `lvt${process.pid}br`;
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
  ip('link', 'add', bridge, 'type', 'bridge');
  pinDir = mkdtempSync('/sys/fs/bpf/lvsnt-');
});

after(() => {
  for (const dev of [vethA, bridge]) {
    try {
      ip('link', 'del', dev);
    } catch {
      // already gone
    }
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
      assert.equal(link.fallback, undefined, 'no fallback where native XDP works');
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
      assert.ok(link.fallback?.error instanceof XdpModeError, String(link.fallback?.error));
      assert.match(link.fallback.reason, /^native mode refused \(ERANGE\): .*MTU is too large/);
    } finally {
      link.close();
    }
  } finally {
    ip('link', 'set', vethA, 'mtu', '1500');
    ip('link', 'set', vethB, 'mtu', '1500');
  }
});

test('a device without native XDP (a bridge): native mode refused; auto runs generic and says why', () => {
  assert.throws(() => attachXdp(obj.progFd('floor_pass'), bridge, 'native'), (e: unknown) => {
    assert.ok(e instanceof XdpModeError, String(e));
    assert.equal(e.errno, 'EOPNOTSUPP');
    assert.match(e.kernelMessage ?? '', /does not support XDP in native mode/);
    return true;
  });
  assert.equal(xdpQuery(bridge).attachMode, 'none');

  const link = attachXdp(obj.progFd('floor_pass'), bridge, 'auto');
  try {
    assert.equal(link.mode, 'generic');
    assert.equal(xdpQuery(bridge).attachMode, 'generic');
    assert.equal(xdpQuery(bridge).skbProgId, progInfo(obj.progFd('floor_pass')).id);
    const fb = link.fallback;
    assert.ok(fb, 'auto reports why it runs generic');
    assert.ok(fb.error instanceof XdpModeError, String(fb.error));
    assert.equal(fb.error.errno, 'EOPNOTSUPP');
    assert.equal(fb.error.mode, 'native');
    assert.equal(fb.reason, 'native mode refused (EOPNOTSUPP): Underlying driver does not support XDP in native mode');
  } finally {
    link.close();
  }
  assert.equal(xdpQuery(bridge).attachMode, 'none');
});

test('auto does not fall back on refusals generic mode would repeat: busy device, bad program fd', () => {
  const held = attachXdp(obj.progFd('floor_pass'), vethA, 'generic');
  try {
    // The native attempt meets the generic program (EEXIST). Falling back would have met the
    // generic link instead (EBUSY, "Can't replace active BPF XDP link"): the error is the native one.
    assert.throws(() => attachXdp(obj.progFd('floor_drop'), vethA, 'auto'), (e: unknown) => {
      assert.ok(e instanceof StateError, String(e));
      assert.equal(e.errno, 'EEXIST');
      assert.match(e.message, /kernel: Native and generic XDP can't be active at the same time/);
      assert.doesNotMatch(e.message, /then generic|Can't replace/);
      return true;
    });
    assert.equal(xdpQuery(vethA).skbProgId, progInfo(obj.progFd('floor_pass')).id, 'the held program stays');
  } finally {
    held.close();
  }

  // A closed fd is no program in any mode (EBADF): one attempt, no "then generic".
  const fd = openSync('/dev/null', 'r');
  closeSync(fd);
  assert.throws(() => attachXdp(fd, bridge, 'auto'), (e: unknown) => {
    assert.equal((e as { errno?: string }).errno, 'EBADF', String(e));
    assert.doesNotMatch((e as Error).message, /then generic/);
    assert.match((e as Error).message, /XDP native mode/);
    return true;
  });
  assert.equal(xdpQuery(bridge).attachMode, 'none');
});

test('the binding attaches only in the mode it is asked for: auto is the facade\'s', () => {
  assert.throws(() => native().xdpAttachLink(obj.progFd('floor_pass'), ifIndex(bridge), 'auto' as never), TypeError);
  assert.throws(() => native().xdpAttachLink(obj.progFd('floor_pass'), ifIndex(bridge), 'native'), (e: NodeJS.ErrnoException) => {
    assert.equal(e.code, 'EOPNOTSUPP');
    assert.equal(e.syscall, 'bpf_link_create');
    return true;
  });
  assert.equal(xdpQuery(bridge).attachMode, 'none');
});

test('which native refusals allow generic mode', () => {
  const raw = (code: string) => Object.assign(new Error(code), { code, errno: 1, syscall: 'bpf_link_create' });
  for (const code of ['EOPNOTSUPP', 'EINVAL', 'ENOTSUPP', 'ENOMEM']) assert.equal(nativeRefusalAllowsGeneric(raw(code)), true, code);
  for (const code of ['EBADF', 'EPERM', 'EEXIST', 'EBUSY', 'ENODEV']) assert.equal(nativeRefusalAllowsGeneric(raw(code)), false, code);
  assert.equal(nativeRefusalAllowsGeneric(new TypeError('progFd must be a file descriptor')), false);
});
