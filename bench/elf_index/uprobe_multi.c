/*
 * C reference for bench/bench_elf.py's multi-uprobe row: attach one
 * SEC("uprobe.multi") program to the functions NAMES (one a line) of BINARY by
 * name, as libbpf resolves them (bpf_program__attach_uprobe_multi with syms).
 *
 * usage: uprobe_multi OBJ PROG BINARY NAMES [syms|offsets]
 * opens and loads OBJ and reads NAMES first (untimed), then times the first
 * attach of the process (name resolution + the uprobe_multi link) and prints
 * {"ms": ..., "cpu_ms": ..., "probes": N} (wall-clock, and this thread's CPU time,
 * which includes the kernel's work in the attach system call).
 *
 * syms (default): libbpf resolves the names (opts.syms). libbpf 1.5 refuses a
 * binary without .symtab there (elf_resolve_syms_offsets returns the -ENOENT of
 * its last, missing, section type even when every name was found), so for a
 * stripped binary "offsets" does libbpf's own resolution steps here (libelf,
 * .dynsym then .symtab, names sorted and bsearched, st_value - sh_addr +
 * sh_offset) and passes opts.offsets.
 */
#define _GNU_SOURCE
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct want {
	const char *name;
	size_t idx;
};

static int want_cmp(const void *a, const void *b)
{
	return strcmp(((const struct want *)a)->name, ((const struct want *)b)->name);
}

/* libbpf's elf_resolve_syms_offsets, without its -ENOENT for a missing .symtab */
static int resolve(const char *path, const char **names, size_t n, unsigned long *offs)
{
	int types[2] = { SHT_DYNSYM, SHT_SYMTAB }, fd, t;
	struct want *w = calloc(n, sizeof(*w));
	size_t done = 0, i;
	Elf *elf;

	if (!w)
		return -1;
	for (i = 0; i < n; i++)
		w[i] = (struct want){ names[i], i };
	qsort(w, n, sizeof(*w), want_cmp);
	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	elf = fd < 0 ? NULL : elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -1;
	for (t = 0; t < 2; t++) {
		Elf_Scn *scn = NULL;
		GElf_Shdr sh;

		while ((scn = elf_nextscn(elf, scn))) {
			Elf_Data *data;
			size_t k, cnt;

			if (!gelf_getshdr(scn, &sh) || sh.sh_type != (unsigned)types[t] || !sh.sh_entsize)
				continue;
			data = elf_getdata(scn, NULL);
			cnt = sh.sh_size / sh.sh_entsize;
			for (k = 0; data && k < cnt; k++) {
				GElf_Sym sym;
				GElf_Shdr ssh;
				Elf_Scn *ss;
				struct want key, *hit;

				if (!gelf_getsym(data, (int)k, &sym) || GELF_ST_TYPE(sym.st_info) != STT_FUNC
				    || sym.st_shndx == SHN_UNDEF)
					continue;
				key.name = elf_strptr(elf, sh.sh_link, sym.st_name);
				if (!key.name)
					continue;
				hit = bsearch(&key, w, n, sizeof(*w), want_cmp);
				if (!hit || offs[hit->idx])
					continue;
				ss = elf_getscn(elf, sym.st_shndx);
				if (!ss || !gelf_getshdr(ss, &ssh))
					continue;
				offs[hit->idx] = sym.st_value - ssh.sh_addr + ssh.sh_offset;
				done++;
			}
		}
	}
	elf_end(elf);
	close(fd);
	free(w);
	return done == n ? 0 : -1;
}

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	int by_offsets = argc > 5 && strcmp(argv[5], "offsets") == 0;
	unsigned long *offs = NULL;
	LIBBPF_OPTS(bpf_uprobe_multi_opts, opts);
	struct bpf_object *obj;
	struct bpf_program *prog;
	struct bpf_link *link;
	const char **names;
	char line[512];
	size_t n = 0, cap = 256;
	double t0, c0, ms, cms;
	FILE *f;

	if (argc != 5 && argc != 6) {
		fprintf(stderr, "usage: %s OBJ PROG BINARY NAMES [syms|offsets]\n", argv[0]);
		return 2;
	}
	names = malloc(cap * sizeof(*names));
	f = fopen(argv[4], "r");
	if (!f || !names) {
		perror(argv[4]);
		return 1;
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		if (!*line)
			continue;
		if (n == cap && !(names = realloc(names, (cap *= 2) * sizeof(*names))))
			return 1;
		names[n++] = strdup(line);
	}
	fclose(f);
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj || bpf_object__load(obj)) {
		fprintf(stderr, "cannot open/load %s\n", argv[1]);
		return 1;
	}
	prog = bpf_object__find_program_by_name(obj, argv[2]);
	if (!prog) {
		fprintf(stderr, "no program %s\n", argv[2]);
		return 1;
	}
	opts.cnt = n;
	/* a busy pause before the timed attach, as the Python side takes
	 * (bench_elf.py's UPROBE_SETTLE_MS says why) */
	if (getenv("BENCH_SETTLE_MS")) {
		double until = now_ms() + atoi(getenv("BENCH_SETTLE_MS"));
		while (now_ms() < until)
			;
	}
	c0 = cpu_ms();
	t0 = now_ms();
	if (by_offsets) {
		offs = calloc(n, sizeof(*offs));
		if (!offs || resolve(argv[3], names, n, offs)) {
			fprintf(stderr, "cannot resolve the names in %s\n", argv[3]);
			return 1;
		}
		opts.offsets = offs;
	} else {
		opts.syms = names;
	}
	link = bpf_program__attach_uprobe_multi(prog, -1, argv[3], NULL, &opts);
	ms = now_ms() - t0;
	cms = cpu_ms() - c0;
	if (!link) {
		fprintf(stderr, "attach failed\n");
		return 1;
	}
	printf("{\"ms\": %.4f, \"cpu_ms\": %.4f, \"probes\": %zu}\n", ms, cms, n);
	bpf_link__destroy(link);
	bpf_object__close(obj);
	return 0;
}
