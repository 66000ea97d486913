/* Allocates params.step bytes (default 1 MiB) at a time until malloc fails, then frees it all
 * and reports {"allocated": bytes}. Only the memory limit stops it. */
#include <stdlib.h>

#include "polyhost.h"

struct block {
    struct block *next;
};

int polyhost_node(const ph_input *in, ph_output *out) {
    long long step = 1 << 20;
    ph_param_int(in, "step", &step);
    if (step < (long long)sizeof(struct block)) step = sizeof(struct block);
    struct block *blocks = NULL;
    long long allocated = 0;
    for (;;) {
        struct block *b = malloc((size_t)step);
        if (b == NULL) break;
        b->next = blocks; /* touching it makes the pages real, not just reserved */
        blocks = b;
        allocated += step;
    }
    while (blocks != NULL) {
        struct block *next = blocks->next;
        free(blocks);
        blocks = next;
    }
    ph_out_int(out, "allocated", allocated);
    return 0;
}
