/* Allocation through the caller's hook or the C library, with overflow checks. */
#include "core.h"

#include <stdlib.h>
#include <string.h>

void sae_alloc_init(sae_alloc *dst, const sae_allocator *src)
{
    memset(dst, 0, sizeof *dst);
    if (src != NULL && src->alloc != NULL && src->free != NULL)
        dst->a = *src;
}

int sae_mul_size(size_t n, size_t size, size_t *out)
{
    if (size != 0 && n > SIZE_MAX / size)
        return 0;
    *out = n * size;
    return 1;
}

void *sae_malloc(const sae_alloc *al, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - SAE_ALIGN)
        return NULL;
    if (al != NULL && al->a.alloc != NULL)
        return al->a.alloc(al->a.user, size, SAE_ALIGN);
    /* aligned_alloc needs a multiple of the alignment */
    size_t rounded = (size + SAE_ALIGN - 1) / SAE_ALIGN * SAE_ALIGN;
    return aligned_alloc(SAE_ALIGN, rounded);
}

void *sae_calloc(const sae_alloc *al, size_t n, size_t size)
{
    size_t total;
    if (!sae_mul_size(n, size, &total))
        return NULL;
    void *p = sae_malloc(al, total);
    if (p != NULL)
        memset(p, 0, total == 0 ? 1 : total);
    return p;
}

void sae_free(const sae_alloc *al, void *p)
{
    if (p == NULL)
        return;
    if (al != NULL && al->a.alloc != NULL)
        al->a.free(al->a.user, p);
    else
        free(p);
}
