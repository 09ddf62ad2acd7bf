/* libplbtarget.so: linked at a non-zero base (-Ttext-segment), so its symbol
 * addresses differ from their file offsets. */
#include <sys/sdt.h>
#include "target_lib.h"

__attribute__((noinline, noipa)) int lib_scale(int x)
{
	DTRACE_PROBE1(plblib, scaled, x);
	return x * 3 + 1;
}
