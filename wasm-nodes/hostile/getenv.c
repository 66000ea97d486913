/* Reads the environment variable params.name: {"value": string}, or {"value": null} if unset. */
#include <stdlib.h>

#include "polyhost.h"

int polyhost_node(const ph_input *in, ph_output *out) {
    char *name = ph_param_str(in, "name", NULL);
    if (name == NULL) return ph_fail(out, "bad_params", "`name` must be a string");
    ph_out_str(out, "value", getenv(name));
    return 0;
}
