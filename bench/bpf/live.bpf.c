// SPDX-License-Identifier: GPL-2.0
/*
 * Live packet rate: live_gen is run with BPF_PROG_TEST_RUN in live-frames mode on the sending
 * veth; it puts the template frame back (the program under test may have rewritten the page on
 * the previous trip) and returns XDP_TX, which the kernel turns into a transmit out of that veth.
 * The receiving veth runs the program under test in native mode; what it sends back arrives at
 * the sending veth, where live_count (native) counts it and drops it.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define LIVE_FRAME 64

struct live_tpl {
	__u8 frame[LIVE_FRAME];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct live_tpl);
} live_tpl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} live_counted SEC(".maps");

SEC("xdp")
int live_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct live_tpl *t = bpf_map_lookup_elem(&live_tpl, &zero);

	if (!t || data + LIVE_FRAME > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, t->frame, LIVE_FRAME);
	return XDP_TX;
}

SEC("xdp")
int live_count(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&live_counted, &zero);

	if (n)
		*n += 1;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
