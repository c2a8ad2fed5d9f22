/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_icmp.h - ICMP and ICMPv6: errors about a virtual service's flows, and the director's own
 * too-big answer.
 *
 * Provides: lvs_icmp_is_error() and lvs_handle_icmp() (an error quoting a VIP's packet goes to
 * the realserver of the flow it quotes; never creates state), and lvs_send_too_big() (ICMP
 * "fragmentation needed" / ICMPv6 "packet too big" back to the client, XDP_TX).
 * Expects: a parsed packet (lvs_parse.h) whose ICMP header is in the frame; the service and
 * connection lookups of lvs_sched.h and lvs_conn.h. Counts ICMP_ERR_FWD, TX_ICMP_TOO_BIG and
 * their drop reasons; an error quoting no virtual service's flow is PASS_NOT_VIP.
 */
#ifndef LVS_ICMP_H
#define LVS_ICMP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_csum.h"
#include "lvs_count.h"
#include "lvs_sched.h"
#include "lvs_fwmark.h"
#include "lvs_conn.h"
#include "lvs_synrecv.h"

#define LVS_ICMP_QUOTE_MAX 128 /* bytes of the offending packet quoted back */

/* Unreachable, time exceeded, parameter problem (ICMP) and too big (ICMPv6 1-4). */
static __always_inline int lvs_icmp_is_error(const struct lvs_pkt *p)
{
	if (p->family == LVS_FAMILY_IPV4 && p->proto == IPPROTO_ICMP)
		return p->icmp_type == 3 || p->icmp_type == 11 || p->icmp_type == 12;
	if (p->family == LVS_FAMILY_IPV6 && p->proto == IPPROTO_ICMPV6)
		return p->icmp_type >= 1 && p->icmp_type <= 4;
	return 0;
}

/*
 * ICMP error (unreachable, too big, time exceeded, parameter problem) about a packet the VIP
 * sent: the quoted header is VIP:port -> client:port. Reversed, it is the client's flow, which
 * goes to the realserver serving it (that realserver sent the quoted packet). Creates no state.
 * With LVS-NAT also an error about a client's packet to RIP:port, from the realserver's side:
 * LVS_FORWARD_REPLY with that flow's realserver (lvs_nat_reply() translates it).
 */
static __always_inline int lvs_handle_icmp(struct lvs_pkt *p, const struct lvs_cfg *cfg,
					   void *data, void *data_end, __u32 *real_idx, __u32 *gen)
{
	struct lvs_flow_key f = {};
	__u32 inner = (p->l4_off + 8) & 0x3fff;
	__u32 why = LVS_C_DROP_NO_REAL;
	__u16 *ports;
	__u32 ri;

	if (p->family == LVS_FAMILY_IPV4) {
		struct iphdr *in = data + inner;

		if ((void *)(in + 1) > data_end)
			goto not_ours;
		if (in->version != 4 || in->ihl < 5)
			goto not_ours;
		f.proto = in->protocol;
		__builtin_memcpy(f.saddr, &in->daddr, 4);
		__builtin_memcpy(f.daddr, &in->saddr, 4);
		ports = (void *)in + ((in->ihl * 4) & 0x3c);
	} else {
		struct ipv6hdr *in6 = data + inner;

		if ((void *)(in6 + 1) > data_end)
			goto not_ours;
		f.proto = in6->nexthdr;
		__builtin_memcpy(f.saddr, &in6->daddr, 16);
		__builtin_memcpy(f.daddr, &in6->saddr, 16);
		ports = (void *)(in6 + 1);
	}
	if (f.proto != IPPROTO_TCP && f.proto != IPPROTO_UDP)
		goto not_ours;
	if ((void *)(ports + 2) > data_end)
		goto not_ours;
	f.sport = ports[1];
	f.dport = ports[0];
	f.family = p->family;
	/* An error about a VIP's packet is addressed to that VIP (the quoted source). */
#pragma unroll
	for (int i = 0; i < 16; i++)
		if (f.daddr[i] != p->flow.daddr[i])
			goto not_ours;

	struct lvs_svc *svc = lvs_fwmark_svc(lvs_svc_lookup(&f, cfg), &f, cfg);
	if (!svc) {
		/* LVS-NAT: reversed, the quote of a packet client -> RIP:port is that flow's reply
		 * tuple; the error goes to the client translated (lvs_nat.h). */
		if (cfg->flags & LVS_CFG_F_NAT) {
			struct lvs_conn *c = NULL;
			struct lvs_time t;
			int found;

			lvs_time_init(&t);
			found = lvs_nat_reply_find(&f, cfg, &t, &c, real_idx, gen);
			if (found == LVS_NAT_HIT)
				return LVS_FORWARD_REPLY;
			if (found == LVS_NAT_GONE) {
				lvs_count(LVS_C_DROP_REAL_GONE);
				return XDP_DROP;
			}
		}
		goto not_ours;
	}
	struct lvs_conn *c = lvs_conn_peek(&f);
	if (c) {
		ri = c->real;
	} else if ((ri = lvs_synrecv_peek(&f)) != LVS_REAL_NONE) {
		/* a SYN_RECV connection (lvs_synrecv.h): its realserver */
	} else {
		ri = lvs_schedule(svc, &f, cfg->hash_seed, &why);
		if (ri == LVS_REAL_NONE) {
			lvs_count(why);
			return XDP_DROP;
		}
	}
	struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &ri);
	if (!r || !(r->flags & LVS_REAL_F_ACTIVE)) {
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	lvs_count(LVS_C_ICMP_ERR_FWD);
	lvs_account(&lvs_svc_stats, svc->id, p->l3_len, 0);
	lvs_account(&lvs_real_stats, ri, p->l3_len, 0);
	*real_idx = ri;
	*gen = r->gen;
	return LVS_FORWARD;
not_ours:
	lvs_count(LVS_C_PASS_NOT_VIP);
	return XDP_PASS;
}

