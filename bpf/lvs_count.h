/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_count.h - how a handler accounts for a packet and says where it goes.
 *
 * Provides: lvs_count() (one lvs_counters entry: a named outcome, drop reason or event),
 * lvs_account() (a service's or realserver's packets, bytes and scheduling decisions), and
 * LVS_FORWARD, the verdict of a handler that chose a realserver (any other verdict is the XDP
 * action, its pass / drop / tx counter already counted).
 * Expects: the per-CPU maps of lvs_maps.h. Every packet counts exactly one pass / fwd / drop / tx
 * counter (lvs_abi.h), plus any number of events.
 */
#ifndef LVS_COUNT_H
#define LVS_COUNT_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_capture_out.h"

#define LVS_FORWARD 0x100 /* handler verdict: forward to the realserver it chose */

static __always_inline void lvs_count(__u32 c)
{
	__u64 *v = bpf_map_lookup_elem(&lvs_counters, &c);

	if (v)
		*v += 1;
	if (lvs_capture.on) /* lvs-xdp capture: the packet's decision (lvs_capture.h) */
		lvs_capture_note(c);
}

/* IPVS's per-service and per-destination statistics: L3 bytes; conns counts new schedulings. */
static __always_inline void lvs_account(void *stats_map, __u32 idx, __u32 bytes, int new_conn)
{
	struct lvs_stats *s = bpf_map_lookup_elem(stats_map, &idx);

	if (!s)
		return;
	s->packets++;
	s->bytes += bytes;
	if (new_conn)
		s->conns++;
}

#endif /* LVS_COUNT_H */
