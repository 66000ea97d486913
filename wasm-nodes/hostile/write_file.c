/* Writes params.text to params.path: {"written": bytes}, or {"error": {"code": "io", ...}}. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "polyhost.h"

int polyhost_node(const ph_input *in, ph_output *out) {
    size_t len;
    char *path = ph_param_str(in, "path", NULL);
    char *text = ph_param_str(in, "text", &len);
    if (path == NULL || text == NULL) {
        return ph_fail(out, "bad_params", "`path` and `text` must be strings");
    }
    FILE *file = fopen(path, "wb");
    if (file == NULL) return ph_fail(out, "io", strerror(errno));
    size_t written = fwrite(text, 1, len, file);
    int saved = errno;
    if (fclose(file) != 0 && written == len) {
        saved = errno;
        written = 0;
    }
    if (written != len) return ph_fail(out, "io", strerror(saved));
    ph_out_int(out, "written", (long long)written);
    return 0;
}
