/* uprobe test target: prints its pid, waits for a line on stdin, then calls
 * each probed function N times (argv[1]) with known arguments. Built PIE,
 * non-PIE and stripped by tests/test_uprobe.py. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/sdt.h>
#include "target_lib.h"

__attribute__((noinline, noipa)) int add_i(int a, int b)
{
	return a + b;
}

__attribute__((noinline, noipa)) long mul_l(long a, long b)
{
	return a * b;
}

/* LOCAL: only in .symtab (or the separate debug file) */
__attribute__((noinline, noipa)) static int local_twice(int x)
{
	return 2 * x;
}

__attribute__((noinline, noipa)) int greet(const char *who)
{
	return (int)strlen(who);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3;
	char line[64];
	long sum = 0;
	int i;

	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (i = 1; i <= n; i++) {
		sum += add_i(i, 100);
		sum += mul_l(i, -7);
		sum += local_twice(i);
		sum += lib_scale(i);
		DTRACE_PROBE2(plbtest, tick, i, (long)i * 1000);
		sum += getpgid(0) > 0;
		sum += getpgrp() > 0;
	}
	sum += greet("pylibbpf");
	printf("%ld\n", sum);
	return 0;
}
