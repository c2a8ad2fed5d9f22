/**
 * Sync messages over UDP as IPVS's sync daemon sends and receives them
 * (net/netfilter/ipvs/ip_vs_sync.c: make_send_sock, make_receive_sock, ip_vs_process_message):
 *   master: a UDP socket whose multicast interface is the one named (--mcast-interface), bound to
 *     that interface's IPv4 address (IPv6: the interface's scope), multicast TTL / hop limit 1 by
 *     default, no multicast loopback (a director that is master and backup at once does not hear
 *     itself), sending to the group (224.0.0.81 by default) and port (8848 by default).
 *   backup: a UDP socket on the port that joins the group on the named interface; a datagram
 *     longer than sync-maxlen, malformed, or from another syncid (unless the backup's syncid is
 *     0) is dropped and counted.
 * lvs-xdp extension: `peers`, unicast addresses that get every message too (and that a backup
 * receives on the same port), for networks without multicast between the directors.
 * Differences from the kernel, all invisible on the wire: one socket (the kernel opens one per
 * sync thread, port + id, when sync_ports > 1); the backup's socket is bound to the wildcard
 * address (Node has no SO_BINDTODEVICE), so the group is joined on the named interface only but
 * unicast may arrive on any; DF is left to the system (the kernel clears it).
 */
import { createSocket, type Socket, type RemoteInfo } from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { isIP } from 'node:net';
import { LvsError } from '../errors.js';
import {
  SYNC_GROUP4, SYNC_PORT, SYNC_TTL, decode, encode, syncMaxlen, syncidAccepted, SyncDecodeError,
  type SyncConn, type SyncMessage,
} from './proto.js';

export interface SyncEndpoint {
  address: string;
  port: number;
}

export class SyncTransportError extends LvsError {
  constructor(message: string, hint?: string) {
    super(message, 'SYNC_TRANSPORT', undefined, hint === undefined ? {} : { hint });
  }
}

/** "ADDR", "ADDR:PORT" or "[IPV6]:PORT" -> endpoint (port defaults to `port`). */
export function parsePeer(text: string, port: number): SyncEndpoint {
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  const [addr, p] = bracket ? [bracket[1]!, bracket[2]] : isIP(text) ? [text, undefined] : (() => {
    const i = text.lastIndexOf(':');
    return i < 0 ? [text, undefined] : [text.slice(0, i), text.slice(i + 1)];
  })();
  if (!isIP(addr)) throw new SyncTransportError(`sync peer "${text}": not an IP address`);
  const portNum = p === undefined ? port : Number(p);
  if (!Number.isInteger(portNum) || portNum < 1 || portNum > 65535) throw new SyncTransportError(`sync peer "${text}": bad port`);
  return { address: addr, port: portNum };
}

/** The interface's first address of the family (IPv4 for binding, as bind_mcastif_addr does). */
function interfaceAddress(ifname: string, family: 4 | 6): string {
  const addrs = networkInterfaces()[ifname];
  if (!addrs) throw new SyncTransportError(`sync: no interface "${ifname}"`, 'name the interface that faces the other director (--mcast-interface)');
  const a = addrs.find((x) => x.family === (family === 4 ? 'IPv4' : 'IPv6'));
  if (!a) throw new SyncTransportError(`sync: interface "${ifname}" has no IPv${family} address`, 'give the sync interface an address of the group\'s family');
  return a.address;
}

function familyOf(group: string): 4 | 6 {
  const f = isIP(group);
  if (f !== 4 && f !== 6) throw new SyncTransportError(`sync: group "${group}" is not an IP address`);
  return f;
}

async function bind(sock: Socket, port: number, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ port, address, exclusive: false }, () => {
      sock.off('error', reject);
      resolve();
    });
  });
}

export interface SenderOptions {
  /** --mcast-interface: by name. */
  interface: string;
  syncid: number;
  group?: string;
  port?: number;
  ttl?: number;
  /** sync-maxlen; default the kernel's for a master (1500 - IP and UDP headers). */
  maxLen?: number;
  /** false: unicast to the peers only. */
  multicast?: boolean;
  peers?: readonly string[];
}

export interface SenderStats {
  messages: number;
  datagrams: number;
  sendErrors: number;
}

/** The master side: encodes connection entries into messages and sends each to the group and peers. */
export class SyncSender {
  readonly maxLen: number;
  readonly destinations: readonly SyncEndpoint[];
  readonly stats: SenderStats = { messages: 0, datagrams: 0, sendErrors: 0 };
  private constructor(private readonly sock: Socket, private readonly syncid: number, maxLen: number, destinations: SyncEndpoint[]) {
    this.maxLen = maxLen;
    this.destinations = destinations;
  }

