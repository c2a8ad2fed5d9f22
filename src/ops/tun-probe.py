#!/usr/bin/env python3
"""Forwarding-path probe for an LVS-Tun realserver (used by `lvs-xdp run`, src/ops/tunprobe.ts).

Sends, from this host, the packet the director's data plane would send for a client's flow:
an IP-in-IP packet to the realserver's address (RIP) whose inner packet goes from SRC:SPORT to
VIP:PORT (a TCP SYN, or a UDP datagram with the payload). The kernel builds the outer header
(raw socket of protocol 4 = IPv4 inner, 41 = IPv6 inner), so no ipip module is needed here. A
realserver that decapsulates and holds the VIP answers from VIP:PORT to SRC:SPORT directly; the
answer is read on a raw TCP / UDP socket. ICMP errors (the realserver not decapsulating:
protocol unreachable / unrecognized next header; UDP port unreachable from the VIP) fail at once.

Usage (argv only, never a shell):
  tun-probe.py PROTO RIP SRC SPORT VIP PORT TIMEOUT_MS [PAYLOAD_HEX [EXPECT_HEX]]
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
TCP, UDP = 6, 17


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


def strip_ip4(data):
    """(src, l4 bytes) of a packet read on an IPv4 raw socket (the IP header included)."""
    ihl = (data[0] & 0x0f) * 4
    return ipaddress.ip_address(data[12:16]), data[ihl:]


def main(argv):
    if len(argv) < 7:
        out(False, 'usage: tun-probe.py PROTO RIP SRC SPORT VIP PORT TIMEOUT_MS [PAYLOAD_HEX [EXPECT_HEX]]', 2)
    proto, rip, src, sport, vip, port, timeout_ms = argv[:7]
    payload = bytes.fromhex(argv[7]) if len(argv) > 7 else b''
    expect = bytes.fromhex(argv[8]) if len(argv) > 8 else None
    try:
        rip, src, vip = ipaddress.ip_address(rip), ipaddress.ip_address(src), ipaddress.ip_address(vip)
        sport, port, timeout = int(sport), int(port), int(timeout_ms) / 1000.0
    except ValueError as e:
        out(False, 'bad argument: %s' % e, 2)
    if proto not in ('tcp', 'udp') or src.version != vip.version:
        out(False, 'bad argument: proto tcp|udp, SRC and VIP of one family', 2)
    deadline = time.monotonic() + timeout
    fam_in = socket.AF_INET if vip.version == 4 else socket.AF_INET6
    fam_out = socket.AF_INET if rip.version == 4 else socket.AF_INET6
    encap = IPPROTO_IPIP if vip.version == 4 else IPPROTO_IPV6
    l4proto = TCP if proto == 'tcp' else UDP
    try:
        rx = socket.socket(fam_in, socket.SOCK_RAW, l4proto)
        icmp = [socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)] if 4 in (rip.version, vip.version) else []
        if 6 in (rip.version, vip.version):
            icmp.append(socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6))
        tx = socket.socket(fam_out, socket.SOCK_RAW, encap)
    except OSError as e:
        out(False, 'raw socket: %s' % e.strerror, 2)

    isn = int.from_bytes(os.urandom(4), 'big')
    if proto == 'tcp':
        l4 = l4_tcp(src, vip, sport, port, isn, 0, 0x02)
    else:
        l4 = l4_udp(src, vip, sport, port, payload)
    try:
        tx.sendto(inner_ip(src, vip, l4proto, l4), (str(rip), 0))
    except OSError as e:
        out(False, 'send to %s: %s' % (rip, e.strerror), 2)

    socks = [rx] + icmp
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            what = 'SYN-ACK' if proto == 'tcp' else 'answer'
            out(False, 'no %s from %s:%d through the tunnel to %s within %d ms' % (what, vip, port, rip, timeout * 1000))
        ready, _, _ = select.select(socks, [], [], left)
        for s in ready:
            data, addr = s.recvfrom(65535)
            if s is rx:
                if vip.version == 4:
                    frm, seg = strip_ip4(data)
                else:
                    frm, seg = ipaddress.ip_address(addr[0].split('%')[0]), data
                if frm != vip or len(seg) < 8:
                    continue
                s_port, d_port = struct.unpack('!HH', seg[:4])
                if s_port != port or d_port != sport:
                    continue
                if proto == 'udp':
                    body = seg[8:]
                    if expect is None or expect in body:
                        out(True, 'udp via the tunnel to %s: answer of %d bytes from %s:%d' % (rip, len(body), vip, port))
                    out(False, 'udp via the tunnel to %s: answer does not contain the expected text' % rip)
                if len(seg) < 14:
                    continue
                _seq, ack = struct.unpack('!II', seg[4:12])
                flags = seg[13]
                if ack != (isn + 1) & 0xffffffff:
                    continue
                if flags & 0x04:
                    out(False, 'tcp via the tunnel to %s: connection refused (RST from %s:%d)' % (rip, vip, port))
                if flags & 0x12 == 0x12:
                    # Reset the half-open connection on the realserver (this host's kernel, not
                    # knowing it, resets too, but toward the VIP on the director's side).
                    try:
                        tx.sendto(inner_ip(src, vip, TCP, l4_tcp(src, vip, sport, port, ack, 0, 0x04)), (str(rip), 0))
                    except OSError:
                        pass
                    out(True, 'tcp via the tunnel to %s: SYN-ACK from %s:%d' % (rip, vip, port))
                continue
            # ICMP / ICMPv6 errors about our packet.
            v6 = s.family == socket.AF_INET6
            if v6:
                frm, msg = ipaddress.ip_address(addr[0].split('%')[0]), data
            else:
                frm, msg = strip_ip4(data)
            if len(msg) < 8:
                continue
            typ, code = msg[0], msg[1]
            emb = msg[8:]
            err = None
            if not v6 and typ == 3 and len(emb) >= 20:  # destination unreachable
                eihl = (emb[0] & 0x0f) * 4
                edst, eproto = ipaddress.ip_address(emb[16:20]), emb[9]
                if code == 2 and edst == rip and eproto == encap:
                    err = '%s answered protocol unreachable: it does not decapsulate (no decap program / ipip)' % frm
                elif code == 3 and edst == vip and eproto == l4proto and len(emb) >= eihl + 4 \
                        and struct.unpack('!H', emb[eihl:eihl + 2])[0] == sport:
                    err = 'port unreachable from %s:%d' % (vip, port)
                elif edst == rip and eproto == encap:
                    err = 'ICMP unreachable (code %d) from %s' % (code, frm)
            elif v6 and len(emb) >= 40:
                edst, enext = ipaddress.ip_address(emb[24:40]), emb[6]
                if typ == 4 and code == 1 and edst == rip and enext == encap:
                    err = '%s answered unrecognized next header: it does not decapsulate (no decap program / ip6_tunnel)' % frm
                elif typ == 1 and code == 4 and edst == vip and enext == l4proto and len(emb) >= 44 \
                        and struct.unpack('!H', emb[40:42])[0] == sport:
                    err = 'port unreachable from [%s]:%d' % (vip, port)
                elif typ == 1 and edst == rip and enext == encap:
                    err = 'ICMPv6 unreachable (code %d) from %s' % (code, frm)
            if err:
                out(False, '%s via the tunnel to %s: %s' % (proto, rip, err))


if __name__ == '__main__':
    main(sys.argv[1:])
