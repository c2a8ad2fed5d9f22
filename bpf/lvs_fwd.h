/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_fwd.h - the forwarding methods: LVS-DR (the frame readdressed to the realserver's MAC) and
 * LVS-Tun (the IP packet encapsulated in IPIP or IPv6 to the realserver's address), sent back
 * out the ingress interface (XDP_TX) or through another one (XDP_REDIRECT via lvs_tx_ports).
 *
 * Provides: lvs_fwd_dr(), lvs_fwd_tun(), and lvs_tun_outer_len() / lvs_tun_mtu(), with which the
 * caller checks that the encapsulated packet fits before calling lvs_fwd_tun().
 * Expects: a parsed packet (lvs_parse.h) still as parsed, the chosen lvs_real, the ingress
 * interface's own MAC (from its accepted-MAC entry, lvs_l2.h), lvs_tx_ports (lvs_maps.h). Counts
 * the packet's FWD_* counter, FWD_REDIRECT, or the drop reason.
 */
#ifndef LVS_FWD_H
#define LVS_FWD_H

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
#include "lvs_hash.h"
#include "lvs_count.h"

static __always_inline int lvs_xmit(const struct lvs_real *r, __u32 fwd_counter)
{
	if (!r->ifindex) {
		lvs_count(fwd_counter);
		return XDP_TX;
	}
	if (bpf_redirect_map(&lvs_tx_ports, r->ifindex, 0) != XDP_REDIRECT) {
		lvs_count(LVS_C_DROP_REDIRECT_FAILED);
		return XDP_DROP;
	}
	lvs_count(fwd_counter);
	lvs_count(LVS_C_FWD_REDIRECT);
	return XDP_REDIRECT;
}

/* New Ethernet addresses: to the realserver (or next hop) from the egress interface's own MAC,
 * never from the MAC the frame was sent to (a macvlan's or VRRP vmac would be learned on this
 * port). XDP_TX leaves by the ingress interface: `egress` is its MAC, from the accepted-MAC entry
 * (lvs_l2.h); XDP_REDIRECT leaves by r->ifindex, whose MAC is r->smac. */
static __always_inline void lvs_set_macs(__u8 *eth, const struct lvs_real *r, const __u8 *egress)
{
	if (r->ifindex)
		__builtin_memcpy(eth + ETH_ALEN, r->smac, ETH_ALEN);
	else
		__builtin_memcpy(eth + ETH_ALEN, egress, ETH_ALEN);
	__builtin_memcpy(eth, r->mac, ETH_ALEN);
}

static __always_inline int lvs_fwd_dr(struct xdp_md *ctx, const struct lvs_pkt *p,
				      const struct lvs_real *r, const __u8 *egress)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + ETH_HLEN > data_end)
		return XDP_DROP;
	if (r->family != p->family) { /* DR cannot change the family; the compiler refuses it */
		lvs_count(LVS_C_DROP_BAD_REAL);
		return XDP_DROP;
	}
	lvs_set_macs(data, r, egress);
	return lvs_xmit(r, LVS_C_FWD_DR);
}

/* Bytes the outer header adds: it has the realserver's family. */
static __always_inline __u32 lvs_tun_outer_len(const struct lvs_real *r)
{
	return r->family == LVS_FAMILY_IPV4 ? sizeof(struct iphdr) : sizeof(struct ipv6hdr);
}

/* The MTU toward Tun realservers, outer header included. */
static __always_inline __u32 lvs_tun_mtu(const struct lvs_cfg *cfg)
{
	return cfg->tun_mtu ? cfg->tun_mtu : 1500;
}

/* The flow label of an IPv6 tunnel: the flow's scheduling hash over all its fields. */
static __always_inline __u32 lvs_tun_label(const struct lvs_pkt *p, const struct lvs_cfg *cfg)
{
	return lvs_flow_hash(&p->flow, 0x1f, cfg->hash_seed) & 0xfffff;
}

/* Encapsulates the packet (which fits the tunnel MTU) and sends it to the realserver. */
static __always_inline int lvs_fwd_tun(struct xdp_md *ctx, const struct lvs_pkt *p,
				       const struct lvs_real *r, const struct lvs_cfg *cfg,
				       const __u8 *egress)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 outer = lvs_tun_outer_len(r);
	__u32 l3_off = p->l3_off;
	__u8 ttl = cfg->tun_ttl ? cfg->tun_ttl : 64;
	__u8 inner_proto = p->family == LVS_FAMILY_IPV4 ? IPPROTO_IPIP : IPPROTO_IPV6;
	__u8 l2[LVS_L2_MAX];

	if (data + LVS_L2_MAX > data_end)
		goto fail;
	__builtin_memcpy(l2, data, LVS_L2_MAX);
	lvs_set_macs(l2, r, egress);
	if (bpf_xdp_adjust_head(ctx, -(int)outer))
		goto fail;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + LVS_L2_MAX > data_end)
		goto fail;
	/* L2 header back at the front; what it writes past L2 is overwritten by the outer header. */
	__builtin_memcpy(data, l2, LVS_L2_MAX);
	__be16 *ethertype = data + ((l3_off - 2) & 0x1f);
	if ((void *)(ethertype + 1) > data_end)
		goto fail;

	if (r->family == LVS_FAMILY_IPV4) {
		struct iphdr *o = data + (l3_off & 0x1f);

		if ((void *)(o + 1) > data_end)
			goto fail;
		*ethertype = bpf_htons(ETH_P_IP);
		*(__u8 *)o = 0x45;
		o->tos = p->tos; /* DSCP and ECN copied (RFC 2983 uniform, RFC 6040 normal) */
		o->tot_len = bpf_htons(p->l3_len + sizeof(*o));
		o->id = 0;
		o->frag_off = bpf_htons(IP_DF_BIT);
		o->ttl = ttl;
		o->protocol = inner_proto;
		o->check = 0;
		__builtin_memcpy(&o->saddr, cfg->tun_src4, 4);
		__builtin_memcpy(&o->daddr, r->addr, 4);
		o->check = lvs_ipv4_csum(o);
	} else {
		struct ipv6hdr *o6 = data + (l3_off & 0x1f);
		/* A flow label from the flow spreads tunnels over ECMP paths like the flows inside. */
		__u32 label = (p->tun_label & LVS_TUN_LABEL_SET) ? p->tun_label & 0xfffff : lvs_tun_label(p, cfg);

		if ((void *)(o6 + 1) > data_end)
			goto fail;
		*ethertype = bpf_htons(ETH_P_IPV6);
		*(__be32 *)o6 = bpf_htonl((6u << 28) | ((__u32)p->tos << 20) | label);
		o6->payload_len = bpf_htons(p->l3_len);
		o6->nexthdr = inner_proto;
		o6->hop_limit = ttl;
		__builtin_memcpy(&o6->saddr, cfg->tun_src6, 16);
		__builtin_memcpy(&o6->daddr, r->addr, 16);
	}
	return lvs_xmit(r, LVS_C_FWD_TUN);
fail:
	lvs_count(LVS_C_DROP_ENCAP_FAILED);
	return XDP_DROP;
}

#endif /* LVS_FWD_H */
