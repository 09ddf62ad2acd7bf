/* Stand-in for a small Rust program, built with gcc (no rustc needed):
 * rtgt::scale and rtgt::shift under the symbol names rustc gives them, with
 * legacy mangling, or v0 mangling when built with -DV0 (tests/test_elf.py). */
#include <stdio.h>

#ifdef V0
#define RUST_SCALE "_RNvCs4fqI2P2rA04_4rtgt5scale"
#define RUST_SHIFT "_RNvCs4fqI2P2rA04_4rtgt5shift"
#else
#define RUST_SCALE "_ZN4rtgt5scale17h5f0e2d1c3b4a6978E"
#define RUST_SHIFT "_ZN4rtgt5shift17h0a1b2c3d4e5f6071E"
#endif

__attribute__((noinline, noipa)) long scale(long x) __asm__(RUST_SCALE);
__attribute__((noinline, noipa)) long shift(long x) __asm__(RUST_SHIFT);

long scale(long x)
{
	return x * 3;
}

long shift(long x)
{
	return x + 3;
}

int main(int argc, char **argv)
{
	(void)argv;
	printf("%ld\n", scale(argc) + shift(argc));
	return 0;
}
