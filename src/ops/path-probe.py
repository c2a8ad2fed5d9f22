#!/usr/bin/env python3
"""Forwarding-path probe (used by `lvs-xdp run`, src/ops/pathprobe.ts).

Sends, from this host, the packet the director's data plane would send for a client's flow
from SRC:SPORT to VIP:PORT (a TCP SYN, or a UDP datagram with the payload):
  tun  an IP-in-IP packet to the realserver's address RIP; the kernel builds the outer header
       (raw socket of protocol 4 = IPv4 inner, 41 = IPv6 inner), so no ipip module is needed;
  dr   an Ethernet frame to the realserver's MAC on DEV, the inner packet unchanged (what
       XDP_TX sends), through an AF_PACKET socket, so no route toward the VIP is needed.
A realserver that holds the VIP (and, for tun, decapsulates) answers from VIP:PORT to SRC:SPORT
directly. The answer is read from DEV with an AF_PACKET socket, before the IP layer: when the
VIP is a local address of the director, the kernel drops that answer as a martian (its source is
one of ours), but the capture still sees it. ICMP errors (tun: protocol unreachable /
unrecognized next header from a realserver that does not decapsulate; port unreachable from the
VIP) fail at once. A SYN-ACK is answered with a RST so the realserver drops the half-open
connection.

Usage (argv only, never a shell):
  path-probe.py MODE PROTO DEV RIP MAC SRC SPORT VIP PORT TIMEOUT_MS [PAYLOAD_HEX [EXPECT_HEX]]
MODE tun|dr, PROTO tcp|udp, MAC the realserver's MAC (dr) or - (tun).
Prints one JSON object {"ok": bool, "detail": str}; exit 0 (also when the check fails), 2 on
bad arguments or a socket error (detail says which). Standard library only.
"""
import ipaddress
import json
import os
import select
import socket
import struct
import sys
import time

IPPROTO_IPIP = 4
IPPROTO_IPV6 = 41
TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
ETH_P_ALL, ETH_P_IP, ETH_P_IPV6 = 0x0003, 0x0800, 0x86DD
PACKET_OUTGOING = 4


def csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff


def pseudo(src, dst, proto, length):
    if src.version == 4:
        return src.packed + dst.packed + struct.pack('!BBH', 0, proto, length)
    return src.packed + dst.packed + struct.pack('!IxxxB', length, proto)


def l4_tcp(src, dst, sport, dport, seq, ack, flags):
    hdr = struct.pack('!HHIIBBHHH', sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    c = csum(pseudo(src, dst, TCP, len(hdr)) + hdr)
    return hdr[:16] + struct.pack('!H', c) + hdr[18:]


def l4_udp(src, dst, sport, dport, payload):
    length = 8 + len(payload)
    hdr = struct.pack('!HHHH', sport, dport, length, 0)
    c = csum(pseudo(src, dst, UDP, length) + hdr + payload) or 0xffff
    return struct.pack('!HHHH', sport, dport, length, c) + payload


def inner_ip(src, dst, proto, l4):
    if src.version == 4:
        hdr = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(l4), int.from_bytes(os.urandom(2), 'big'), 0x4000, 64, proto, 0,
                          src.packed, dst.packed)
        return hdr[:10] + struct.pack('!H', csum(hdr)) + hdr[12:] + l4
    return struct.pack('!IHBB16s16s', 6 << 28, len(l4), proto, 64, src.packed, dst.packed) + l4


def out(ok, detail, code=0):
    sys.stdout.write(json.dumps({'ok': ok, 'detail': detail}) + '\n')
    sys.stdout.flush()
    sys.exit(code)


