/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_parse.h - header parsing for the director. Every read is preceded by its bounds check.
 *
 * Contract: lvs_parse() fills struct lvs_pkt and returns LVS_PARSE_OK when the packet is
 * IPv4/IPv6 with a consistent L3 header (and, for TCP/UDP/ICMP not in a non-first fragment, a
 * complete L4 header); otherwise it returns the lvs_counter naming why the packet goes to the
 * kernel untouched. (LVS_PARSE_OK is not 0 because counter 0 is a reason too.) It fills what
 * tells a virtual service's packet from others (family, protocol, addresses, fragment, ICMP
 * type); an IPv4 packet's tos, df and frag_id, and TCP / UDP ports and flags, are left 0 for
 * lvs_parse_forwarded(), which only a packet that may be a service's needs: traffic to no
 * service, most of an interface's, never pays for them (issue 16's pass case). Also provides the
 * L2 size bound (LVS_L2_MAX) that code rewriting headers in front of L3 copies.
 */
#ifndef LVS_PARSE_H
#define LVS_PARSE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include "lvs_abi.h"

#define LVS_PARSE_OK LVS_C_MAX

#define LVS_MAX_VLANS    2
#define LVS_MAX_EXT_HDRS 6
#define LVS_L2_MAX       (ETH_HLEN + LVS_MAX_VLANS * 4) /* 22: Ethernet + two VLAN tags */

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define LVS_FRAG_NONE  0
#define LVS_FRAG_FIRST 1 /* offset 0, more fragments follow: carries the L4 header */
#define LVS_FRAG_LATER 2 /* offset > 0: no L4 header */

#define IP_DF_BIT     0x4000
#define IP_MF_BIT     0x2000
#define IP_OFFSET_MSK 0x1fff

struct lvs_vlan_hdr {
	__be16 tci;
	__be16 proto;
};

struct lvs_pkt {
	__u16 l3_off;   /* bytes from the frame start to the IP header (14, 18 or 22) */
	__u16 l4_off;   /* bytes from the frame start to the L4 header */
	__u16 l3_len;   /* IP packet length (header + payload) claimed by the IP header */
	__u8 nvlan;     /* VLAN tags between Ethernet and IP */
	__u8 family;    /* LVS_FAMILY_* */
	__u8 proto;     /* L4 protocol (after IPv6 extension headers) */
	__u8 frag;      /* LVS_FRAG_* */
	__u8 tos;       /* IPv4 TOS / IPv6 traffic class (DSCP + ECN) */
	__u8 df;        /* IPv4 DF set (always 1 for IPv6: routers never fragment it) */
	__u8 tcp_flags; /* byte 13 of the TCP header */
	__u8 icmp_type;
	__u8 pad[2];
	__u32 frag_id;
	struct lvs_flow_key flow;
	__u32 tun_label; /* LVS_TUN_LABEL_SET | the IPv6 tunnel's flow label, when known before the
			  * forward (the flow cache's); else lvs_fwd_tun() hashes the flow */
};

#define LVS_TUN_LABEL_SET (1u << 31)

#define LVS_TCP_FIN 0x01
#define LVS_TCP_SYN 0x02
#define LVS_TCP_RST 0x04
#define LVS_TCP_ACK 0x10

/* TCP, UDP: the header checked (its ports and flags are lvs_parse_forwarded()'s); ICMP: the
 * type; nothing beyond the 8-byte header is read here. */
static __always_inline int lvs_parse_l4(struct lvs_pkt *p, void *l4, void *data_end)
{
	if (p->proto == IPPROTO_TCP) {
		struct tcphdr *th = l4;
		if ((void *)(th + 1) > data_end)
			return LVS_C_PASS_MALFORMED_L4;
		if (th->doff < 5 || (__u32)th->doff * 4 > (__u32)p->l3_len - (p->l4_off - p->l3_off))
			return LVS_C_PASS_MALFORMED_L4;
	} else if (p->proto == IPPROTO_UDP) {
		struct udphdr *uh = l4;
		if ((void *)(uh + 1) > data_end)
			return LVS_C_PASS_MALFORMED_L4;
	} else if (p->proto == IPPROTO_ICMP || p->proto == IPPROTO_ICMPV6) {
		__u8 *ih = l4;
		if ((void *)(ih + 8) > data_end)
			return LVS_C_PASS_MALFORMED_L4;
		p->icmp_type = ih[0];
	}
	return LVS_PARSE_OK;
}

