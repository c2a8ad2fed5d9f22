/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_chain.h - sharing an interface by tail calls, where the kernel refuses libxdp's dispatcher
 * (freplace programs): a root program (lvs_root.bpf.c) is what the interface runs, and it
 * tail-calls the programs of one program array, lvs_chain, in position order.
 *
 * Slots: ingress ifindex * LVS_CHAIN_POSITIONS + position, so one array (pinned at
 * <pin dir>-chain/lvs_chain) serves every interface of a director, each with its own chain:
 *   LVS_CHAIN_BEFORE  a program that runs before the director (a firewall)
 *   LVS_CHAIN_LVS     the director
 *   LVS_CHAIN_AFTER   what gets the packets the director passes
 * A program that finishes a packet (drop, tx, redirect) ends the chain; one that passes it goes
 * on only if it tail-calls the following positions itself, as lvs_chain_from() does: a program
 * that knows nothing of the chain can only run last (LVS_CHAIN_AFTER).
 * Expects: an XDP program; empty slots fall through (a failed tail call returns). The director
 * defines LVS_CHAIN_NO_MAP: its lvs_chain is declared in lvs_maps.h, with its other maps.
 */
#ifndef LVS_CHAIN_H
#define LVS_CHAIN_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define LVS_CHAIN_IFS       4096 /* interfaces with an ifindex below this can share by tail calls */
#define LVS_CHAIN_POSITIONS 4
#define LVS_CHAIN_BEFORE    0
#define LVS_CHAIN_LVS       1
#define LVS_CHAIN_AFTER     2
#define LVS_CHAIN_SLOTS     16384 /* LVS_CHAIN_IFS * LVS_CHAIN_POSITIONS */

#ifndef LVS_CHAIN_NO_MAP
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, LVS_CHAIN_SLOTS);
	__type(key, __u32);
	__type(value, __u32);
} lvs_chain SEC(".maps");
#endif

/* Runs the interface's chain from position `from` on; XDP_PASS when every slot there is empty. */
static __always_inline int lvs_chain_from(struct xdp_md *ctx, __u32 from)
{
	__u32 base = ctx->ingress_ifindex;

	if (base >= LVS_CHAIN_IFS)
		return XDP_PASS;
	base *= LVS_CHAIN_POSITIONS;
	if (from <= LVS_CHAIN_BEFORE)
		bpf_tail_call(ctx, &lvs_chain, base + LVS_CHAIN_BEFORE);
	if (from <= LVS_CHAIN_LVS)
		bpf_tail_call(ctx, &lvs_chain, base + LVS_CHAIN_LVS);
	bpf_tail_call(ctx, &lvs_chain, base + LVS_CHAIN_AFTER);
	return XDP_PASS;
}

#ifdef LVS_CHAIN_NO_MAP
/*
 * The director's side: whether it runs in a chain at all. Attached alone (the common case) an
 * empty LVS_CHAIN_AFTER slot costs a tail call per passed packet for nothing, so the director
 * tries it only once the control plane has set lvs_chain_on (src/director/chain.ts, through
 * this section's map, CHAIN_ON_MAP there). Ordering: attach --multiprog sets it before it writes
 * the director's slot, the only way a root reaches the director, so every packet the director
 * gets from a chain sees it set and no passed packet misses a program in LVS_CHAIN_AFTER, put
 * there before or after the attach. It is never cleared: a director once chained keeps trying
 * (clearing it while a root on another CPU is mid-packet could pass that packet to the kernel
 * past the program after it). Its own section, not .bss: capture writes .bss (lvs_capture) whole.
 */
volatile __u32 lvs_chain_on SEC(".data.lvs_chain") = 0;

/* A packet the director passes: to LVS_CHAIN_AFTER when chained, else to the kernel. */
static __always_inline int lvs_chain_pass(struct xdp_md *ctx)
{
	if (!lvs_chain_on)
		return XDP_PASS;
	return lvs_chain_from(ctx, LVS_CHAIN_AFTER);
}
#endif

#endif /* LVS_CHAIN_H */
