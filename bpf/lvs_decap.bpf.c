// SPDX-License-Identifier: GPL-2.0
/*
 * lvs_decap - the LVS-Tun realserver's end of the tunnel, as one XDP program.
 *
 * Realservers here have no ipip / ip6_tunnel module, so the outer header the director added is
 * stripped before the kernel sees the packet:
 *
 *   Ethernet (no VLAN tag) / outer IPv4 (protocol 4 or 41) or outer IPv6 (next header 4 or 41,
 *   after at most LVS_DECAP_MAX_EXT_HDRS hop-by-hop / routing / destination options headers)
 *   / inner IPv4 or IPv6 whose destination is in lvs_decap_vips
 *     -> outer header removed (bpf_xdp_adjust_head), ethertype set for the inner family, ECN CE
 *        copied inward (RFC 6040), XDP_PASS: the kernel delivers the inner packet to the VIP.
 *   anything else -> XDP_PASS untouched (tunnelled packets for other addresses included).
 *
 * The one exception: an outer CE mark on an inner Not-ECT packet is dropped (RFC 6040 section
 * 4.2), as the kernel's own tunnels do. Every packet increments exactly one decap, pass or drop
 * counter in lvs_decap_counters, plus any event counters. Every read is preceded by its bounds
 * check.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lvs_decap.h"
#include "lvs_decap_maps.h"
#include "lvs_csum.h"

#ifndef ETH_P_8021AD
#define ETH_P_8021AD 0x88A8
#endif

#define IP_MF_BIT     0x2000
#define IP_OFFSET_MSK 0x1fff
#define ECN_MASK      0x3
#define ECN_NOT_ECT   0x0
#define ECN_CE        0x3

/* Maps, cfg_decap_abi_version: lvs_decap_maps.h. */

static __always_inline int lvs_decap_count(__u32 c, int verdict)
{
	__u64 *v = bpf_map_lookup_elem(&lvs_decap_counters, &c);

	if (v)
		*v += 1;
	return verdict;
}

/* What the outer header says, once it has been checked. */
struct lvs_outer {
	__u32 len;     /* bytes of outer header (IPv4 with options, IPv6 with extension headers) */
	__u32 payload; /* bytes after it, as the outer header claims (all present in the frame) */
	__u8 proto;    /* IPPROTO_IPIP or IPPROTO_IPV6 */
	__u8 ecn;
	__u8 family;   /* LVS_DECAP_FAMILY_* of the outer header */
};

static __always_inline int lvs_decap_outer4(void *l3, void *data_end, struct lvs_outer *o)
{
	struct iphdr *iph = l3;
	__u32 hl, tot;

	if ((void *)(iph + 1) > data_end)
		return LVS_DC_PASS_MALFORMED_OUTER;
	if (iph->version != 4 || iph->ihl < 5)
		return LVS_DC_PASS_MALFORMED_OUTER;
	if (iph->protocol != IPPROTO_IPIP && iph->protocol != IPPROTO_IPV6)
		return LVS_DC_PASS_NOT_TUNNEL;
	hl = iph->ihl * 4;
	tot = bpf_ntohs(iph->tot_len);
	if (tot < hl || l3 + tot > data_end)
		return LVS_DC_PASS_MALFORMED_OUTER;
	if (iph->frag_off & bpf_htons(IP_MF_BIT | IP_OFFSET_MSK))
		return LVS_DC_PASS_OUTER_FRAGMENT;
	/* Valid when the sum of all its words, check field included, folds to 0 (all in the frame:
	 * tot_len was checked against it). IHL is at most 15 words. */
	if (lvs_csum_fold64(lvs_csum_pkt_words(iph, iph->ihl, 15, data_end, 0)))
		return LVS_DC_PASS_MALFORMED_OUTER;
	o->len = hl;
	o->payload = tot - hl;
	o->proto = iph->protocol;
	o->ecn = iph->tos & ECN_MASK;
	o->family = LVS_DECAP_FAMILY_IPV4;
	return LVS_DC_MAX;
}

