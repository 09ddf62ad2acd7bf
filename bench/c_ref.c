/* C references for bench/run.py, built against the same libbpf archive that
 * pylibbpf compiles in. Each mode prints one line: "<name> <value>".
 *
 *   c_ref ringbuf <obj> <records> <rounds>   best records/s draining a ring buffer
 *   c_ref map <entries> <rounds>             best per-element update/s and lookup/s
 *   c_ref perfbuf <obj> <records> <pages> <rounds>  best records/s draining a perf
 *                                            buffer (records made on one CPU)
 *   c_ref load <obj> <warm>                  seconds (wall, CPU) of this process's
 *                                            first open+load+close, median of <warm> more
 *   c_ref kprobe <obj> <attempts> <rounds>   best seconds per failing
 *                                            bpf_program__attach_kprobe
 */
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>

struct bench_event { unsigned long long seq; unsigned pid, cpu; unsigned long long ts; char comm[8]; };
struct produce_args { unsigned n, dropped; };

/* CLOCK_MONOTONIC, or this thread's CPU time when PYLIBBPF_BENCH_CPU_TIME is
 * set (bench_batch.py: ratios that hold on a loaded machine) */
static double now(void)
{
	struct timespec ts;

	clock_gettime(getenv("PYLIBBPF_BENCH_CPU_TIME") ? CLOCK_THREAD_CPUTIME_ID : CLOCK_MONOTONIC,
		      &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long sum_seq;

static int on_record(void *ctx, void *data, size_t size)
{
	const struct bench_event *e = data;

	sum_seq += e->seq;
	return 0;
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static int produce(int prog_fd, unsigned n)
{
	struct produce_args a = { .n = n };
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = &a, .ctx_size_in = sizeof(a));

	if (bpf_prog_test_run_opts(prog_fd, &o) || a.dropped) {
		fprintf(stderr, "produce failed (dropped %u)\n", a.dropped);
		return -1;
	}
	return 0;
}

static int bench_ringbuf(const char *path, unsigned n, int rounds)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct ring_buffer *rb;
	double best = 1e9;
	int prog_fd, i;

	if (!obj || bpf_object__load(obj))
		return 1;
	prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "produce"));
	rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "rb")), on_record,
			      NULL, NULL);
	if (!rb)
		return 1;
	for (i = 0; i < rounds; i++) {
		double t;
		int got = 0, r;

		if (produce(prog_fd, n))
			return 1;
		t = now();
		while ((r = ring_buffer__consume(rb)) > 0)
			got += r;
		t = now() - t;
		if (got != (int)n) {
			fprintf(stderr, "got %d of %u records\n", got, n);
			return 1;
		}
		if (t < best)
			best = t;
	}
	printf("c_ringbuf_rps %.0f\n", n / best);
	ring_buffer__free(rb);
	bpf_object__close(obj);
	return 0;
}

static unsigned long perf_got;

static void on_sample(void *ctx, int cpu, void *data, __u32 size)
{
	const struct bench_event *e = data;

	sum_seq += e->seq;
	perf_got++;
}

static int bench_perfbuf(const char *path, unsigned n, unsigned pages, int rounds)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct perf_buffer *pb;
	double best = 1e9;
	int prog_fd, i;

	if (!obj || bpf_object__load(obj))
		return 1;
	prog_fd = bpf_program__fd(bpf_object__find_program_by_name(obj, "produce_perf"));
	pb = perf_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "pb")), pages,
			      on_sample, NULL, NULL, NULL);
	if (!pb)
		return 1;
	for (i = 0; i < rounds; i++) {
		unsigned long long args[1] = { n };
		LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = args, .ctx_size_in = sizeof(args));
		double t;

		if (bpf_prog_test_run_opts(prog_fd, &o))
			return 1;
		perf_got = 0;
		t = now();
		if (perf_buffer__consume(pb))   /* reads every CPU's buffer to its end */
			return 1;
		t = now() - t;
		if (perf_got != n) {
			fprintf(stderr, "got %lu of %u perf records\n", perf_got, n);
			return 1;
		}
		if (t < best)
			best = t;
	}
	printf("c_perfbuf_rps %.0f\n", n / best);
	perf_buffer__free(pb);
	bpf_object__close(obj);
	return 0;
}

