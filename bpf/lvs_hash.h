/* SPDX-License-Identifier: GPL-2.0 */
/*
 * lvs_hash.h - the scheduling hash. Bob Jenkins' lookup3 as the kernel's jhash2(), over a fixed
 * 10-word key; src/hash/jhash.ts is the TypeScript twin and the packet tests check that both
 * pick the same table slot for the same flow.
 *
 * Provides: lvs_jhash_10() (the hash of a 10-word key) and lvs_flow_hash() (the hash of a flow's
 * fields that a service hashes, LVS_HF_*: the table slot before the modulo, and the Tun flow
 * label). Expects nothing but lvs_abi.h's flow key.
 */
#ifndef LVS_HASH_H
#define LVS_HASH_H

#include <linux/types.h>
#include "lvs_abi.h"

#define LVS_JHASH_INITVAL 0xdeadbeef

static __always_inline __u32 lvs_rol32(__u32 w, unsigned int s)
{
	return (w << s) | (w >> ((-s) & 31));
}

#define lvs_jhash_mix(a, b, c)                  \
	{                                       \
		a -= c; a ^= lvs_rol32(c, 4); c += b;  \
		b -= a; b ^= lvs_rol32(a, 6); a += c;  \
		c -= b; c ^= lvs_rol32(b, 8); b += a;  \
		a -= c; a ^= lvs_rol32(c, 16); c += b; \
		b -= a; b ^= lvs_rol32(a, 19); a += c; \
		c -= b; c ^= lvs_rol32(b, 4); b += a;  \
	}

#define lvs_jhash_final(a, b, c)                 \
	{                                        \
		c ^= b; c -= lvs_rol32(b, 14);  \
		a ^= c; a -= lvs_rol32(c, 11);  \
		b ^= a; b -= lvs_rol32(a, 25);  \
		c ^= b; c -= lvs_rol32(b, 16);  \
		a ^= c; a -= lvs_rol32(c, 4);   \
		b ^= a; b -= lvs_rol32(a, 14);  \
		c ^= b; c -= lvs_rol32(b, 24);  \
	}

/*
 * Hash key words: saddr[4], daddr[4], (sport | dport << 16), proto. Address and port words are
 * the packet bytes loaded as little-endian u32 / u16; fields the service does not hash are zero.
 */
#define LVS_HASH_WORDS 10

static __always_inline __u32 lvs_jhash_10(const __u32 *k, __u32 initval)
{
	__u32 a, b, c;

	a = b = c = LVS_JHASH_INITVAL + (LVS_HASH_WORDS << 2) + initval;
	a += k[0]; b += k[1]; c += k[2];
	lvs_jhash_mix(a, b, c);
	a += k[3]; b += k[4]; c += k[5];
	lvs_jhash_mix(a, b, c);
	a += k[6]; b += k[7]; c += k[8];
	lvs_jhash_mix(a, b, c);
	a += k[9];
	lvs_jhash_final(a, b, c);
	return c;
}

/* src/dataplane/flowhash.ts builds the same key to predict a flow's table slot. */
static __always_inline __u32 lvs_flow_hash(const struct lvs_flow_key *f, __u8 fields, __u32 seed)
{
	__u32 k[LVS_HASH_WORDS] = {};

	if (fields & LVS_HF_SADDR)
		__builtin_memcpy(&k[0], f->saddr, 16);
	if (fields & LVS_HF_DADDR)
		__builtin_memcpy(&k[4], f->daddr, 16);
	if (fields & LVS_HF_SPORT)
		k[8] |= f->sport;
	if (fields & LVS_HF_DPORT)
		k[8] |= (__u32)f->dport << 16;
	if (fields & LVS_HF_PROTO)
		k[9] = f->proto;
	return lvs_jhash_10(k, seed);
}

#endif /* LVS_HASH_H */
