/* Reads params.path with fopen: {"content": text}, or the guest's own {"error"} report with
 * code "io" and strerror's message when the sandbox refuses (the call still succeeds). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "polyhost.h"

int polyhost_node(const ph_input *in, ph_output *out) {
    char *path = ph_param_str(in, "path", NULL);
    if (path == NULL) return ph_fail(out, "bad_params", "`path` must be a string");
    FILE *file = fopen(path, "rb");
    if (file == NULL) return ph_fail(out, "io", strerror(errno));
    ph_buf text = {0};
    char block[4096];
    size_t n;
    while ((n = fread(block, 1, sizeof block, file)) > 0) ph_buf_put(&text, block, n);
    int failed = ferror(file);
    int saved = errno;
    fclose(file);
    if (failed) return ph_fail(out, "io", strerror(saved));
    ph_out_strn(out, "content", text.data ? text.data : "", text.len);
    return 0;
}
