// SPDX-License-Identifier: GPL-2.0
/*
 * Traffic generators for the tests (not part of the director). syn_gen runs with
 * BPF_PROG_TEST_RUN in live-frames mode on one end of a veth pair: each repetition writes the
 * template frame (an Ethernet + IPv4 + TCP SYN) with a random client address and port, fixes the
 * IPv4 checksum and transmits it (XDP_TX). gen_sink, attached in native mode to the same end,
 * counts what comes back and drops it (and lets veth XDP_TX work on the other end).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define GEN_FRAME 64

struct gen_tpl {
	__u8 frame[GEN_FRAME];
	__u32 src_base;  /* network order; random low bits are added under src_mask */
	__u32 src_mask;  /* host order */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_tpl);
} gen_tpl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} gen_sunk SEC(".maps");

SEC("xdp")
int syn_gen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct gen_tpl *t = bpf_map_lookup_elem(&gen_tpl, &zero);

	if (!t || data + GEN_FRAME > data_end)
		return XDP_ABORTED;
	__builtin_memcpy(data, t->frame, GEN_FRAME);
	struct iphdr *ip = data + sizeof(struct ethhdr);
	struct tcphdr *tcp = (void *)(ip + 1);
	__u32 rnd = bpf_get_prandom_u32();

	ip->saddr = bpf_htonl(bpf_ntohl(t->src_base) | (rnd & t->src_mask));
	tcp->source = bpf_htons(1024 + (bpf_get_prandom_u32() % 60000));
	ip->check = 0;
	__u32 sum = 0;
	__u16 *w = (__u16 *)ip;
#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	ip->check = ~sum;
	return XDP_TX;
}

SEC("xdp")
int gen_sink(struct xdp_md *ctx)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&gen_sunk, &zero);

	if (n)
		*n += 1;
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
