// SPDX-License-Identifier: GPL-2.0
/*
 * Repeat-loop wrappers for BPF_PROG_TEST_RUN. With a repeat count the kernel runs the program on
 * one buffer over and over, so a program that pushes a header sees its own output on the next
 * run. These wrappers put the original frame back first (head moved back to where it was, the
 * first WRAP_RESTORE bytes rewritten from wrap_state), optionally give it another flow, then
 * tail-call the program under test. Their own cost is measured the same way in front of XDP_DROP
 * and subtracted.
 *
 * wrap_newflow numbers the runs with a per-CPU sequence s. With mod == 0 every run is a new flow
 * (source port and the low source address bits from s, plus the CPU). With mod != 0 the runs
 * cycle through mod flows i = s % mod (source port i & 0xffff, source address bits i >> 16), and
 * with ndst != 0 flow i goes to destination i % ndst (the last two destination address bytes):
 * a working set of established flows spread over many services.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define WRAP_RESTORE 96 /* frames must be at least this long (L2 + IPv6 + TCP fit) */

struct wrap_state {
	__u32 len;      /* length of the original frame */
	__u16 sport_off; /* offset of the TCP/UDP source port (new-flow wrapper) */
	__u16 saddr_off; /* offset of the source address's last two bytes (new-flow wrapper) */
	__u32 mod;       /* 0: a new flow every run; else cycle through mod flows */
	__u16 daddr_off; /* offset of the destination address's last two bytes (with ndst) */
	__u16 pad;
	__u32 ndst;      /* 0: destination unchanged; else flow i goes to destination i % ndst */
	__u32 pad2;
	__u8 frame[WRAP_RESTORE];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct wrap_state);
} wrap_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} wrap_seq SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} wrap_target SEC(".maps");

static __always_inline int restore(struct xdp_md *ctx, struct wrap_state **out)
{
	__u32 zero = 0;
	struct wrap_state *st = bpf_map_lookup_elem(&wrap_state, &zero);
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	int delta;

	if (!st)
		return -1;
	delta = (int)(data_end - data) - (int)st->len;
	if (delta && bpf_xdp_adjust_head(ctx, delta))
		return -1;
	data = (void *)(long)ctx->data;
	data_end = (void *)(long)ctx->data_end;
	if (data + WRAP_RESTORE > data_end)
		return -1;
	__builtin_memcpy(data, st->frame, WRAP_RESTORE);
	*out = st;
	return 0;
}

SEC("xdp")
int wrap_restore(struct xdp_md *ctx)
{
	struct wrap_state *st;

	if (restore(ctx, &st))
		return XDP_ABORTED;
	bpf_tail_call(ctx, &wrap_target, 0);
	return XDP_ABORTED;
}

SEC("xdp")
int wrap_newflow(struct xdp_md *ctx)
{
	struct wrap_state *st;
	__u32 zero = 0;
	__u64 *seq;

	if (restore(ctx, &st))
		return XDP_ABORTED;
	seq = bpf_map_lookup_elem(&wrap_seq, &zero);
	if (!seq)
		return XDP_ABORTED;
	__u64 s = ++*seq;
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u16 *sp = data + (st->sport_off & 0x3f);
	__u16 *sa = data + (st->saddr_off & 0x3f);
	__u16 *da = data + (st->daddr_off & 0x3f);
	__u32 mod = st->mod, ndst = st->ndst;

	if ((void *)(sp + 1) > data_end || (void *)(sa + 1) > data_end || (void *)(da + 1) > data_end)
		return XDP_ABORTED;
	if (mod) {
		__u32 i = s % mod;

		*sp = (__u16)i;
		*sa = (__u16)(i >> 16);
		if (ndst)
			*da = bpf_htons((__u16)(i % ndst));
	} else {
		*sp = (__u16)s;
		*sa = (__u16)(((s >> 16) & 0x0fff) | (bpf_get_smp_processor_id() << 12));
	}
	bpf_tail_call(ctx, &wrap_target, 0);
	return XDP_ABORTED;
}

char LICENSE[] SEC("license") = "GPL";
