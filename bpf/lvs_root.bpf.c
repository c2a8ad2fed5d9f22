// SPDX-License-Identifier: GPL-2.0
/*
 * lvs_root - the program an interface runs when lvs-xdp shares it by tail calls (lvs_chain.h):
 * nothing but the interface's chain, in position order. One program for every interface of a
 * director; `lvs-xdp attach --multiprog` loads it with the director's lvs_chain.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "lvs_chain.h"

SEC("xdp")
int lvs_root(struct xdp_md *ctx)
{
	return lvs_chain_from(ctx, LVS_CHAIN_BEFORE);
}

char LICENSE[] SEC("license") = "GPL";