def attach_filter(sock, vip):
    """Keep only packets from the VIP and ICMP / ICMPv6 messages of either family (classic BPF,
    SO_ATTACH_FILTER): the capture then copies nothing else of a busy interface. Offsets are
    from the IP header (SOCK_DGRAM); the ethertype is the ancillary load SKF_AD_PROTOCOL."""
    import ctypes
    LD_W, LDB, JEQ, RET = 0x20, 0x30, 0x15, 0x06
    words = [int.from_bytes(vip.packed[i:i + 4], 'big') for i in range(0, len(vip.packed), 4)]
    # (code, jump-if-true label, jump-if-false label, k); labels resolved below.
    prog = [(LD_W, None, None, (-0x1000) & 0xffffffff),          # ld #proto
            (JEQ, None, 'v6', ETH_P_IP),
            (LDB, None, None, 9), (JEQ, 'accept', None, ICMP)]
    if vip.version == 4:
        prog += [(LD_W, None, None, 12), (JEQ, 'accept', 'reject', words[0])]
    else:
        prog += [(JEQ, 'reject', 'reject', 0)]
    prog += ['v6', (JEQ, None, 'reject', ETH_P_IPV6),
             (LDB, None, None, 6), (JEQ, 'accept', None, ICMPV6)]
    if vip.version == 6:
        for i, w in enumerate(words):
            prog += [(LD_W, None, None, 8 + 4 * i), (JEQ, 'accept' if i == 3 else None, 'reject', w)]
    prog += ['reject', (RET, None, None, 0), 'accept', (RET, None, None, 0x40000)]
    at, code = {}, []
    for x in prog:
        if isinstance(x, str):
            at[x] = len(code)
        else:
            code.append(x)
    rel = lambda lab, i: 0 if lab is None else at[lab] - i - 1
    raw = b''.join(struct.pack('HBBI', c, rel(t, i), rel(f, i), k) for i, (c, t, f, k) in enumerate(code))
    buf = ctypes.create_string_buffer(raw)
    sock.setsockopt(socket.SOL_SOCKET, 26, struct.pack('HL', len(code), ctypes.addressof(buf)))  # SO_ATTACH_FILTER


def parse_ip(ethertype, data):
    """(version, src, proto, payload) of a captured IP packet, or None (no extension headers)."""
    if ethertype == ETH_P_IP and len(data) >= 20 and data[0] >> 4 == 4:
        ihl = (data[0] & 0x0f) * 4
        return 4, ipaddress.ip_address(data[12:16]), data[9], data[ihl:]
    if ethertype == ETH_P_IPV6 and len(data) >= 40 and data[0] >> 4 == 6:
        return 6, ipaddress.ip_address(data[8:24]), data[6], data[40:]
    return None


def icmp_error(v6, frm, msg, rip, vip, encap, l4proto, sport, port, mode):
    """What an ICMP / ICMPv6 error about our packet says, or None when it is not about it."""
    if len(msg) < 8:
        return None
    typ, code = msg[0], msg[1]
    emb = msg[8:]
    if not v6 and typ == 3 and len(emb) >= 20:  # destination unreachable
        eihl = (emb[0] & 0x0f) * 4
        edst, eproto = ipaddress.ip_address(emb[16:20]), emb[9]
        if mode == 'tun' and code == 2 and edst == rip and eproto == encap:
            return '%s answered protocol unreachable: it does not decapsulate (no decap program / ipip)' % frm
        if code == 3 and edst == vip and eproto == l4proto and len(emb) >= eihl + 4 \
                and struct.unpack('!H', emb[eihl:eihl + 2])[0] == sport:
            return 'port unreachable from %s:%d' % (vip, port)
        if mode == 'tun' and edst == rip and eproto == encap:
            return 'ICMP unreachable (code %d) from %s' % (code, frm)
    elif v6 and len(emb) >= 40:
        edst, enext = ipaddress.ip_address(emb[24:40]), emb[6]
        if mode == 'tun' and typ == 4 and code == 1 and edst == rip and enext == encap:
            return '%s answered unrecognized next header: it does not decapsulate (no decap program / ip6_tunnel)' % frm
        if typ == 1 and code == 4 and edst == vip and enext == l4proto and len(emb) >= 44 \
                and struct.unpack('!H', emb[40:42])[0] == sport:
            return 'port unreachable from [%s]:%d' % (vip, port)
        if mode == 'tun' and typ == 1 and edst == rip and enext == encap:
            return 'ICMPv6 unreachable (code %d) from %s' % (code, frm)
    return None


