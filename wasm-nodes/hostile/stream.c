/* Sends params.count chunks {"i": n} and one info log line each, then {"count": count}.
 * A reactor hands them to the host's imports; a command logs to stderr and drops the chunks. */
#include <stdio.h>

#include "polyhost.h"

int polyhost_node(const ph_input *in, ph_output *out) {
    long long count = 3;
    ph_param_int(in, "count", &count);
    for (long long i = 0; i < count; i++) {
        char chunk[48];
        int n = snprintf(chunk, sizeof chunk, "{\"i\":%lld}", i);
        ph_chunk(chunk, (size_t)n);
        ph_log(PH_INFO, "chunk %lld of %lld", i + 1, count);
    }
    ph_out_int(out, "count", count);
    return 0;
}
