/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_l2.h - only frames for the director. A switch flooding unknown unicast, a promiscuous port
 * or the other director of a pair on the segment hands the director frames addressed to another
 * host; forwarding them would duplicate that host's traffic. A frame is forwarded only when its
 * destination MAC is one its ingress interface accepts (lvs_l2_addrs); any other is passed to the
 * kernel untouched, which drops or bridges it as it would without the director.
 *
 * Provides: lvs_l2_accepted() (the accepted entry, whose egress MAC is the source of frames sent
 * back out with XDP_TX, or NULL) and lvs_l2_pass() (counts PASS_NOT_OUR_MAC, XDP_PASS).
 * Expects: lvs_l2_addrs (lvs_maps.h), written by the control plane for every attached interface.
 * Cost: one hash lookup, paid only on paths that could forward (a packet to a virtual service,
 * a non-first fragment, an ICMP error): traffic that matches no service never pays it.
 */
#ifndef LVS_L2_H
#define LVS_L2_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_count.h"

static __always_inline const struct lvs_l2_addr *lvs_l2_accepted(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lvs_l2_key k = {};

	if (data + ETH_ALEN > data_end)
		return NULL;
	__builtin_memcpy(k.mac, data, ETH_ALEN);
	/* Group MACs (broadcast, multicast) are never a realserver's business, whatever the map says. */
	if (k.mac[0] & 1)
		return NULL;
	k.ifindex = ctx->ingress_ifindex;
	return bpf_map_lookup_elem(&lvs_l2_addrs, &k);
}

static __always_inline int lvs_l2_pass(void)
{
	lvs_count(LVS_C_PASS_NOT_OUR_MAC);
	return XDP_PASS;
}

#endif /* LVS_L2_H */
