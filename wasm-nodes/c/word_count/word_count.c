/* wasm.word_count: counts the words and lines of params.text (a reactor). */
#include <stdlib.h>

#include "polyhost.h"

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

int polyhost_node(const ph_input *in, ph_output *out) {
    size_t len;
    char *text = ph_param_str(in, "text", &len);
    if (text == NULL) return ph_fail(out, "bad_params", "`text` must be a string");

    long long words = 0, lines = 0;
    int in_word = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') lines++;
        if (is_space(text[i])) {
            in_word = 0;
        } else if (!in_word) {
            in_word = 1;
            words++;
        }
    }
    /* A last line without a newline still counts, as `wc -l` would not but a reader does. */
    if (len > 0 && text[len - 1] != '\n') lines++;

    ph_log(PH_DEBUG, "counted %lld words in %zu bytes", words, len);
    ph_out_int(out, "words", words);
    ph_out_int(out, "lines", lines);
    free(text);
    return 0;
}
