/* Never returns: only fuel or the timeout stops it. */
#include "polyhost.h"

int polyhost_node(const ph_input *in, ph_output *out) {
    (void)in;
    (void)out;
    volatile unsigned long spins = 0; /* volatile: the loop must not be optimised away */
    for (;;) spins++;
}
