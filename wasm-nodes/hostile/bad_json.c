/* Answers with text that is not JSON, in either shape. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static const char answer[] = "this is not JSON {";

#ifdef POLYHOST_REACTOR
__attribute__((export_name("polyhost_alloc"))) int32_t polyhost_alloc(int32_t size) {
    return (int32_t)(uintptr_t)malloc(size > 0 ? (size_t)size : 1);
}

__attribute__((export_name("polyhost_run"))) int64_t polyhost_run(int32_t ptr, int32_t len) {
    (void)ptr;
    (void)len;
    return (int64_t)((uint64_t)(uintptr_t)answer << 32 | (sizeof answer - 1));
}
#else
int main(void) {
    fputs(answer, stdout);
    return 0;
}
#endif
