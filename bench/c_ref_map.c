/* C references for bench/bench_map_ops.py, built against the same libbpf
 * archive that pylibbpf compiles in. One run per invocation (the Python side
 * takes medians over runs); each mode prints "<name> <ops per second>" by the
 * wall clock and "<name> <ops per CPU second>" (c_*_cpu_ops) by this process's CPU time
 * (user + system: what the work costs on a machine other jobs keep busy).
 *
 *   c_ref_map del <entries>      per-element bpf_map_delete_elem on a full
 *                                u32 -> u64 hash map
 *   c_ref_map struct <entries>   per-element bpf_map_lookup_elem on a hash map
 *                                of 8-byte struct keys and 32-byte struct values
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct fkey { unsigned pid, tid; };
struct fval { unsigned long long seq; short delta; _Bool ok; unsigned count; char comm[8];
	      unsigned long long ts; };

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int bench_del(unsigned n)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "crefdel", 4, 8, n, NULL);
	unsigned k;
	unsigned long long v;
	double t, c;

	if (fd < 0)
		return 1;
	for (k = 0; k < n; k++) {
		v = k;
		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			return 1;
	}
	c = cpu();
	t = now();
	for (k = 0; k < n; k++)
		if (bpf_map_delete_elem(fd, &k))
			return 1;
	t = now() - t;
	c = cpu() - c;
	close(fd);
	printf("c_map_del_ops %.0f\n", n / t);
	printf("c_map_del_cpu_ops %.0f\n", n / c);
	return 0;
}

static int bench_struct(unsigned n)
{
	int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "crefrec", sizeof(struct fkey),
				sizeof(struct fval), n, NULL);
	struct fkey k;
	struct fval v;
	unsigned i;
	unsigned long long sum = 0;
	double t, c;

	if (fd < 0 || sizeof(struct fval) != 32)
		return 1;
	for (i = 0; i < n; i++) {
		memset(&v, 0, sizeof(v));
		k.pid = i;
		k.tid = i;
		v.seq = i;
		if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
			return 1;
	}
	c = cpu();
	t = now();
	for (i = 0; i < n; i++) {
		k.pid = i;
		k.tid = i;
		if (bpf_map_lookup_elem(fd, &k, &v))
			return 1;
		sum += v.seq;	/* reads a field, as the Python side gets a record */
	}
	t = now() - t;
	c = cpu() - c;
	close(fd);
	if (sum != (unsigned long long)n * (n - 1) / 2)
		return 1;
	printf("c_struct_lookup_ops %.0f\n", n / t);
	printf("c_struct_lookup_cpu_ops %.0f\n", n / c);
	return 0;
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

int main(int argc, char **argv)
{
	libbpf_set_print(silent);
	if (argc == 3 && !strcmp(argv[1], "del"))
		return bench_del(atoi(argv[2]));
	if (argc == 3 && !strcmp(argv[1], "struct"))
		return bench_struct(atoi(argv[2]));
	fprintf(stderr, "usage: see the comment at the top of c_ref_map.c\n");
	return 2;
}