static int bench_map(unsigned n, int rounds)
{
	double best_u = 1e9, best_l = 1e9;
	int i;

	for (i = 0; i < rounds; i++) {
		int fd = bpf_map_create(BPF_MAP_TYPE_HASH, "cref", 4, 8, n, NULL);
		unsigned k;
		unsigned long long v;
		double t;

		if (fd < 0)
			return 1;
		t = now();
		for (k = 0; k < n; k++) {
			v = k;
			if (bpf_map_update_elem(fd, &k, &v, BPF_ANY))
				return 1;
		}
		t = now() - t;
		if (t < best_u)
			best_u = t;
		t = now();
		for (k = 0; k < n; k++)
			if (bpf_map_lookup_elem(fd, &k, &v))
				return 1;
		t = now() - t;
		if (t < best_l)
			best_l = t;
		close(fd);
	}
	printf("c_map_update_ops %.0f\n", n / best_u);
	printf("c_map_lookup_ops %.0f\n", n / best_l);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* CPU time (user + system) of this process so far */
static double cpu_now(void)
{
	struct rusage r;

	getrusage(RUSAGE_SELF, &r);
	return r.ru_utime.tv_sec + r.ru_stime.tv_sec +
	       (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static double median(double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* one open+load+close: wall seconds, and CPU seconds in *cpu */
static double one_load(const char *path, double *cpu)
{
	double c = cpu_now(), t = now();
	struct bpf_object *obj = bpf_object__open_file(path, NULL);

	if (!obj || bpf_object__load(obj))
		return -1;
	bpf_object__close(obj);
	t = now() - t;
	*cpu = cpu_now() - c;
	return t;
}

/* the first open+load+close of this process (nothing before it), then the
 * median of <warm> more; wall and CPU time */
static int bench_load(const char *path, int warm)
{
	double first_cpu, first = one_load(path, &first_cpu), *t, *c;
	int i;

	if (first < 0 || warm < 1 || !(t = calloc(warm, sizeof(*t))) ||
	    !(c = calloc(warm, sizeof(*c))))
		return 1;
	for (i = 0; i < warm; i++)
		if ((t[i] = one_load(path, &c[i])) < 0)
			return 1;
	printf("c_load_first_s %.6f\n", first);
	printf("c_load_first_cpu_s %.6f\n", first_cpu);
	printf("c_load_warm_s %.6f\n", median(t, warm));
	printf("c_load_warm_cpu_s %.6f\n", median(c, warm));
	free(t);
	free(c);
	return 0;
}

/* the kernel function no kernel has, as bench/run.py names it */
#define MISSING_FUNCTION "pylibbpf_bench_no_such_function"

/* what a C tool does with libbpf's messages on a failure: format them (to
 * show them), as pylibbpf does to put them in the exception */
static char last_message[512];

static int keep_message(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_WARN)
		vsnprintf(last_message, sizeof(last_message), fmt, ap);
	return 0;
}

static int bench_kprobe(const char *path, int attempts, int rounds)
{
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	struct bpf_program *prog;
	double best = 1e9;
	int i, j;

	if (!obj || bpf_object__load(obj))
		return 1;
	prog = bpf_object__find_program_by_name(obj, "on_kprobe");
	if (!prog)
		return 1;
	libbpf_set_print(keep_message);
	for (i = 0; i < rounds; i++) {
		double t = now();

		for (j = 0; j < attempts; j++) {
			struct bpf_link *link = bpf_program__attach_kprobe(prog, false,
									   MISSING_FUNCTION);

			if (link) {
				fprintf(stderr, "attaching to %s worked\n", MISSING_FUNCTION);
				return 1;
			}
		}
		t = (now() - t) / attempts;
		if (t < best)
			best = t;
	}
	libbpf_set_print(silent);
	printf("c_kprobe_fail_s %.9f\n", best);
	bpf_object__close(obj);
	return 0;
}

int main(int argc, char **argv)
{
	libbpf_set_print(silent);
	if (argc == 5 && !strcmp(argv[1], "ringbuf"))
		return bench_ringbuf(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 6 && !strcmp(argv[1], "perfbuf"))
		return bench_perfbuf(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	if (argc == 4 && !strcmp(argv[1], "map"))
		return bench_map(atoi(argv[2]), atoi(argv[3]));
	if (argc == 4 && !strcmp(argv[1], "load"))
		return bench_load(argv[2], atoi(argv[3]));
	if (argc == 5 && !strcmp(argv[1], "kprobe"))
		return bench_kprobe(argv[2], atoi(argv[3]), atoi(argv[4]));
	fprintf(stderr, "usage: see the comment at the top of c_ref.c\n");
	return 2;
}
