/* wasm.upper: params.text with ASCII letters upper-cased (a WASI command). */
#include <stdlib.h>

#include "polyhost.h"

int polyhost_node(const ph_input *in, ph_output *out) {
    size_t len;
    char *text = ph_param_str(in, "text", &len);
    if (text == NULL) return ph_fail(out, "bad_params", "`text` must be a string");
    /* Only ASCII changes, so multi-byte UTF-8 sequences pass through intact. */
    for (size_t i = 0; i < len; i++) {
        if (text[i] >= 'a' && text[i] <= 'z') text[i] = (char)(text[i] - 'a' + 'A');
    }
    ph_out_strn(out, "text", text, len);
    free(text);
    return 0;
}
