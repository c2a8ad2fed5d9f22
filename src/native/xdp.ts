/**
 * XDP attachment by bpf_link (native/xdp.cc), and the one piece of policy the facade keeps:
 * which refusals of native mode let 'auto' run the program in generic mode instead.
 */
import { loadNative } from './load.js';
import { call, translate } from './common.js';
import { ifIndex } from './fds.js';
import { LvsError, NotAttachedError, type NativeErrorContext } from '../errors.js';
import type { LinkInfo, NativeError, XdpQueryRaw } from './binding.js';

export type XdpMode = 'native' | 'generic' | 'auto';
export type XdpQuery = XdpQueryRaw;

function ifaceCtx(action: string, iface: string | number): NativeErrorContext {
  return typeof iface === 'number' ? { action, ifindex: iface } : { action, ifname: iface };
}

/** What is attached to an interface, by mode. */
export function xdpQuery(iface: string | number): XdpQuery {
  const idx = ifIndex(iface);
  return call(ifaceCtx(`query XDP on ${iface}`, iface), (n) => n.xdpQuery(idx));
}

/**
 * Refusals of a native attach that generic mode would repeat, so 'auto' reports them instead of
 * falling back: EBADF (not a program fd), EPERM (privilege, or a program that may not attach),
 * EEXIST / EBUSY (another program or link holds the device), ENODEV (no such device). Any other
 * refusal means the driver has no native XDP for this device (EOPNOTSUPP: no XDP in the driver;
 * ERANGE: veth with an MTU too large for a page) and generic mode is worth trying.
 */
const SAME_IN_GENERIC: ReadonlySet<string> = new Set(['EBADF', 'EPERM', 'EEXIST', 'EBUSY', 'ENODEV']);

/** True when a failed native attach (raw binding error) justifies generic mode for 'auto'. */
export function nativeRefusalAllowsGeneric(e: unknown): boolean {
  if (!(e instanceof Error) || e instanceof TypeError || e instanceof RangeError) return false; // a caller bug
  const code = (e as Partial<NativeError>).code;
  return typeof code === 'string' && !SAME_IN_GENERIC.has(code);
}

/** Why an 'auto' attach runs in generic mode. */
export interface XdpFallback {
  /** The native attempt's error, typed (an XdpModeError for a driver without native XDP). */
  error: LvsError;
  /** One line for the operator, e.g. "native mode refused (EOPNOTSUPP): Underlying driver ...". */
  reason: string;
}

function fallbackOf(e: unknown, ctx: NativeErrorContext): XdpFallback {
  const error = translate(e, { ...ctx, mode: 'native' }) as LvsError;
  const said = 'kernelMessage' in error && typeof error.kernelMessage === 'string' ? `: ${error.kernelMessage}` : '';
  return { error, reason: `native mode refused (${error.errno ?? 'unknown error'})${said}` };
}

/**
 * An XDP attachment held by a bpf_link. Closing the fd detaches it unless the link is pinned;
 * pin it to keep the program attached after the process exits.
 */
export class XdpLink {
  readonly fd: number;
  readonly ifindex: number;
  /** The mode in use ('unknown' for a link reopened from a pin whose device lost its program). */
  readonly mode: 'native' | 'generic' | 'offload' | 'unknown';
  /** Set when 'auto' fell back to generic mode: why native mode was refused. */
  readonly fallback?: XdpFallback;
  private closed = false;

  private constructor(fd: number, ifindex: number, mode: XdpLink['mode'], fallback?: XdpFallback) {
    this.fd = fd;
    this.ifindex = ifindex;
    this.mode = mode;
    if (fallback) this.fallback = fallback;
  }

  /**
   * Attaches; 'auto' tries native, then generic when the driver refuses native XDP (see
   * `fallback`). Failures: InterfaceNotFoundError, XdpModeError, StateError.
   */
  static attach(progFd: number, iface: string | number, mode: XdpMode = 'auto'): XdpLink {
    const idx = ifIndex(iface);
    const ctx = { ...ifaceCtx(`attach XDP (${mode}) to ${iface}`, iface), mode };
    if (mode !== 'auto') return new XdpLink(call(ctx, (n) => n.xdpAttachLink(progFd, idx, mode)).linkFd, idx, mode);
    const n = loadNative();
    let fallback: XdpFallback;
    try {
      return new XdpLink(n.xdpAttachLink(progFd, idx, 'native').linkFd, idx, 'native');
    } catch (e) {
      if (!nativeRefusalAllowsGeneric(e)) throw translate(e, ctx);
      fallback = fallbackOf(e, ctx);
    }
    const genericCtx = { ...ctx, action: `${ctx.action}: ${fallback.reason}, then generic mode failed` };
    const r = call(genericCtx, (b) => b.xdpAttachLink(progFd, idx, 'generic'));
    return new XdpLink(r.linkFd, idx, 'generic', fallback);
  }

  /** Reopens a pinned link (e.g. to update or detach the program of a running director). */
  static fromPin(path: string): XdpLink {
    const fd = call({ action: `open pinned link ${path}`, path }, (n) => n.objGet(path));
    return XdpLink.fromOwnedFd(fd);
  }

  static fromId(id: number): XdpLink {
    return XdpLink.fromOwnedFd(call({ action: `open link id ${id}` }, (n) => n.linkFdById(id)));
  }

  private static fromOwnedFd(fd: number): XdpLink {
    const n = loadNative();
    try {
      const info = call({ action: `read link info of fd ${fd}` }, (b) => b.linkInfo(fd));
      const ifindex = info.ifindex ?? 0;
      let mode: XdpLink['mode'] = 'unknown';
      if (ifindex) {
        const q = call({ action: `query XDP on ifindex ${ifindex}`, ifindex }, (b) => b.xdpQuery(ifindex));
        if (q.driverProgId === info.progId) mode = 'native';
        else if (q.skbProgId === info.progId) mode = 'generic';
        else if (q.hwProgId === info.progId) mode = 'offload';
      }
      return new XdpLink(fd, ifindex, mode);
    } catch (e) {
      n.closeFd(fd);
      throw e;
    }
  }

  private liveFd(): number {
    if (this.closed) throw new NotAttachedError('XDP link is closed');
    return this.fd;
  }

  info(): LinkInfo {
    const fd = this.liveFd();
    return call({ action: 'read XDP link info' }, (n) => n.linkInfo(fd));
  }

  /** Swaps the program atomically; with oldProgFd only if that one is still attached. */
  update(progFd: number, oldProgFd?: number): void {
    const fd = this.liveFd();
    call({ action: 'replace XDP program', ifindex: this.ifindex }, (n) =>
      oldProgFd === undefined ? n.linkUpdate(fd, progFd) : n.linkUpdate(fd, progFd, oldProgFd),
    );
  }

  pin(path: string): void {
    const fd = this.liveFd();
    call({ action: `pin XDP link at ${path}`, path }, (n) => n.objPin(fd, path));
  }

  /** Detaches now, even if pinned (the pin then refers to a defunct link). */
  detach(): void {
    const fd = this.liveFd();
    call({ action: 'detach XDP', ifindex: this.ifindex }, (n) => n.linkDetach(fd));
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    loadNative().closeFd(this.fd);
  }
}

/** attachXdp(prog, 'eth0', 'auto'): see XdpLink.attach. */
export function attachXdp(progFd: number, iface: string | number, mode: XdpMode = 'auto'): XdpLink {
  return XdpLink.attach(progFd, iface, mode);
}