/*
 * Answer the client with ICMP "fragmentation needed" (IPv4) or ICMPv6 "packet too big" carrying
 * mtu, quoting the start of its packet, from the VIP, back out the way it came (XDP_TX).
 * The quoted packet already sits where it must: only the new headers are put in front of it.
 */
static __always_inline int lvs_send_too_big(struct xdp_md *ctx, const struct lvs_pkt *p, __u32 mtu)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 l3_off = p->l3_off;
	__u32 quote = p->l3_len < LVS_ICMP_QUOTE_MAX ? p->l3_len : LVS_ICMP_QUOTE_MAX;
	__u32 hdrs = p->family == LVS_FAMILY_IPV4 ? 28 : 48;
	__u8 l2[LVS_L2_MAX];
	__u64 sum;

	quote &= ~3u; /* whole words: the checksum loop reads 32-bit words */
	if (data + LVS_L2_MAX > data_end)
		goto fail;
	__builtin_memcpy(l2, data, LVS_L2_MAX);
	/* back to where it came from */
	__builtin_memcpy(l2, (__u8 *)data + ETH_ALEN, ETH_ALEN);
	__builtin_memcpy(l2 + ETH_ALEN, data, ETH_ALEN);

	if (bpf_xdp_adjust_head(ctx, -(int)hdrs))
		goto fail;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	int shrink = (int)(l3_off + hdrs + quote) - (int)(data_end - data);
	if (shrink < 0 && bpf_xdp_adjust_tail(ctx, shrink))
		goto fail;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + LVS_L2_MAX > data_end)
		goto fail;
	__builtin_memcpy(data, l2, LVS_L2_MAX); /* bytes past L2 are rewritten just below */

	if (p->family == LVS_FAMILY_IPV4) {
		struct iphdr *iph = data + (l3_off & 0x1f);
		__u8 *icmp = (void *)(iph + 1);

		if ((void *)(icmp + 8) > data_end)
			goto fail;
		*(__u8 *)iph = 0x45;
		iph->tos = 0xc0; /* internetwork control, as the kernel sends ICMP errors */
		iph->tot_len = bpf_htons(sizeof(*iph) + 8 + quote);
		iph->id = 0;
		iph->frag_off = 0;
		iph->ttl = 64;
		iph->protocol = IPPROTO_ICMP;
		iph->check = 0;
		__builtin_memcpy(&iph->saddr, p->flow.daddr, 4);
		__builtin_memcpy(&iph->daddr, p->flow.saddr, 4);
		iph->check = lvs_ipv4_csum(iph);
		icmp[0] = 3; /* destination unreachable */
		icmp[1] = 4; /* fragmentation needed and DF set */
		*(__u16 *)(icmp + 2) = 0;
		*(__u16 *)(icmp + 4) = 0;
		*(__u16 *)(icmp + 6) = bpf_htons(mtu);
		sum = lvs_csum_pkt_words(icmp, (8 + quote) / 4, (LVS_ICMP_QUOTE_MAX + 8) / 4, data_end, 0);
		*(__u16 *)(icmp + 2) = lvs_csum_fold64(sum);
	} else {
		struct ipv6hdr *ip6 = data + (l3_off & 0x1f);
		__u8 *icmp = (void *)(ip6 + 1);
		struct {
			__u8 saddr[16];
			__u8 daddr[16];
			__be32 len;
			__be32 nexthdr;
		} ph = {};

		if ((void *)(icmp + 8) > data_end)
			goto fail;
		*(__be32 *)ip6 = bpf_htonl(6u << 28);
		ip6->payload_len = bpf_htons(8 + quote);
		ip6->nexthdr = IPPROTO_ICMPV6;
		ip6->hop_limit = 64;
		__builtin_memcpy(&ip6->saddr, p->flow.daddr, 16);
		__builtin_memcpy(&ip6->daddr, p->flow.saddr, 16);
		icmp[0] = 2; /* packet too big */
		icmp[1] = 0;
		*(__u16 *)(icmp + 2) = 0;
		*(__be32 *)(icmp + 4) = bpf_htonl(mtu);
		__builtin_memcpy(ph.saddr, p->flow.daddr, 16);
		__builtin_memcpy(ph.daddr, p->flow.saddr, 16);
		ph.len = bpf_htonl(8 + quote);
		ph.nexthdr = bpf_htonl(IPPROTO_ICMPV6);
		sum = lvs_csum_add_buf(&ph, sizeof(ph) / 4, 0);
		sum = lvs_csum_pkt_words(icmp, (8 + quote) / 4, (LVS_ICMP_QUOTE_MAX + 8) / 4, data_end,
					 sum);
		*(__u16 *)(icmp + 2) = lvs_csum_fold64(sum);
	}
	lvs_count(LVS_C_TX_ICMP_TOO_BIG);
	return XDP_TX;
fail:
	lvs_count(LVS_C_DROP_ICMP_FAILED);
	return XDP_DROP;
}

#endif /* LVS_ICMP_H */
