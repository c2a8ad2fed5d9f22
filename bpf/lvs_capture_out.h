/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_capture_out.h - the capture's code (lvs_capture.h): lvs_capture_note() for lvs_count(),
 * lvs_capture_begin() before the packet path, and lvs_capture_end() after the director's
 * decision -- filter, rate limit, record -- so the frame is the one it leaves: forwarded frames
 * carry their new MACs or outer header. Called only while capturing.
 * Expects: lvs_maps.h (the maps, lvs_reals, lvs_cfg), lvs_parse.h and lvs_sched.h (the service of
 * a packet that was not forwarded is looked up again, only while capturing).
 */
#ifndef LVS_CAPTURE_OUT_H
#define LVS_CAPTURE_OUT_H

#include <linux/bpf.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include "lvs_abi.h"
#include "lvs_maps.h"
#include "lvs_parse.h"
#include "lvs_sched.h"

static __always_inline struct lvs_capture_cpu *lvs_capture_state(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&lvs_capture_cpu, &zero);
}

/* lvs_count()'s note of the counter; called only while capturing. */
static __always_inline void lvs_capture_note(__u32 c)
{
	struct lvs_capture_cpu *s = lvs_capture_state();

	if (s && c < 64)
		s->counters |= 1ull << c;
}

/* Called only while capturing, as lvs_capture_end(). */
static __always_inline void lvs_capture_begin(void)
{
	struct lvs_capture_cpu *s = lvs_capture_state();

	if (s)
		s->counters = 0;
}


/* The service of a frame the director left untouched (passed, or dropped before any rewrite). */
static __always_inline __u32 lvs_capture_svc(void *data, void *data_end)
{
	struct lvs_pkt p = {};
	struct lvs_svc *svc;
	struct lvs_cfg *cfg;
	__u32 zero = 0;

	if (lvs_parse(&p, data, data_end, cfg_enable_ipv6) != LVS_PARSE_OK)
		return LVS_CAPTURE_NONE;
	if (p.proto != IPPROTO_TCP && p.proto != IPPROTO_UDP)
		return LVS_CAPTURE_NONE;
	lvs_parse_forwarded(&p, data, data_end); /* the ports */
	cfg = bpf_map_lookup_elem(&lvs_cfg, &zero);
	if (!cfg)
		return LVS_CAPTURE_NONE;
	svc = lvs_svc_lookup(&p.flow, cfg);
	return svc ? svc->id : LVS_CAPTURE_NONE;
}

static __noinline void lvs_capture_end(struct xdp_md *ctx, int act, __u32 ri)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct lvs_capture_cpu *s = lvs_capture_state();
	struct lvs_capture_rec *rec;
	__u32 svc = LVS_CAPTURE_NONE, len;
	__u64 n;
	__u64 now;

	if (!s)
		return;
	if (ri != LVS_CAPTURE_NONE) {
		struct lvs_real *r = bpf_map_lookup_elem(&lvs_reals, &ri);

		if (r)
			svc = r->svc_id;
	} else if (act == XDP_PASS || act == XDP_DROP) {
		svc = lvs_capture_svc(data, data_end);
	}
	if ((lvs_capture.flags & LVS_CAPTURE_F_SVC) && svc != lvs_capture.svc_id)
		return;
	if ((lvs_capture.flags & LVS_CAPTURE_F_REAL) && ri != lvs_capture.real_idx)
		return;
	if ((lvs_capture.flags & LVS_CAPTURE_F_OUTCOME) && !(s->counters & lvs_capture.outcomes))
		return;
	now = bpf_ktime_get_ns();
	if (now - s->window >= 1000000000ull) {
		s->window = now;
		s->taken = 0;
	}
	if (s->taken >= lvs_capture.rate) {
		s->limited++;
		return;
	}
	rec = bpf_ringbuf_reserve(&lvs_capture_rb, sizeof(*rec), 0);
	if (!rec) {
		s->lost++;
		return;
	}
	s->taken++;
	len = data_end - data;
	n = len < lvs_capture.snaplen ? len : lvs_capture.snaplen;
	/* One register for the bounds checks and the copy, as the verifier needs it. */
	asm volatile("" : "+r"(n));
	rec->ts_ns = now;
	rec->ifindex = ctx->ingress_ifindex;
	rec->len = len;
	rec->caplen = 0;
	rec->action = act;
	rec->svc_id = svc;
	rec->real_idx = ri;
	rec->counters = s->counters;
	if (n > 0 && n <= LVS_CAPTURE_SNAP && bpf_xdp_load_bytes(ctx, 0, rec->data, n) == 0)
		rec->caplen = n;
	bpf_ringbuf_submit(rec, 0);
}

#endif /* LVS_CAPTURE_OUT_H */
