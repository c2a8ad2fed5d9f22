/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_l2.h - only frames for the director. A switch flooding unknown unicast, a promiscuous port
 * or the other director of a pair on the segment hands the director frames addressed to another
 * host; forwarding them would duplicate that host's traffic. A frame is forwarded only when its
 * destination MAC is one its ingress interface accepts; any other is passed to the kernel
 * untouched, which drops or bridges it as it would without the director.
 *
 * Provides: lvs_l2_accepted() (the egress MAC, source of frames sent back out with XDP_TX, or
 * NULL) and lvs_l2_pass() (counts PASS_NOT_OUR_MAC, XDP_PASS).
 * Expects: lvs_l2_ifs and lvs_l2_addrs (lvs_maps.h), written by the control plane for every
 * attached interface (src/dataplane/l2addrs.ts).
 * Cost: an ARRAY lookup (inlined by the JIT) and, for the interface's own MAC, one 4-byte and one
 * 2-byte compare; a hash lookup only for an interface with more than LVS_L2_IF_MACS accepted MACs
 * (for a MAC past those) or an ingress ifindex of LVS_L2_IF_SLOTS or more. Paid only on paths that
 * could forward (a packet to a virtual service, a non-first fragment, an ICMP error).
 */
#ifndef LVS_L2_H
#define LVS_L2_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_count.h"

#if !defined(LVS_TEST_NO_L2) && !defined(LVS_BENCH_L2_HASH)
static __always_inline const __u8 *lvs_l2_accepted(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 ifindex = ctx->ingress_ifindex;

	if (data + ETH_ALEN > data_end)
		return NULL;
	/* Group MACs (broadcast, multicast) are never a realserver's business, whatever the maps say. */
	if (*(__u8 *)data & 1)
		return NULL;
	if (ifindex < LVS_L2_IF_SLOTS) {
		const struct lvs_l2_if *e = bpf_map_lookup_elem(&lvs_l2_ifs, &ifindex);
		__u32 hi = *(__u32 *)data;
		__u16 lo = *(__u16 *)(data + 4);

		if (!e)
			return NULL;
#pragma unroll
		for (int i = 0; i < LVS_L2_IF_MACS; i++) {
			if (i >= e->count)
				return NULL;
			if (e->macs[i].hi == hi && e->macs[i].lo == lo)
				return e->egress;
		}
		if (!e->more)
			return NULL;
	}
	struct lvs_l2_key k = { .ifindex = ifindex };
	__builtin_memcpy(k.mac, data, ETH_ALEN);
	const struct lvs_l2_addr *a = bpf_map_lookup_elem(&lvs_l2_addrs, &k);
	return a ? a->egress : NULL;
}
#elif defined(LVS_BENCH_L2_HASH)
/* Benchmark only (`make -C bpf bench-objects`): the first form of the check, one lvs_l2_addrs
 * hash lookup per packet, to measure lvs_l2_ifs against it in one run (bench/compare.ts). */
static __always_inline const __u8 *lvs_l2_accepted(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lvs_l2_key k = {};

	if (data + ETH_ALEN > data_end)
		return NULL;
	__builtin_memcpy(k.mac, data, ETH_ALEN);
	if (k.mac[0] & 1)
		return NULL;
	k.ifindex = ctx->ingress_ifindex;
	const struct lvs_l2_addr *a = bpf_map_lookup_elem(&lvs_l2_addrs, &k);
	return a ? a->egress : NULL;
}
#else
/* Test only (an older lvs-xdp, lvs_abi.h; and bench-objects' lvs_director_nol2.o, which keeps the
 * maps): every destination is accepted, the frame's source becomes its old destination, as before
 * accepted MACs. */
static __always_inline const __u8 *lvs_l2_accepted(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;

	if (data + ETH_ALEN > data_end)
		return NULL;
	return data;
}
#endif

static __always_inline int lvs_l2_pass(void)
{
	lvs_count(LVS_C_PASS_NOT_OUR_MAC);
	return XDP_PASS;
}

#endif /* LVS_L2_H */
