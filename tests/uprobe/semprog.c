/* USDT probe guarded by a semaphore: its body runs only while a tracer has
 * raised the semaphore (the kernel does, through the uprobe's ref_ctr_offset).
 * Prints its pid, waits for a line, fires N times, prints how often the
 * guarded branch ran. */
#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/sdt.h>

__extension__ unsigned short plbsem_hit_semaphore __attribute__((unused))
	__attribute__((section(".probes")));

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 3, i, ran = 0;
	char line[64];

	printf("%d\n", (int)getpid());
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	for (i = 1; i <= n; i++) {
		if (plbsem_hit_semaphore) {
			ran++;
			STAP_PROBE1(plbsem, hit, i);
		}
	}
	printf("%d\n", ran);
	return 0;
}