static __always_inline int lvs_decap_outer6(void *l3, void *data_end, struct lvs_outer *o)
{
	struct ipv6hdr *ip6 = l3;
	__u32 off = sizeof(*ip6), end;
	__u8 nh;

	if ((void *)(ip6 + 1) > data_end)
		return LVS_DC_PASS_MALFORMED_OUTER;
	if (ip6->version != 6)
		return LVS_DC_PASS_MALFORMED_OUTER;
	end = sizeof(*ip6) + bpf_ntohs(ip6->payload_len);
	if (l3 + end > data_end) /* payload length 0 (jumbogram) cannot hold a tunnel either */
		return LVS_DC_PASS_MALFORMED_OUTER;
	nh = ip6->nexthdr;

#pragma unroll
	for (int i = 0; i < LVS_DECAP_MAX_EXT_HDRS; i++) {
		__u8 *ext;

		if (nh == IPPROTO_FRAGMENT)
			return LVS_DC_PASS_OUTER_FRAGMENT;
		if (nh != IPPROTO_HOPOPTS && nh != IPPROTO_ROUTING && nh != IPPROTO_DSTOPTS)
			break;
		ext = l3 + (off & 0x1fff); /* exact: off <= 40 + 3 * 2048 here */
		if ((void *)(ext + 2) > data_end)
			return LVS_DC_PASS_MALFORMED_OUTER;
		nh = ext[0];
		off += ((__u32)ext[1] + 1) * 8;
	}
	if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS)
		return LVS_DC_PASS_EXT_HDR_LIMIT;
	if (nh == IPPROTO_FRAGMENT)
		return LVS_DC_PASS_OUTER_FRAGMENT;
	if (nh != IPPROTO_IPIP && nh != IPPROTO_IPV6)
		return LVS_DC_PASS_NOT_TUNNEL;
	if (off > end)
		return LVS_DC_PASS_MALFORMED_OUTER;
	o->len = off;
	o->payload = end - off;
	o->proto = nh;
	o->ecn = (bpf_ntohl(*(__be32 *)ip6) >> 20) & ECN_MASK;
	o->family = LVS_DECAP_FAMILY_IPV6;
	return LVS_DC_MAX;
}

/* Sets CE in an inner IPv4 header, updating its checksum incrementally (RFC 1624). */
static __always_inline void lvs_decap_set_ce4(struct iphdr *iph)
{
	__u16 old = bpf_ntohs(*(__be16 *)iph);
	__u16 new = old | ECN_CE;

	*(__be16 *)iph = bpf_htons(new);
	iph->check = bpf_htons(lvs_csum_replace16(bpf_ntohs(iph->check), old, new));
}