static __always_inline int lvs_parse_ipv4(struct lvs_pkt *p, void *data, void *data_end)
{
	struct iphdr *iph = data + p->l3_off;
	__u32 frame_l3, hlen;
	__u16 frag_off;
	__u8 vihl;

	if ((void *)(iph + 1) > data_end)
		return LVS_C_PASS_MALFORMED_L3;
	/* Version and IHL read once (each store to *p would otherwise make the compiler read the
	 * byte again: every packet pays this parse, issue 16's pass case included). */
	vihl = *(__u8 *)iph;
	hlen = (vihl & 0x0f) * 4;
	if ((vihl & 0xf0) != 0x40 || hlen < sizeof(*iph))
		return LVS_C_PASS_MALFORMED_L3;
	p->l3_len = bpf_ntohs(iph->tot_len);
	frame_l3 = data_end - (void *)iph;
	if (p->l3_len < hlen || p->l3_len > frame_l3)
		return LVS_C_PASS_MALFORMED_L3;
	p->family = LVS_FAMILY_IPV4;
	p->proto = iph->protocol;
	frag_off = bpf_ntohs(iph->frag_off);
	if (frag_off & IP_OFFSET_MSK)
		p->frag = LVS_FRAG_LATER;
	else if (frag_off & IP_MF_BIT)
		p->frag = LVS_FRAG_FIRST;
	__builtin_memcpy(p->flow.saddr, &iph->saddr, 4);
	__builtin_memcpy(p->flow.daddr, &iph->daddr, 4);
	p->l4_off = p->l3_off + hlen;
	return LVS_PARSE_OK;
}

struct lvs_ipv6_opt_hdr {
	__u8 nexthdr;
	__u8 hdrlen; /* in 8-byte units, not counting the first 8 */
};

struct lvs_ipv6_frag_hdr {
	__u8 nexthdr;
	__u8 reserved;
	__be16 frag_off; /* offset << 3 | M */
	__be32 identification;
};

static __always_inline int lvs_parse_ipv6(struct lvs_pkt *p, void *data, void *data_end)
{
	struct ipv6hdr *ip6 = data + p->l3_off;
	__u32 frame_l3;
	__u8 nexthdr;
	__u32 off;

	if ((void *)(ip6 + 1) > data_end)
		return LVS_C_PASS_MALFORMED_L3;
	if (ip6->version != 6)
		return LVS_C_PASS_MALFORMED_L3;
	frame_l3 = data_end - (void *)ip6;
	/* 0: jumbogram, not for us. Compared in 32 bits: payload + 40 overflows the u16 l3_len. */
	if (ip6->payload_len == 0 || (__u32)bpf_ntohs(ip6->payload_len) + sizeof(*ip6) > frame_l3)
		return LVS_C_PASS_MALFORMED_L3;
	p->l3_len = bpf_ntohs(ip6->payload_len) + sizeof(*ip6);
	p->family = LVS_FAMILY_IPV6;
	p->tos = (ip6->priority << 4) | (ip6->flow_lbl[0] >> 4);
	p->df = 1;
	__builtin_memcpy(p->flow.saddr, &ip6->saddr, 16);
	__builtin_memcpy(p->flow.daddr, &ip6->daddr, 16);

	nexthdr = ip6->nexthdr;
	off = p->l3_off + sizeof(*ip6);
#pragma unroll
	for (int i = 0; i < LVS_MAX_EXT_HDRS; i++) {
		if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING ||
		    nexthdr == IPPROTO_DSTOPTS) {
			struct lvs_ipv6_opt_hdr *oh = data + (off & 0xffff);
			if ((void *)(oh + 1) > data_end)
				return LVS_C_PASS_MALFORMED_L3;
			nexthdr = oh->nexthdr;
			off += (oh->hdrlen + 1) * 8;
		} else if (nexthdr == IPPROTO_FRAGMENT) {
			struct lvs_ipv6_frag_hdr *fh = data + (off & 0xffff);
			if ((void *)(fh + 1) > data_end)
				return LVS_C_PASS_MALFORMED_L3;
			__u16 fo = bpf_ntohs(fh->frag_off);
			nexthdr = fh->nexthdr;
			off += sizeof(*fh);
			p->frag_id = bpf_ntohl(fh->identification);
			if (fo & 0xfff8)
				p->frag = LVS_FRAG_LATER;
			else if (fo & 1)
				p->frag = LVS_FRAG_FIRST;
			/* An atomic fragment (offset 0, M clear) is a whole packet. */
		} else {
			p->proto = nexthdr;
			if (off > p->l3_off + p->l3_len)
				return LVS_C_PASS_MALFORMED_L3;
			p->l4_off = off;
			return LVS_PARSE_OK;
		}
		if (p->frag == LVS_FRAG_LATER) {
			p->proto = nexthdr;
			p->l4_off = off;
			return LVS_PARSE_OK;
		}
	}
	/* LVS_MAX_EXT_HDRS extension headers skipped: the upper-layer header must come now. */
	if (nexthdr == IPPROTO_HOPOPTS || nexthdr == IPPROTO_ROUTING || nexthdr == IPPROTO_DSTOPTS ||
	    nexthdr == IPPROTO_FRAGMENT)
		return LVS_C_PASS_EXT_HDR_LIMIT;
	p->proto = nexthdr;
	if (off > p->l3_off + p->l3_len)
		return LVS_C_PASS_MALFORMED_L3;
	p->l4_off = off;
	return LVS_PARSE_OK;
}

