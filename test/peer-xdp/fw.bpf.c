// SPDX-License-Identifier: GPL-2.0
/*
 * fw - a firewall of another project: drops IPv4 TCP to one port (fw_port[0]), counts the drops
 * (fw_drops[0]), and hands every other packet on. It knows lvs-xdp's tail-call convention (the
 * README's "Sharing an interface"): loaded with lvs_chain replaced by the pinned array, it sits in
 * position 0 of its interface and tail-calls positions 1 and 2 itself.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define POSITIONS 4

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4096 * POSITIONS);
	__type(key, __u32);
	__type(value, __u32);
} lvs_chain SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} fw_port SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} fw_drops SEC(".maps");

static __always_inline int blocked(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct tcphdr *tcp;
	__u32 zero = 0, *port;

	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_TCP)
		return 0;
	tcp = (void *)ip + ip->ihl * 4;
	if ((void *)(tcp + 1) > end)
		return 0;
	port = bpf_map_lookup_elem(&fw_port, &zero);
	return port && *port && bpf_ntohs(tcp->dest) == *port;
}

SEC("xdp")
int fw(struct xdp_md *ctx)
{
	__u32 zero = 0, base = ctx->ingress_ifindex * POSITIONS;

	if (blocked(ctx)) {
		__u64 *n = bpf_map_lookup_elem(&fw_drops, &zero);

		if (n)
			__sync_fetch_and_add(n, 1);
		return XDP_DROP;
	}
	bpf_tail_call(ctx, &lvs_chain, base + 1);
	bpf_tail_call(ctx, &lvs_chain, base + 2);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