SEC("xdp")
int lvs_decap(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct lvs_decap_vip_key key = {};
	struct lvs_decap_vip_stats *st;
	struct lvs_outer o = {};
	__u8 macs[12];
	__u8 inner_ecn;
	__u32 inner_len, verdict, out;
	void *inner;

	if ((void *)(eth + 1) > data_end)
		return lvs_decap_count(LVS_DC_PASS_MALFORMED_L2, XDP_PASS);
	if (eth->h_proto == bpf_htons(ETH_P_8021Q) || eth->h_proto == bpf_htons(ETH_P_8021AD))
		return lvs_decap_count(LVS_DC_PASS_VLAN, XDP_PASS);
	if (eth->h_proto == bpf_htons(ETH_P_IP))
		verdict = lvs_decap_outer4(eth + 1, data_end, &o);
	else if (eth->h_proto == bpf_htons(ETH_P_IPV6))
		verdict = lvs_decap_outer6(eth + 1, data_end, &o);
	else
		verdict = LVS_DC_PASS_NOT_IP;
	if (verdict != LVS_DC_MAX)
		return lvs_decap_count(verdict, XDP_PASS);

	/* Outer header at most 60 bytes (IPv4) or 40 + 4 x 2048 (IPv6): the mask keeps the
	 * verifier's range small; larger offsets fail the bounds check below. */
	inner = data + sizeof(*eth) + (o.len & 0x3fff);
	if (o.proto == IPPROTO_IPIP) {
		struct iphdr *in = inner;

		if ((void *)(in + 1) > data_end || in->version != 4 || in->ihl < 5)
			return lvs_decap_count(LVS_DC_PASS_MALFORMED_INNER, XDP_PASS);
		inner_len = bpf_ntohs(in->tot_len);
		if (inner_len < (__u32)in->ihl * 4 || inner_len > o.payload)
			return lvs_decap_count(LVS_DC_PASS_MALFORMED_INNER, XDP_PASS);
		__builtin_memcpy(key.addr, &in->daddr, 4);
		key.family = LVS_DECAP_FAMILY_IPV4;
		inner_ecn = in->tos & ECN_MASK;
		out = o.family == LVS_DECAP_FAMILY_IPV4 ? LVS_DC_DECAP_4IN4 : LVS_DC_DECAP_4IN6;
	} else {
		struct ipv6hdr *in6 = inner;

		if ((void *)(in6 + 1) > data_end || in6->version != 6)
			return lvs_decap_count(LVS_DC_PASS_MALFORMED_INNER, XDP_PASS);
		inner_len = sizeof(*in6) + bpf_ntohs(in6->payload_len);
		if (inner_len > o.payload)
			return lvs_decap_count(LVS_DC_PASS_MALFORMED_INNER, XDP_PASS);
		__builtin_memcpy(key.addr, &in6->daddr, 16);
		key.family = LVS_DECAP_FAMILY_IPV6;
		inner_ecn = (bpf_ntohl(*(__be32 *)in6) >> 20) & ECN_MASK;
		out = o.family == LVS_DECAP_FAMILY_IPV4 ? LVS_DC_DECAP_6IN4 : LVS_DC_DECAP_6IN6;
	}

	st = bpf_map_lookup_elem(&lvs_decap_vips, &key);
	if (!st)
		return lvs_decap_count(LVS_DC_PASS_UNKNOWN_VIP, XDP_PASS);
	if (o.ecn == ECN_CE && inner_ecn == ECN_NOT_ECT)
		return lvs_decap_count(LVS_DC_DROP_ECN_NOT_ECT, XDP_DROP);

	__builtin_memcpy(macs, eth, sizeof(macs));
	if (bpf_xdp_adjust_head(ctx, (int)o.len))
		return lvs_decap_count(LVS_DC_PASS_DECAP_FAILED, XDP_PASS);

	/* The Ethernet header now overlays the last 14 bytes of the old outer header. */
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	eth = data;
	if ((void *)(eth + 1) > data_end)
		return XDP_ABORTED; /* unreachable (the inner header was checked); for the verifier */
	__builtin_memcpy(eth, macs, sizeof(macs));
	eth->h_proto = bpf_htons(key.family == LVS_DECAP_FAMILY_IPV4 ? ETH_P_IP : ETH_P_IPV6);

	if (o.ecn == ECN_CE && inner_ecn != ECN_CE) {
		if (key.family == LVS_DECAP_FAMILY_IPV4) {
			struct iphdr *in = (void *)(eth + 1);

			if ((void *)(in + 1) <= data_end)
				lvs_decap_set_ce4(in);
		} else {
			__be32 *w = (void *)(eth + 1);

			if ((void *)(w + 1) <= data_end)
				*w |= bpf_htonl((__u32)ECN_CE << 20);
		}
		lvs_decap_count(LVS_DC_ECN_CE, 0);
	}
	__sync_fetch_and_add(&st->packets, 1);
	__sync_fetch_and_add(&st->bytes, inner_len);
	return lvs_decap_count(out, XDP_PASS);
}

char LICENSE[] SEC("license") = "GPL";
