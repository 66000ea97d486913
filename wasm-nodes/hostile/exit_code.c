/* Writes params.message to stderr and exits with params.code (default 1), before any output. */
#include <stdio.h>
#include <stdlib.h>

#include "polyhost.h"

int polyhost_node(const ph_input *in, ph_output *out) {
    (void)out;
    long long code = 1;
    ph_param_int(in, "code", &code);
    char *message = ph_param_str(in, "message", NULL);
    fprintf(stderr, "%s\n", message ? message : "failing on purpose");
    exit((int)code);
}