def main(argv):
    usage = 'usage: path-probe.py MODE PROTO DEV RIP MAC SRC SPORT VIP PORT TIMEOUT_MS [PAYLOAD_HEX [EXPECT_HEX]]'
    if len(argv) < 10:
        out(False, usage, 2)
    mode, proto, dev, rip, mac, src, sport, vip, port, timeout_ms = argv[:10]
    payload = bytes.fromhex(argv[10]) if len(argv) > 10 else b''
    expect = bytes.fromhex(argv[11]) if len(argv) > 11 else None
    try:
        rip, src, vip = ipaddress.ip_address(rip), ipaddress.ip_address(src), ipaddress.ip_address(vip)
        sport, port, timeout = int(sport), int(port), int(timeout_ms) / 1000.0
        dst_mac = bytes.fromhex(mac.replace(':', '')) if mode == 'dr' else b''
    except ValueError as e:
        out(False, 'bad argument: %s' % e, 2)
    if mode not in ('tun', 'dr') or proto not in ('tcp', 'udp') or src.version != vip.version \
            or (mode == 'dr' and (len(dst_mac) != 6 or rip.version != vip.version)):
        out(False, 'bad argument: MODE tun|dr, PROTO tcp|udp, SRC and VIP of one family (dr: RIP too), MAC for dr', 2)
    deadline = time.monotonic() + timeout
    encap = IPPROTO_IPIP if vip.version == 4 else IPPROTO_IPV6
    l4proto = TCP if proto == 'tcp' else UDP
    via = ('the tunnel to %s' % rip) if mode == 'tun' else ('%s (%s) on %s' % (rip, mac, dev))
    try:
        rx = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_ALL))
        attach_filter(rx, vip)
        rx.bind((dev, ETH_P_ALL))
        if mode == 'tun':
            tx = socket.socket(socket.AF_INET if rip.version == 4 else socket.AF_INET6, socket.SOCK_RAW, encap)
        else:
            tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            tx.bind((dev, 0))
            with open('/sys/class/net/%s/address' % dev) as f:
                own_mac = bytes.fromhex(f.read().strip().replace(':', ''))
    except OSError as e:
        out(False, 'socket on %s: %s' % (dev, e.strerror), 2)

    def send(l4):
        pkt = inner_ip(src, vip, l4proto, l4)
        if mode == 'tun':
            tx.sendto(pkt, (str(rip), 0))
        else:
            tx.send(dst_mac + own_mac + struct.pack('!H', ETH_P_IP if vip.version == 4 else ETH_P_IPV6) + pkt)

    isn = int.from_bytes(os.urandom(4), 'big')
    try:
        send(l4_tcp(src, vip, sport, port, isn, 0, 0x02) if proto == 'tcp' else l4_udp(src, vip, sport, port, payload))
    except OSError as e:
        out(False, 'send via %s: %s' % (via, e.strerror), 2)

    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            what = 'SYN-ACK' if proto == 'tcp' else 'answer'
            hint = '' if mode == 'tun' else ' (is the VIP on the realserver\'s lo?)'
            out(False, 'no %s from %s:%d via %s within %d ms%s' % (what, vip, port, via, timeout * 1000, hint))
        ready, _, _ = select.select([rx], [], [], left)
        if not ready:
            continue
        data, addr = rx.recvfrom(65535)
        if addr[2] == PACKET_OUTGOING:
            continue
        p = parse_ip(addr[1], data)
        if p is None:
            continue
        ver, frm, nproto, seg = p
        if nproto in (ICMP, ICMPV6):
            err = icmp_error(nproto == ICMPV6, frm, seg, rip, vip, encap, l4proto, sport, port, mode)
            if err:
                out(False, '%s via %s: %s' % (proto, via, err))
            continue
        if frm != vip or nproto != l4proto or len(seg) < 8:
            continue
        s_port, d_port = struct.unpack('!HH', seg[:4])
        if s_port != port or d_port != sport:
            continue
        if proto == 'udp':
            body = seg[8:]
            if expect is None or expect in body:
                out(True, 'udp via %s: answer of %d bytes from %s:%d' % (via, len(body), vip, port))
            out(False, 'udp via %s: answer does not contain the expected text' % via)
        if len(seg) < 14:
            continue
        _seq, ack = struct.unpack('!II', seg[4:12])
        flags = seg[13]
        if ack != (isn + 1) & 0xffffffff:
            continue
        if flags & 0x04:
            out(False, 'tcp via %s: connection refused (RST from %s:%d)' % (via, vip, port))
        if flags & 0x12 == 0x12:
            try:
                send(l4_tcp(src, vip, sport, port, ack, 0, 0x04))
            except OSError:
                pass
            out(True, 'tcp via %s: SYN-ACK from %s:%d' % (via, vip, port))


if __name__ == '__main__':
    main(sys.argv[1:])
