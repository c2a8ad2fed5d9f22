"""Who answers ARP / ND for an address on a link: lvs-xdp doctor's look for another host that
claims a VIP (src/ops/neighprobe.ts runs this; python3, standard library, argv only).

    neigh-probe.py DEV TIMEOUT_MS SRC4 SRC6 ADDR...

Through an AF_PACKET socket on DEV: for each IPv4 ADDR a broadcast ARP request from SRC4 (0.0.0.0
when DEV has no IPv4 address: an ARP probe, which hosts answer as well); for each IPv6 ADDR a
neighbour solicitation to its solicited-node group from SRC6 (a link-local address, or ::). Each
request is sent twice (300 ms apart, for a lost frame), then every ARP reply / neighbour
advertisement for an ADDR that arrives within TIMEOUT_MS is printed as one JSON line
{"addr", "family", "mac"}. A frame sent this way never reaches this host's own IP stack, so its
own answer (the VIP local here) is not among them; the caller drops this host's own MACs.

    neigh-probe.py --announce DEV ADDR...

Tells the link that ADDR now lives at DEV's MAC (lvs-xdp attach, for VIPs local on DEV): a
gratuitous ARP request (sender = target = ADDR) for IPv4, an unsolicited neighbour advertisement
with the override flag to all-nodes for IPv6, each sent twice 100 ms apart. Neighbours that
cached another MAC (a recreated or replaced interface) update their entry at once instead of
sending to the old MAC until their entry times out.
"""
import json
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_ARP = 0x0806
ETH_P_IPV6 = 0x86DD
PACKET_OUTGOING = 4


def csum(data):
    if len(data) % 2:
        data += b'\0'
    s = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def arp_request(mac, src4, target):
    arp = struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(src4) + b'\0' * 6 + socket.inet_aton(target)
    return b'\xff' * 6 + mac + struct.pack('!H', ETH_P_ARP) + arp


def ns_request(mac, src6, target):
    t = socket.inet_pton(socket.AF_INET6, target)
    s = socket.inet_pton(socket.AF_INET6, src6)
    group = socket.inet_pton(socket.AF_INET6, 'ff02::1:ff00:0')[:13] + t[13:]
    # The source link-layer option is not allowed from the unspecified address (RFC 4861 7.1.1).
    opt = b'' if s == b'\0' * 16 else struct.pack('!BB', 1, 1) + mac
    body = struct.pack('!BBHI', 135, 0, 0, 0) + t + opt
    pseudo = s + group + struct.pack('!I3xB', len(body), 58)
    body = body[:2] + struct.pack('!H', csum(pseudo + body)) + body[4:]
    ip6 = struct.pack('!IHBB', 6 << 28, len(body), 58, 255) + s + group
    dmac = b'\x33\x33' + group[12:]
    return dmac + mac + struct.pack('!H', ETH_P_IPV6) + ip6 + body


def garp(mac, addr):
    arp = struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + mac + socket.inet_aton(addr) + b'\xff' * 6 + socket.inet_aton(addr)
    return b'\xff' * 6 + mac + struct.pack('!H', ETH_P_ARP) + arp


def unsolicited_na(mac, target):
    t = socket.inet_pton(socket.AF_INET6, target)
    group = socket.inet_pton(socket.AF_INET6, 'ff02::1')
    # Override set, solicited clear (RFC 4861 7.2.6), with the target link-layer address option.
    body = struct.pack('!BBHI', 136, 0, 0, 0x20000000) + t + struct.pack('!BB', 2, 1) + mac
    pseudo = t + group + struct.pack('!I3xB', len(body), 58)
    body = body[:2] + struct.pack('!H', csum(pseudo + body)) + body[4:]
    ip6 = struct.pack('!IHBB', 6 << 28, len(body), 58, 255) + t + group
    return b'\x33\x33\x00\x00\x00\x01' + mac + struct.pack('!H', ETH_P_IPV6) + ip6 + body


def announce(dev, addrs):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((dev, 0))
    mac = s.getsockname()[4]
    frames = [unsolicited_na(mac, a) if ':' in a else garp(mac, a) for a in addrs]
    for i in range(2):
        if i:
            time.sleep(0.1)
        for f in frames:
            s.send(f)


def parse(frame, wanted):
    """(addr, family, mac) of an ARP reply / neighbour advertisement for a wanted address."""
    if len(frame) < 14:
        return None
    etype = struct.unpack('!H', frame[12:14])[0]
    src_mac = frame[6:12]
    if etype == ETH_P_ARP and len(frame) >= 42:
        op = struct.unpack('!H', frame[20:22])[0]
        spa = socket.inet_ntoa(frame[28:32])
        if op == 2 and spa in wanted:
            return spa, 4, frame[22:28]
    elif etype == ETH_P_IPV6 and len(frame) >= 14 + 40 + 24:
        ip6 = frame[14:54]
        if ip6[6] != 58:
            return None
        icmp = frame[54:]
        if icmp[0] != 136:
            return None
        target = socket.inet_ntop(socket.AF_INET6, icmp[8:24])
        if target not in wanted:
            return None
        mac = src_mac
        opts = icmp[24:]
        while len(opts) >= 8 and opts[1]:
            if opts[0] == 2:
                mac = opts[2:8]
                break
            opts = opts[opts[1] * 8:]
        return target, 6, mac
    return None


def main():
    if sys.argv[1] == '--announce':
        announce(sys.argv[2], sys.argv[3:])
        return
    dev, timeout_ms, src4, src6 = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    addrs = sys.argv[5:]
    v4 = [a for a in addrs if ':' not in a]
    v6 = [socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, a)) for a in addrs if ':' in a]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((dev, 0))
    mac = s.getsockname()[4]
    frames = [arp_request(mac, src4, a) for a in v4] + [ns_request(mac, src6, a) for a in v6]
    wanted = set(v4) | set(v6)
    seen = set()
    start = time.monotonic()
    resend = start + 0.3
    for f in frames:
        s.send(f)
    end = start + timeout_ms / 1000.0
    while True:
        now = time.monotonic()
        if resend and now >= resend:
            for f in frames:
                s.send(f)
            resend = None
        left = min(end, resend or end) - now
        if now >= end:
            break
        r, _, _ = select.select([s], [], [], max(left, 0))
        if not r:
            continue
        frame, where = s.recvfrom(2048)
        if where[2] == PACKET_OUTGOING:
            continue
        hit = parse(frame, wanted)
        if not hit:
            continue
        key = (hit[0], hit[2])
        if key in seen:
            continue
        seen.add(key)
        print(json.dumps({'addr': hit[0], 'family': hit[1], 'mac': ':'.join('%02x' % b for b in hit[2])}), flush=True)


if __name__ == '__main__':
    main()
