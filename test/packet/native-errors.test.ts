// translateNativeError: raw binding errors (code/errno/syscall) to the project's typed errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  BpffsError,
  ConfigError,
  ExitCode,
  InterfaceNotFoundError,
  LayoutError,
  LvsError,
  PermissionError,
  StateError,
  VerifierError,
  XdpModeError,
  isOnBpffs,
  translateNativeError,
} from '../../src/errors.js';
import { loadNative } from '../../src/native/testing.js';

function raw(code: string, errno: number, syscall: string, extra: Record<string, string> = {}): Error {
  return Object.assign(new Error(`${syscall}: failed`), { code, errno, syscall, ...extra });
}

test('load failures: a log makes a VerifierError, EPERM without one a PermissionError', () => {
  const v = translateNativeError(raw('EACCES', 13, 'bpf_object__load', { log: '0: R1=ctx\ninvalid access\n' }), {
    action: 'load lvs.o',
  });
  assert.ok(v instanceof VerifierError);
  assert.equal(v.log, '0: R1=ctx\ninvalid access\n');
  assert.equal(v.exitCode, ExitCode.KERNEL);
  assert.match(v.message, /^load lvs\.o: /);
  assert.ok(translateNativeError(raw('ENOSPC', 28, 'bpf_object__load', { log: 'x' })) instanceof VerifierError);
  const p = translateNativeError(raw('EPERM', 1, 'bpf_object__load'));
  assert.ok(p instanceof PermissionError);
  assert.equal(p.exitCode, ExitCode.PERMISSION);
  assert.match(p.hint ?? '', /root/);
});

test('XDP attach errors', () => {
  const nodev = translateNativeError(raw('ENODEV', 19, 'bpf_link_create'), { ifname: 'eth9' });
  assert.ok(nodev instanceof InterfaceNotFoundError);
  assert.equal(nodev.iface, 'eth9');
  assert.equal(nodev.exitCode, ExitCode.USAGE);
  const fromMsg = Object.assign(new Error('bpf_link_create: No such device (XDP: no network interface with ifindex 42)'), {
    code: 'ENODEV', errno: 19, syscall: 'bpf_link_create',
  });
  assert.equal((translateNativeError(fromMsg) as InterfaceNotFoundError).iface, '42');

  const mode = translateNativeError(
    raw('EOPNOTSUPP', 95, 'bpf_link_create', { libbpfLog: 'libbpf: something\nkernel: native XDP not supported\n' }),
    { mode: 'native', ifname: 'lo' },
  );
  assert.ok(mode instanceof XdpModeError);
  assert.equal(mode.mode, 'native');
  assert.equal(mode.kernelMessage, 'native XDP not supported');
  assert.match(mode.message, /native XDP not supported$/);
  assert.match(mode.hint ?? '', /generic/);
  assert.ok(translateNativeError(raw('EBUSY', 16, 'bpf_link_create')) instanceof StateError);
  assert.ok(translateNativeError(raw('EEXIST', 17, 'bpf_link_create')) instanceof StateError);
});

test('pinning errors', () => {
  assert.ok(translateNativeError(raw('ENOENT', 2, 'bpf_obj_get'), { path: '/sys/fs/bpf/lvs/x' }) instanceof (isOnBpffs('/sys/fs/bpf') ? StateError : BpffsError));
  const b = translateNativeError(raw('EPERM', 1, 'bpf_obj_pin'), { path: '/tmp/not-bpffs/x' });
  assert.ok(b instanceof BpffsError);
  assert.match(b.hint ?? '', /mount -t bpf bpf \/sys\/fs\/bpf/);
});

test('object lookups are layout errors; other errnos keep their code', () => {
  assert.ok(translateNativeError(raw('ENOENT', 2, 'btfStruct')) instanceof LayoutError);
  assert.ok(translateNativeError(raw('EINVAL', 22, 'setGlobal')) instanceof LayoutError);
  const k = translateNativeError(raw('E2BIG', 7, 'bpf_map_update_elem'));
  assert.equal(k.constructor, LvsError);
  assert.equal(k.code, 'KERNEL');
  assert.equal(k.errno, 'E2BIG');
  assert.equal(k.syscall, 'bpf_map_update_elem');
  assert.equal(k.exitCode, ExitCode.KERNEL);
  assert.ok(translateNativeError(raw('EPERM', 1, 'bpf_map_create')) instanceof PermissionError);
  const plain = translateNativeError(new Error('boom'));
  assert.equal(plain.code, 'FAILURE');
  assert.equal(plain.exitCode, ExitCode.FAILURE);
  const typed = new StateError('x');
  assert.equal(translateNativeError(typed), typed);
});

test('ConfigError carries location and field', () => {
  const e = new ConfigError('weight must be >= 0', { location: 'lvs.yaml:12:3', field: 'weight', hint: 'see docs' });
  assert.equal(e.message, 'lvs.yaml:12:3: weight: weight must be >= 0');
  assert.equal(e.location, 'lvs.yaml:12:3');
  assert.equal(e.field, 'weight');
  assert.equal(e.hint, 'see docs');
  assert.equal(e.exitCode, ExitCode.USAGE);
  assert.equal(e.name, 'ConfigError');
});

test('the binding loads', () => {
  assert.equal(typeof loadNative().possibleCpus, 'function');
  assert.ok(loadNative().possibleCpus() >= 1);
});
