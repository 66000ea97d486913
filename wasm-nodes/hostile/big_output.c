/* Produces an output of params.bytes bytes in all: {"data": "xxx..."}. A command streams it to
 * stdout in blocks without holding it in memory; a reactor builds it in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "polyhost.h"

int polyhost_node(const ph_input *in, ph_output *out) {
    long long bytes = 0;
    if (!ph_param_int(in, "bytes", &bytes) || bytes < 0) {
        return ph_fail(out, "bad_params", "`bytes` must be a whole number");
    }
#ifdef POLYHOST_COMMAND
    static char block[65536];
    memset(block, 'x', sizeof block);
    long long left = bytes - (long long)strlen("{\"data\":\"\"}");
    fputs("{\"data\":\"", stdout);
    while (left > 0) {
        size_t n = left < (long long)sizeof block ? (size_t)left : sizeof block;
        if (fwrite(block, 1, n, stdout) != n) exit(3); /* the host closed its end */
        left -= (long long)n;
    }
    fputs("\"}", stdout);
    fflush(stdout);
    exit(0); /* the output is written; skip the SDK's own */
#else
    long long n = bytes - (long long)strlen("{\"ok\":{\"data\":\"\"}}");
    if (n < 0) n = 0;
    char *data = malloc((size_t)n + 1);
    if (data == NULL) return ph_fail(out, "out_of_memory", "cannot hold the output");
    memset(data, 'x', (size_t)n);
    ph_out_strn(out, "data", data, (size_t)n);
    return 0;
#endif
}
