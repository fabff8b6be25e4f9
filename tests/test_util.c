#include "test_util.h"

#include <stdlib.h>
#include <string.h>

static void *t_alloc(void *user, size_t size, size_t align)
{
    test_alloc *s = user;
    s->calls++;
    if (s->fail_at > 0 && s->calls == s->fail_at)
        return NULL;
    size_t rounded = (size + align - 1) / align * align;
    void *p = aligned_alloc(align, rounded);
    if (p != NULL)
        s->live++;
    return p;
}

static void t_free(void *user, void *p)
{
    test_alloc *s = user;
    if (p != NULL)
        s->live--;
    free(p);
}

sae_allocator test_alloc_hook(test_alloc *state)
{
    sae_allocator a = {t_alloc, t_free, state};
    return a;
}

sae_config *test_config(int32_t kind, ...)
{
    sae_config *c = NULL;
    assert_ok(sae_config_create(&c, kind, NULL));
    va_list ap;
    va_start(ap, kind);
    const char *name;
    while ((name = va_arg(ap, const char *)) != NULL) {
        double v = va_arg(ap, double);
        int32_t st = sae_config_set_by_name(c, name, v);
        if (st != SAE_OK)
            fail_msg("setting %s = %g: %s", name, v, sae_config_errmsg(c));
    }
    va_end(ap);
    return c;
}

int test_small_scale(void)
{
    const char *v = getenv("SAE_TEST_SCALE");
    return v != NULL && strcmp(v, "small") == 0;
}