  static async open(o: SenderOptions): Promise<SyncSender> {
    const group = o.group ?? SYNC_GROUP4;
    const family = familyOf(group);
    const port = o.port ?? SYNC_PORT;
    const peers = (o.peers ?? []).map((p) => parsePeer(p, port));
    for (const p of peers) if (isIP(p.address) !== family) throw new SyncTransportError(`sync peer ${p.address}: not IPv${family} like the group ${group}`);
    const dests = [...(o.multicast === false ? [] : [{ address: group, port }]), ...peers];
    if (dests.length === 0) throw new SyncTransportError('sync: nowhere to send (multicast off and no peers)');
    const sock = createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
    try {
      if (family === 4) {
        const addr = interfaceAddress(o.interface, 4);
        await bind(sock, 0, addr);
        sock.setMulticastInterface(addr);
      } else {
        interfaceAddress(o.interface, 6);
        await bind(sock, 0, '::');
        sock.setMulticastInterface(`::%${o.interface}`);
      }
      sock.setMulticastTTL(o.ttl ?? SYNC_TTL);
      sock.setMulticastLoopback(false);
    } catch (e) {
      sock.close();
      throw e instanceof LvsError ? e : new SyncTransportError(`sync: cannot open the sending socket on ${o.interface}: ${(e as Error).message}`);
    }
    return new SyncSender(sock, o.syncid, o.maxLen ?? syncMaxlen({ role: 'master', family }), dests);
  }

  /** Encodes and sends; resolves with the number of messages once every datagram is handed to the kernel. */
  async send(conns: readonly SyncConn[]): Promise<number> {
    const msgs = encode(conns, { syncid: this.syncid, maxLen: this.maxLen });
    for (const m of msgs) await this.sendRaw(m);
    return msgs.length;
  }

  /** One datagram as it is, to every destination (tests send malformed ones with it). */
  async sendRaw(msg: Uint8Array): Promise<void> {
    this.stats.messages++;
    for (const d of this.destinations) {
      try {
        await new Promise<void>((resolve, reject) => this.sock.send(msg, d.port, d.address, (err) => (err ? reject(err) : resolve())));
        this.stats.datagrams++;
      } catch {
        // like the kernel's master, a failed send is counted, not retried
        this.stats.sendErrors++;
      }
    }
  }

  close(): void {
    this.sock.close();
  }
}

export interface ReceiverOptions {
  interface: string;
  /** The backup's syncid: 0 takes every master's messages. */
  syncid: number;
  group?: string;
  port?: number;
  /** sync-maxlen: longer datagrams are dropped. Default the kernel's for a backup on this MTU. */
  maxLen?: number;
  /** false: do not join the group (unicast peers only). */
  multicast?: boolean;
  onMessage: (msg: SyncMessage, from: SyncEndpoint) => void;
  /** A datagram dropped whole (reason names the byte, for malformed ones). */
  onDrop?: (reason: string, from: SyncEndpoint) => void;
}

export interface ReceiverStats {
  received: number;
  accepted: number;
  /** Messages of another syncid. */
  filtered: number;
  invalid: number;
  /** Entries skipped inside accepted messages (SyncMessage.dropped). */
  droppedEntries: number;
}

/** The backup side: receives, filters by syncid and decodes sync messages. */
export class SyncReceiver {
  readonly stats: ReceiverStats = { received: 0, accepted: 0, filtered: 0, invalid: 0, droppedEntries: 0 };
  private constructor(private readonly sock: Socket, readonly port: number) {}

  static async open(o: ReceiverOptions): Promise<SyncReceiver> {
    const group = o.group ?? SYNC_GROUP4;
    const family = familyOf(group);
    const port = o.port ?? SYNC_PORT;
    const maxLen = o.maxLen ?? syncMaxlen({ role: 'backup', family, ifaceMtu: 1500 });
    const sock = createSocket({ type: family === 4 ? 'udp4' : 'udp6', reuseAddr: true });
    try {
      const ifaddr = interfaceAddress(o.interface, family);
      await bind(sock, port, family === 4 ? '0.0.0.0' : '::');
      if (o.multicast !== false) sock.addMembership(group, family === 4 ? ifaddr : `::%${o.interface}`);
    } catch (e) {
      sock.close();
      throw e instanceof LvsError ? e : new SyncTransportError(`sync: cannot receive on ${o.interface} port ${port}: ${(e as Error).message}`);
    }
    const r = new SyncReceiver(sock, sock.address().port);
    sock.on('message', (buf: Buffer, rinfo: RemoteInfo) => r.onDatagram(buf, { address: rinfo.address, port: rinfo.port }, o, maxLen));
    return r;
  }

  private onDatagram(buf: Buffer, from: SyncEndpoint, o: ReceiverOptions, maxLen: number): void {
    this.stats.received++;
    const drop = (reason: string) => {
      this.stats.invalid++;
      o.onDrop?.(reason, from);
    };
    // the kernel reads at most sync-maxlen bytes: a longer datagram fails its size check
    if (buf.length > maxLen) return drop(`datagram of ${buf.length} bytes, longer than sync-maxlen ${maxLen}`);
    // as ip_vs_process_message: header and size first, then the syncid, then the entries
    const sizeOk = buf.length >= 4 && buf.readUInt16BE(2) === buf.length;
    if (sizeOk && !syncidAccepted(o.syncid, buf[1]!)) {
      this.stats.filtered++;
      return;
    }
    let msg: SyncMessage;
    try {
      msg = decode(buf);
    } catch (e) {
      if (e instanceof SyncDecodeError) return drop(e.message);
      throw e;
    }
    this.stats.accepted++;
    this.stats.droppedEntries += msg.dropped.length;
    o.onMessage(msg, from);
  }

  close(): void {
    this.sock.close();
  }
}
