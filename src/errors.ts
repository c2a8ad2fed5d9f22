/**
 * The project's typed errors, shared by every layer (native facade, control plane, CLI).
 *
 * Each error has a stable `code` (what went wrong, for programs), a `hint` (what to do, for
 * people) and an `exitCode` (what the CLI exits with). Raw errors from the native binding carry
 * an errno `code` ('EPERM', ...), `errno` and `syscall`; translateNativeError() turns them into
 * these classes so callers can branch on the class instead of on errno values.
 */
import { statfsSync } from 'node:fs';
import { dirname } from 'node:path';

/** CLI exit codes. */
export const ExitCode = {
  /** Success. */
  OK: 0,
  /** Unexpected failure (bugs, ABI/layout drift, unclassified errors). */
  FAILURE: 1,
  /** Bad command line, configuration or rules; an interface that does not exist. */
  USAGE: 2,
  /** Not allowed: not root / missing CAP_BPF or CAP_NET_ADMIN, bpffs not mounted. */
  PERMISSION: 3,
  /** Nothing attached, or pinned state / snapshot missing, stale or conflicting. */
  STATE: 4,
  /** The kernel refused: verifier rejection, XDP mode unsupported, other syscall errors. */
  KERNEL: 5,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

export interface LvsErrorOptions {
  hint?: string;
  cause?: unknown;
  /** errno name of the underlying syscall failure ('EPERM', ...), when there is one. */
  errno?: string;
  /** Failing operation (libbpf function or syscall), when there is one. */
  syscall?: string;
}

export class LvsError extends Error {
  readonly code: string;
  readonly hint?: string;
  readonly exitCode: number;
  readonly errno?: string;
  readonly syscall?: string;

  constructor(message: string, code = 'FAILURE', exitCode: number = ExitCode.FAILURE, opts: LvsErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = exitCode;
    if (opts.hint !== undefined) this.hint = opts.hint;
    if (opts.errno !== undefined) this.errno = opts.errno;
    if (opts.syscall !== undefined) this.syscall = opts.syscall;
  }
}

/** Not root, or missing CAP_BPF / CAP_NET_ADMIN. */
export class PermissionError extends LvsError {
  constructor(message: string, opts: LvsErrorOptions = {}) {
    super(message, 'PERMISSION', ExitCode.PERMISSION, {
      hint: 'run as root (BPF and XDP need CAP_BPF, CAP_NET_ADMIN and CAP_PERFMON)',
      ...opts,
    });
  }
}

/** The BPF filesystem is not mounted where pins are kept. */
export class BpffsError extends LvsError {
  constructor(message: string, opts: LvsErrorOptions = {}) {
    super(message, 'BPFFS', ExitCode.PERMISSION, { hint: 'mount it: mount -t bpf bpf /sys/fs/bpf', ...opts });
  }
}

export class InterfaceNotFoundError extends LvsError {
  readonly iface: string;
  constructor(iface: string | number, opts: LvsErrorOptions = {}) {
    const what = typeof iface === 'number' ? `ifindex ${iface}` : `'${iface}'`;
    super(`no network interface ${what}`, 'INTERFACE_NOT_FOUND', ExitCode.USAGE, {
      hint: 'check the name with `ip link`; in a network namespace, run inside it',
      ...opts,
    });
    this.iface = String(iface);
  }
}

/** The requested XDP mode is not supported (e.g. native mode on a driver without XDP). */
export class XdpModeError extends LvsError {
  readonly mode: string;
  /** The kernel's / libbpf's own words, when it gave any. */
  readonly kernelMessage?: string;
  constructor(message: string, mode: string, kernelMessage?: string, opts: LvsErrorOptions = {}) {
    super(kernelMessage && !message.includes(kernelMessage) ? `${message}: ${kernelMessage}` : message, 'XDP_MODE', ExitCode.KERNEL, {
      hint:
        mode === 'native'
          ? "the driver may not support native XDP: try mode 'generic' (slower) or 'auto'"
          : 'check the interface (MTU, driver) and the kernel log (dmesg)',
      ...opts,
    });
    this.mode = mode;
    if (kernelMessage) this.kernelMessage = kernelMessage;
  }
}

/** The verifier rejected a program; `.log` holds its log (the end matters most). */
export class VerifierError extends LvsError {
  readonly log: string;
  constructor(message: string, log: string, opts: LvsErrorOptions = {}) {
    super(message, 'VERIFIER', ExitCode.KERNEL, {
      hint: 'the BPF program was rejected by this kernel; the end of .log says why',
      ...opts,
    });
    this.log = log;
  }
}

/** A shared struct's layout in the object's BTF differs from what the control plane expects. */
export class LayoutError extends LvsError {
  constructor(message: string, opts: LvsErrorOptions = {}) {
    super(message, 'LAYOUT', ExitCode.FAILURE, {
      hint: 'the BPF object and the control plane are out of sync: rebuild both (npm run build)',
      ...opts,
    });
  }
}

/** Bad rules or configuration. `location` is like 'lvs.yaml:12:3' or 'rule 4'. */
export class ConfigError extends LvsError {
  readonly location?: string;
  readonly field?: string;
  /** `where.hint` is accepted as a shorthand for `opts.hint`. */
  constructor(message: string, where: { location?: string; field?: string; hint?: string } = {}, opts: LvsErrorOptions = {}) {
    const prefix = [where.location, where.field].filter(Boolean).join(': ');
    const o = where.hint !== undefined && opts.hint === undefined ? { ...opts, hint: where.hint } : opts;
    super(prefix ? `${prefix}: ${message}` : message, 'CONFIG', ExitCode.USAGE, o);
    if (where.location !== undefined) this.location = where.location;
    if (where.field !== undefined) this.field = where.field;
  }
}

/** Pinned state or a snapshot is missing, stale or conflicting. */
export class StateError extends LvsError {
  constructor(message: string, opts: LvsErrorOptions = {}) {
    super(message, 'STATE', ExitCode.STATE, opts);
  }
}

export class NotAttachedError extends LvsError {
  constructor(message: string, opts: LvsErrorOptions = {}) {
    super(message, 'NOT_ATTACHED', ExitCode.STATE, { hint: 'attach first (lvs-xdp attach)', ...opts });
  }
}

/** What the caller was doing, to word the translated error. */
export interface NativeErrorContext {
  /** Short description of the operation, e.g. 'attach XDP' or 'load bpf/lvs.o'. */
  action?: string;
  ifname?: string;
  ifindex?: number;
  /** A bpffs or object path involved. */
  path?: string;
  mode?: string;
}

/** Shape of errors thrown by the native binding. */
interface RawNativeError extends Error {
  code?: string;
  errno?: number;
  syscall?: string;
  log?: string;
  libbpfLog?: string;
}

const BPF_FS_MAGIC = 0xcafe4a11;

/** True when `path` (or its nearest existing parent) is on a mounted BPF filesystem. */
export function isOnBpffs(path: string): boolean {
  for (let p = path; ; p = dirname(p)) {
    try {
      return statfsSync(p).type === BPF_FS_MAGIC;
    } catch {
      if (dirname(p) === p) return false;
    }
  }
}

/** Binding operations that look names up in an object (not syscalls). */
const OBJECT_LOOKUPS = new Set([
  'btfStruct',
  'btfEnum',
  'setGlobal',
  'getGlobal',
  'mapFd',
  'progFd',
  'mapDef',
  'setMaxEntries',
  'reuseMapFd',
  'setPinPath',
]);
const PERMISSION_CODES = new Set(['EPERM', 'EACCES']);
const UNSUPPORTED_CODES = new Set(['EOPNOTSUPP', 'ENOTSUPP', 'EINVAL', 'ERANGE']);

/** The kernel's own explanation from the binding's captured output ("kernel: ..." lines). */
function kernelMessage(libbpfLog: string | undefined): string | undefined {
  if (!libbpfLog) return undefined;
  const lines = libbpfLog.split('\n').map((l) => l.trim()).filter(Boolean);
  const k = lines.filter((l) => l.startsWith('kernel: ')).map((l) => l.slice('kernel: '.length));
  return (k.length ? k.join('; ') : lines.at(-1)) || undefined;
}

/**
 * Maps a raw native error to a typed LvsError. Already-typed errors pass through; anything
 * unrecognised becomes an LvsError with code 'KERNEL' (syscall failures) or 'FAILURE'.
 */
export function translateNativeError(e: unknown, context: NativeErrorContext = {}): LvsError {
  if (e instanceof LvsError) return e;
  if (!(e instanceof Error)) return new LvsError(String(e), 'FAILURE', ExitCode.FAILURE, { cause: e });
  const raw = e as RawNativeError;
  const code = typeof raw.code === 'string' ? raw.code : undefined;
  const syscall = typeof raw.syscall === 'string' ? raw.syscall : undefined;
  const base: LvsErrorOptions = { cause: e };
  if (code) base.errno = code;
  if (syscall) base.syscall = syscall;
  const action = context.action ? `${context.action}: ` : '';
  const msg = `${action}${raw.message}`;

  if (!code || typeof raw.errno !== 'number') return new LvsError(msg, 'FAILURE', ExitCode.FAILURE, base);

  // Program load: a log means the verifier spoke (EACCES, EINVAL, E2BIG, or ENOSPC when it
  // overflowed the buffer); EPERM without one is missing privilege.
  if (syscall === 'bpf_object__load') {
    if (raw.log && raw.log.length > 0) return new VerifierError(msg, raw.log, base);
    if (PERMISSION_CODES.has(code)) return new PermissionError(msg, base);
    return new LvsError(msg, 'KERNEL', ExitCode.KERNEL, base);
  }

  // The object lacks a type, global, map or program the control plane expects, or a global's
  // size differs: the object and the code that drives it were built from different sources.
  if (syscall && OBJECT_LOOKUPS.has(syscall) && (code === 'ENOENT' || code === 'EINVAL')) {
    return new LayoutError(msg, base);
  }

  const iface = context.ifname ?? context.ifindex;
  if ((code === 'ENODEV' || code === 'ENXIO') && (iface !== undefined || /^(if_|bpf_xdp|bpf_link_create)/.test(syscall ?? ''))) {
    const fromMessage = /ifindex (\d+)/.exec(raw.message);
    return new InterfaceNotFoundError(iface ?? (fromMessage ? Number(fromMessage[1]) : 'unknown'), base);
  }

  const pinning = syscall === 'bpf_obj_pin' || syscall === 'bpf_obj_get';
  if (pinning && context.path !== undefined && !isOnBpffs(context.path)) {
    return new BpffsError(`${msg}: ${context.path} is not on a BPF filesystem`, base);
  }
  if (syscall === 'bpf_obj_get' && code === 'ENOENT') {
    return new StateError(msg, { ...base, hint: 'nothing is pinned there: is the director attached?' });
  }
  if (syscall === 'bpf_obj_pin' && code === 'EEXIST') {
    return new StateError(msg, { ...base, hint: 'a pin with that name exists already: remove it or reuse it' });
  }

  if (syscall === 'bpf_link_create') {
    if (code === 'EEXIST' || code === 'EBUSY') {
      return new StateError(msg, {
        ...base,
        hint: 'another XDP program is attached to this interface: detach it first (ip link set dev IF xdp off)',
      });
    }
    if (UNSUPPORTED_CODES.has(code)) {
      const mode = context.mode ?? 'native';
      return new XdpModeError(msg, mode, kernelMessage(raw.libbpfLog), base);
    }
  }

  if (PERMISSION_CODES.has(code)) return new PermissionError(msg, base);
  return new LvsError(msg, 'KERNEL', ExitCode.KERNEL, base);
}

/** One line for a log or an answer: the message, with an LvsError's hint. */
export function errorText(e: unknown): string {
  if (e instanceof LvsError) return `${e.message}${e.hint ? ` (hint: ${e.hint})` : ''}`;
  return e instanceof Error ? e.message : String(e);
}
