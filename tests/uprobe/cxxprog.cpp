// C++ uprobe target: mangled names, overloads, a member function.
#include <cstdio>
#include <cstdlib>
#include <unistd.h>

namespace plb {

struct Shape {
	int w, h;
	__attribute__((noinline, noipa)) int area() const { return w * h; }
};

__attribute__((noinline, noipa)) int twice(int x) { return 2 * x; }
__attribute__((noinline, noipa)) double twice(double x) { return 2 * x; }
__attribute__((noinline, noipa)) int area(int w, int h) { return w * h; }

}  // namespace plb

int main(int argc, char **argv)
{
	int n = argc > 1 ? std::atoi(argv[1]) : 3;
	char line[64];
	double acc = 0;

	std::printf("%d\n", (int)getpid());
	std::fflush(stdout);
	if (!std::fgets(line, sizeof(line), stdin))
		return 1;
	for (int i = 1; i <= n; i++) {
		plb::Shape s{i, 5};
		acc += plb::area(i, 10);
		acc += plb::twice(i);
		acc += plb::twice(0.5 * i);
		acc += s.area();
	}
	std::printf("%g\n", acc);
	return 0;
}
