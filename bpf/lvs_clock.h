/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_clock.h - the director's clock: ages of connection entries, templates and fragment state.
 *
 * Provides: struct lvs_time (one per packet, set up by lvs_time_init()), lvs_time_now() (the
 * timestamp to write) and lvs_older_than() (an age test), all in bpf_ktime_get_ns() time
 * (CLOCK_MONOTONIC), and NSEC_PER_SEC.
 * Expects: the per-CPU lvs_clock map of lvs_maps.h (internal, not part of the control plane's ABI).
 *
 * Why a cache: a clock read is a helper call (~42 ns per packet measured here) while
 * bpf_jiffies64() is inlined by the JIT. Each CPU caches the coarse clock
 * (bpf_ktime_get_coarse_ns(), refreshed once per jiffy), which is never ahead of
 * bpf_ktime_get_ns() and trails it by at most a tick or two (LVS_CLOCK_LAG_NS with room to
 * spare). An age test whose answer is the same for every time in [coarse, coarse + lag] needs no
 * clock read; only a test near its boundary, and a timestamp being written, read the real clock
 * (once per packet). Ages are u64 differences, as before: a timestamp in the future is old.
 */
#ifndef LVS_CLOCK_H
#define LVS_CLOCK_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "lvs_maps.h"

#define NSEC_PER_SEC     1000000000ULL
#define LVS_CLOCK_LAG_NS (50 * 1000000ULL)

struct lvs_time {
	__u64 lo; /* cached coarse clock: <= bpf_ktime_get_ns() <= lo + LVS_CLOCK_LAG_NS */
	__u64 ns; /* bpf_ktime_get_ns() once read, else 0 */
};

static __always_inline void lvs_time_init(struct lvs_time *t)
{
	__u32 zero = 0;
	struct lvs_clock *c = bpf_map_lookup_elem(&lvs_clock, &zero);
	__u64 j = bpf_jiffies64();

	t->ns = 0;
	if (!c) {
		t->ns = bpf_ktime_get_ns();
		t->lo = t->ns;
		return;
	}
	if (c->jiffies != j) {
		c->jiffies = j;
		c->ns = bpf_ktime_get_coarse_ns();
	}
	t->lo = c->ns;
}

/* bpf_ktime_get_ns(), read once per packet. */
static __always_inline __u64 lvs_time_now(struct lvs_time *t)
{
	if (!t->ns)
		t->ns = bpf_ktime_get_ns();
	return t->ns;
}

/*
 * bpf_ktime_get_ns() - then > limit (u64), reading the clock only when the bounds disagree.
 * A timestamp ahead of the cached coarse clock (written since this CPU's last refresh, or the
 * coarse clock stalled beyond the lag in a descheduled VM) has no usable bound: read the clock.
 */
static __always_inline int lvs_older_than(struct lvs_time *t, __u64 then, __u64 limit)
{
	if (!t->ns && t->lo >= then) {
		__u64 lo = t->lo - then;
		__u64 hi = lo + LVS_CLOCK_LAG_NS;

		if (hi >= lo) { /* the true age is in [lo, hi] */
			if (lo > limit)
				return 1;
			if (hi <= limit)
				return 0;
		}
	}
	return lvs_time_now(t) - then > limit;
}

#endif /* LVS_CLOCK_H */
