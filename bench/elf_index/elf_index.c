/*
 * C reference for bench/bench_elf.py: build an index of the function symbols
 * of an ELF file with libelf (.symtab and .dynsym, FUNC and GNU_IFUNC, defined
 * ones), keyed by name in an open-addressing hash table, then look names up.
 *
 * usage: elf_index FILE [ROUNDS [LOOKUPS]]
 * prints one JSON line: symbols, best/median build time (ms), lookup time (us).
 *
 * usage: elf_index --cold FILE NAMES [DEBUGFILE]
 * the first index of a fresh process: reads the names (one a line) first, then
 * times open + index of FILE (and of DEBUGFILE, a stripped FILE's separate debug
 * file, whose addresses map through FILE's segments, as pylibbpf.elf does)
 * + one lookup of each name, and prints {"ms": ..., "cpu_ms": ..., "found": ...}
 * (wall-clock and this thread's CPU time).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct entry {
	const char *name;
	uint64_t value;
	uint64_t size;
	uint64_t offset;
};

struct index {
	struct entry *slots;
	size_t cap;
	size_t count;
	GElf_Phdr loads[16];
	int nloads;
};

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++) {
		h ^= (unsigned char)*s;
		h *= 1099511628211ULL;
	}
	return h;
}

static void insert(struct index *ix, const char *name, uint64_t value, uint64_t size)
{
	size_t mask = ix->cap - 1, i = fnv1a(name) & mask;
	uint64_t offset = value;
	int k;

	for (k = 0; k < ix->nloads; k++) {
		GElf_Phdr *p = &ix->loads[k];
		if (value >= p->p_vaddr && value < p->p_vaddr + p->p_memsz) {
			offset = value - p->p_vaddr + p->p_offset;
			break;
		}
	}
	while (ix->slots[i].name) {
		if (strcmp(ix->slots[i].name, name) == 0)
			return; /* first definition wins */
		i = (i + 1) & mask;
	}
	ix->slots[i] = (struct entry){ name, value, size, offset };
	ix->count++;
}

static const struct entry *lookup(const struct index *ix, const char *name)
{
	size_t mask = ix->cap - 1, i = fnv1a(name) & mask;

	while (ix->slots[i].name) {
		if (strcmp(ix->slots[i].name, name) == 0)
			return &ix->slots[i];
		i = (i + 1) & mask;
	}
	return NULL;
}

static int load_phdrs(Elf *elf, struct index *ix)
{
	size_t nphdr, i;

	ix->nloads = 0;
	if (elf_getphdrnum(elf, &nphdr))
		return -1;
	for (i = 0; i < nphdr && ix->nloads < 16; i++) {
		GElf_Phdr ph;
		if (gelf_getphdr(elf, i, &ph) && ph.p_type == PT_LOAD)
			ix->loads[ix->nloads++] = ph;
	}
	return 0;
}

static size_t count_syms(Elf *elf)
{
	Elf_Scn *scn = NULL;
	size_t total = 0;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		if (gelf_getshdr(scn, &sh) && (sh.sh_type == SHT_SYMTAB || sh.sh_type == SHT_DYNSYM))
			total += sh.sh_size / (sh.sh_entsize ? sh.sh_entsize : 1);
	}
	return total;
}

static int alloc_index(struct index *ix, size_t total)
{
	ix->cap = 16;
	while (ix->cap < total * 2)
		ix->cap <<= 1;
	ix->slots = calloc(ix->cap, sizeof(*ix->slots));
	ix->count = 0;
	return ix->slots ? 0 : -1;
}

static int insert_syms(Elf *elf, struct index *ix)
{
	Elf_Scn *scn = NULL;
	size_t i;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		size_t n;

		if (!gelf_getshdr(scn, &sh) || (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM))
			continue;
		data = elf_getdata(scn, NULL);
		if (!data || !sh.sh_entsize)
			continue;
		n = sh.sh_size / sh.sh_entsize;
		for (i = 0; i < n; i++) {
			GElf_Sym sym;
			const char *name;
			int type;

			if (!gelf_getsym(data, (int)i, &sym))
				continue;
			type = GELF_ST_TYPE(sym.st_info);
			if ((type != STT_FUNC && type != STT_GNU_IFUNC) || sym.st_shndx == SHN_UNDEF)
				continue;
			name = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (name && *name)
				insert(ix, name, sym.st_value, sym.st_size);
		}
	}
	return 0;
}