/* What lvs_parse() left for a packet the director may forward: an IPv4 header's TOS, DF and
 * identification (an IPv6 packet's are filled by the parse), and TCP / UDP ports and TCP flags
 * (their header was checked by the parse). Call only after LVS_PARSE_OK. */
static __always_inline void lvs_parse_forwarded(struct lvs_pkt *p, void *data, void *data_end)
{
	if (p->family == LVS_FAMILY_IPV4) {
		struct iphdr *iph = data + (p->l3_off & 0x3f); /* <= LVS_L2_MAX: bounded for the verifier */

		if ((void *)(iph + 1) <= data_end) {
			p->tos = iph->tos;
			p->df = !!(iph->frag_off & bpf_htons(IP_DF_BIT));
			p->frag_id = bpf_ntohs(iph->id);
		}
	}
	if (p->frag == LVS_FRAG_LATER)
		return;
	void *l4 = data + (p->l4_off & 0x3fff);

	/* The compiler may know the parse checked this header and reuse that check on another
	 * register; the verifier would not: the pointer is made opaque so the check is redone. */
	asm volatile("" : "+r"(l4));
	if (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP)
		return;
	/* Each read checked on its own: a size chosen by the protocol leaves the verifier (and some
	 * compilations of it: bench/bpf/probes.o) knowing only the smaller bound. */
	if (l4 + sizeof(struct udphdr) > data_end)
		return;
	/* Both ports in one 32-bit store (sport, dport adjacent in the flow key, in wire order):
	 * the flow lookups read the key right after, and two 16-bit stores under a wider load
	 * would stall its store forwarding. */
	*(__u32 *)&p->flow.sport = *(__u32 *)l4;
	if (p->proto == IPPROTO_TCP && l4 + sizeof(struct tcphdr) <= data_end)
		p->tcp_flags = ((__u8 *)l4)[13];
}

/* Parses L2 .. L4. Returns LVS_PARSE_OK or the lvs_counter (a PASS_*) naming why the packet
 * is not ours. */
static __always_inline int lvs_parse(struct lvs_pkt *p, void *data, void *data_end, int ipv6_on)
{
	struct ethhdr *eth = data;
	__be16 proto;
	int rc;

	if ((void *)(eth + 1) > data_end)
		return LVS_C_PASS_MALFORMED_L2;
	/* One 16-bit load: struct ethhdr is packed, so eth->h_proto compiles to two byte loads;
	 * offset 12 of the frame is 2-byte aligned as the verifier requires of packet loads. */
	proto = *(__be16 *)(data + 12);
	p->l3_off = sizeof(*eth);
#pragma unroll
	for (int i = 0; i < LVS_MAX_VLANS + 1; i++) {
		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if (i == LVS_MAX_VLANS)
			return LVS_C_PASS_MALFORMED_L2;
		struct lvs_vlan_hdr *vh = data + p->l3_off;
		if ((void *)(vh + 1) > data_end)
			return LVS_C_PASS_MALFORMED_L2;
		proto = vh->proto;
		p->l3_off += sizeof(*vh);
		p->nvlan++;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		rc = lvs_parse_ipv4(p, data, data_end);
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		if (!ipv6_on)
			return LVS_C_PASS_FAMILY_DISABLED;
		rc = lvs_parse_ipv6(p, data, data_end);
	} else {
		return LVS_C_PASS_NOT_IP;
	}
	if (rc != LVS_PARSE_OK)
		return rc;
	p->flow.family = p->family;
	p->flow.proto = p->proto;
	if (p->frag == LVS_FRAG_LATER)
		return LVS_PARSE_OK;
	void *l4 = data + (p->l4_off & 0x3fff);
	return lvs_parse_l4(p, l4, data_end);
}

#endif /* LVS_PARSE_H */
