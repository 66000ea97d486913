/* A reactor that returns an output span outside its memory. (Reactor only.) */
#include <stdint.h>
#include <stdlib.h>

__attribute__((export_name("polyhost_alloc"))) int32_t polyhost_alloc(int32_t size) {
    return (int32_t)(uintptr_t)malloc(size > 0 ? (size_t)size : 1);
}

__attribute__((export_name("polyhost_run"))) int64_t polyhost_run(int32_t ptr, int32_t len) {
    (void)ptr;
    (void)len;
    return (int64_t)((uint64_t)0xFFFFFF00u << 32 | 0x1000u);
}