static int build(Elf *elf, struct index *ix)
{
	if (load_phdrs(elf, ix) || alloc_index(ix, count_syms(elf)))
		return -1;
	return insert_syms(elf, ix);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double now_ms(void);

static double cpu_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int cold(int argc, char **argv)
{
	struct index ix = { 0 };
	char *buf, *p, **names;
	size_t n = 0, cap = 1024;
	long found = 0, len;
	double t0, c0, ms, cms;
	Elf *elf, *dbg = NULL;
	int fd, dfd = -1;
	FILE *f;

	if (argc < 4) {
		fprintf(stderr, "usage: %s --cold FILE NAMES [DEBUGFILE]\n", argv[0]);
		return 2;
	}
	f = fopen(argv[3], "r");
	if (!f || fseek(f, 0, SEEK_END) || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		perror(argv[3]);
		return 1;
	}
	buf = malloc(len + 1);
	names = malloc(cap * sizeof(*names));
	if (!buf || !names || fread(buf, 1, len, f) != (size_t)len)
		return 1;
	buf[len] = 0;
	fclose(f);
	for (p = strtok(buf, "\n"); p; p = strtok(NULL, "\n")) {
		if (n == cap && !(names = realloc(names, (cap *= 2) * sizeof(*names))))
			return 1;
		names[n++] = p;
	}
	elf_version(EV_CURRENT);
	c0 = cpu_ms();
	t0 = now_ms();
	fd = open(argv[2], O_RDONLY);
	elf = fd < 0 ? NULL : elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (argc > 4) {
		dfd = open(argv[4], O_RDONLY);
		dbg = dfd < 0 ? NULL : elf_begin(dfd, ELF_C_READ_MMAP, NULL);
		if (!dbg) {
			fprintf(stderr, "%s: cannot read\n", argv[4]);
			return 1;
		}
	}
	if (!elf || load_phdrs(elf, &ix)
	    || alloc_index(&ix, count_syms(elf) + (dbg ? count_syms(dbg) : 0))
	    || insert_syms(elf, &ix) || (dbg && insert_syms(dbg, &ix))) {
		fprintf(stderr, "%s: %s\n", argv[2], elf_errmsg(-1));
		return 1;
	}
	for (size_t k = 0; k < n; k++) {
		const struct entry *e = lookup(&ix, names[k]);
		found += e && e->offset;
	}
	ms = now_ms() - t0;
	cms = cpu_ms() - c0;
	printf("{\"ms\": %.4f, \"cpu_ms\": %.4f, \"found\": %ld, \"symbols\": %zu}\n", ms, cms,
	       found, ix.count);
	return 0;
}

int main(int argc, char **argv)
{
	int rounds = argc > 2 ? atoi(argv[2]) : 20;
	long lookups = argc > 3 ? atol(argv[3]) : 200000;
	double *times, t0, lookup_us;
	struct index ix = { 0 };
	const char **names;
	size_t nnames = 0, i;
	long found = 0;
	int r, fd;

	if (argc > 1 && strcmp(argv[1], "--cold") == 0)
		return cold(argc, argv);
	if (argc < 2 || rounds < 1 || lookups < 1) {
		fprintf(stderr, "usage: %s FILE [ROUNDS [LOOKUPS]]\n", argv[0]);
		return 2;
	}
	elf_version(EV_CURRENT);
	times = calloc(rounds, sizeof(double));
	for (r = 0; r < rounds; r++) {
		Elf *elf;

		if (ix.slots && r < rounds)
			free(ix.slots);
		ix.slots = NULL;
		t0 = now_ms();
		fd = open(argv[1], O_RDONLY);
		if (fd < 0) {
			perror(argv[1]);
			return 1;
		}
		elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
		if (!elf || build(elf, &ix)) {
			fprintf(stderr, "%s: %s\n", argv[1], elf_errmsg(-1));
			return 1;
		}
		times[r] = now_ms() - t0;
		if (r + 1 < rounds) {
			elf_end(elf);
			close(fd);
		}
	}
	/* the last index stays alive (its names point into libelf's mapping) for lookups */
	names = malloc(ix.count * sizeof(*names));
	for (i = 0; i < ix.cap; i++)
		if (ix.slots[i].name)
			names[nnames++] = ix.slots[i].name;
	t0 = now_ms();
	for (long k = 0; k < lookups; k++) {
		const struct entry *e = lookup(&ix, names[(k * 7919) % nnames]);
		found += e && e->offset;
	}
	lookup_us = (now_ms() - t0) * 1e3 / lookups;
	qsort(times, rounds, sizeof(double), cmp_double);
	printf("{\"symbols\": %zu, \"build_ms_best\": %.3f, \"build_ms_median\": %.3f, "
	       "\"lookup_us\": %.4f, \"found\": %ld}\n",
	       ix.count, times[0], times[rounds / 2], lookup_us, found);
	return 0;
}
