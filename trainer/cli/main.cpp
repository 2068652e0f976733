// reel: the one command-line entry point.
#include <cstdio>
#include "common/runtime.h"
int main() { std::printf("reel %s\n", reel::version().c_str()); return 0; }
