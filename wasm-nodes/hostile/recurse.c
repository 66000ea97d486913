/* Recurses params.depth times (default: without end) until the stack runs out. */
#include <stdint.h>

#include "polyhost.h"

/* noinline and a result used after the call: the compiler cannot turn this into a loop. */
__attribute__((noinline)) static uint64_t descend(uint64_t depth) {
    if (depth == 0) return 1;
    uint64_t below = descend(depth - 1);
    return below * 6364136223846793005u + depth;
}

int polyhost_node(const ph_input *in, ph_output *out) {
    long long depth = -1;
    ph_param_int(in, "depth", &depth);
    ph_out_int(out, "result", (long long)(descend((uint64_t)depth) & 0xFFFF));
    return 0;
}
