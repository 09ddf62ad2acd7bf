// tc (clsact), tcx and netkit programs. Each counts its runs (on test UDP
// datagrams); the tcx ones also record the skb mark they saw and then set their
// own, so the tests can see their order.
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define TC_ACT_UNSPEC (-1)
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define ETH_P_IP 0x0800
#define IPPROTO_UDP 17

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* for tcx program i (1..3): the mark it saw last */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} seen SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &slot);

	if (c)
		__sync_fetch_and_add(c, 1);
}

/* only UDP to port 9000..9099 is of interest (ignores ARP, IPv6 noise) */
static __always_inline int is_test_udp(struct __sk_buff *skb, __u16 *port)
{
	struct iphdr ip;
	struct udphdr udp;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr), &ip, sizeof(ip)))
		return 0;
	if (ip.protocol != IPPROTO_UDP)
		return 0;
	if (bpf_skb_load_bytes(skb, sizeof(struct ethhdr) + ip.ihl * 4, &udp, sizeof(udp)))
		return 0;
	*port = bpf_ntohs(udp.dest);
	return *port >= 9000 && *port < 9100;
}

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	__u16 port;

	if (is_test_udp(skb, &port))
		bump(0);
	return TC_ACT_OK;
}

/* drops test datagrams to port 9001 */
SEC("tc")
int tc_drop_9001(struct __sk_buff *skb)
{
	__u16 port;

	if (is_test_udp(skb, &port)) {
		bump(1);
		if (port == 9001)
			return TC_ACT_SHOT;
	}
	return TC_ACT_OK;
}

static __always_inline int ordered(struct __sk_buff *skb, __u32 me)
{
	__u16 port;
	__u32 mark = skb->mark;

	if (!is_test_udp(skb, &port))
		return TC_ACT_UNSPEC;
	bump(me);
	bpf_map_update_elem(&seen, &me, &mark, BPF_ANY);
	skb->mark = me;
	return TC_ACT_UNSPEC; /* TCX_NEXT: let the next program run */
}

SEC("tcx/ingress")
int tcx_one(struct __sk_buff *skb)
{
	return ordered(skb, 1);
}

SEC("tcx/ingress")
int tcx_two(struct __sk_buff *skb)
{
	return ordered(skb, 2);
}

SEC("tcx/ingress")
int tcx_three(struct __sk_buff *skb)
{
	return ordered(skb, 3);
}

SEC("tcx/egress")
int tcx_egress_count(struct __sk_buff *skb)
{
	__u16 port;

	if (is_test_udp(skb, &port))
		bump(4);
	return TC_ACT_UNSPEC;
}

/* netkit runs it on the packets its device sends (to the other one of the pair);
 * like tc, it sees them from the Ethernet header on, in l3 mode too */
SEC("netkit/primary")
int netkit_pass(struct __sk_buff *skb)
{
	__u16 port;

	if (is_test_udp(skb, &port))
		bump(5);
	return TC_ACT_UNSPEC; /* NETKIT_NEXT: on to the peer (the device's policy) */
}

char LICENSE[] SEC("license") = "GPL";
