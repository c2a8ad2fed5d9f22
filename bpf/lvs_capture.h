/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_capture.h - `lvs-xdp capture`: a copy of each frame the director handled, with its decision
 * (the realserver and service it chose, every lvs_counters entry the packet counted, the XDP
 * action), into a ring buffer, filtered here by service, realserver and outcome.
 *
 * Off (lvs_capture.on == 0, the default) a packet pays one load of a global and a branch, in the
 * program and in lvs_count(): no map lookup. The control plane finds the .bss and the ring by the
 * program's map ids and sets `on` last (after the filter) and clears it first.
 * Bounded: at most `rate` records per second per CPU (excess counted in lvs_capture_cpu.limited),
 * at most LVS_CAPTURE_SNAP bytes of each frame; a full ring loses records (counted in .lost).
 * Provides: the record and control structs and the switch (lvs_capture), for lvs_maps.h, which
 * declares the capture's maps (lvs_capture_rb, lvs_capture_cpu) with the director's others; the
 * code is in lvs_capture_out.h.
 */
#ifndef LVS_CAPTURE_H
#define LVS_CAPTURE_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define LVS_CAPTURE_SNAP      256  /* most bytes of a frame a record carries */
#define LVS_CAPTURE_NONE      0xffffffffu
#define LVS_CAPTURE_F_SVC     1u   /* only packets of service svc_id */
#define LVS_CAPTURE_F_REAL    2u   /* only packets sent to realserver real_idx */
#define LVS_CAPTURE_F_OUTCOME 4u   /* only packets that counted one of `outcomes` (bit = counter) */

struct lvs_capture_ctl {
	__u32 on;
	__u32 flags;     /* LVS_CAPTURE_F_* */
	__u32 snaplen;   /* <= LVS_CAPTURE_SNAP */
	__u32 rate;      /* records per second per CPU */
	__u32 svc_id;
	__u32 real_idx;
	__u64 outcomes;  /* lvs_counters indexes below 64, as bits */
};

struct lvs_capture_cpu {
	__u64 counters;  /* the current packet's lvs_counters entries, as bits (below 64) */
	__u64 window;    /* start of the current one-second rate window (ns) */
	__u64 taken;     /* records in that window */
	__u64 limited;   /* matching packets not recorded: over the rate */
	__u64 lost;      /* matching packets not recorded: the ring was full */
};

struct lvs_capture_rec {
	__u64 ts_ns;     /* bpf_ktime_get_ns() */
	__u32 ifindex;
	__u32 len;       /* the frame's length as it left the director */
	__u32 caplen;    /* bytes of it in data[] */
	__u32 action;    /* XDP action */
	__u32 svc_id;    /* LVS_CAPTURE_NONE: no service */
	__u32 real_idx;  /* LVS_CAPTURE_NONE: no realserver */
	__u64 counters;
	__u8 data[LVS_CAPTURE_SNAP];
};

/* Set by `lvs-xdp capture` through the program's .bss map. */
struct lvs_capture_ctl lvs_capture = {};

#endif /* LVS_CAPTURE_H */
