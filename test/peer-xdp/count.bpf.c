// SPDX-License-Identifier: GPL-2.0
/*
 * count - a packet counter of another project that knows nothing of lvs-xdp: counts every frame
 * (count_all[0]) and IPv4 frames by destination address (count_dst), and passes them. Such a
 * program can only run last in a tail-call chain (position 2: what lvs-xdp passed).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} count_all SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);   /* IPv4 destination, network order */
	__type(value, __u64);
} count_dst SEC(".maps");

SEC("xdp")
int count(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&count_all, &zero), one = 1;

	if (n)
		__sync_fetch_and_add(n, 1);
	if ((void *)(ip + 1) <= end && eth->h_proto == bpf_htons(ETH_P_IP)) {
		n = bpf_map_lookup_elem(&count_dst, &ip->daddr);
		if (n)
			__sync_fetch_and_add(n, 1);
		else
			bpf_map_update_elem(&count_dst, &ip->daddr, &one, BPF_NOEXIST);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
