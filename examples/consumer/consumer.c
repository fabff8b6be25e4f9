/* A program outside the libsae tree, built against an INSTALLED libsae either with
 *   cc consumer.c $(pkg-config --cflags --libs sae)
 * or with CMake's find_package(sae CONFIG) (CMakeLists.txt beside this file).
 * It checks that the library it runs with matches the header it was compiled with,
 * then drives the parameter registry and generates a few toy samples. */
#include <sae/sae.h>

#include <stdio.h>

static int check(int32_t status, const char *what, const char *detail)
{
    if (status != SAE_OK) {
        fprintf(stderr, "consumer: %s failed: %s (%s)\n", what, sae_status_str(status),
                detail != NULL ? detail : "");
        return 1;
    }
    return 0;
}

int main(void)
{
    /* Same major version, and at least the version compiled against (docs/abi.md). */
    if (sae_version_number() / 10000 != SAE_VERSION_MAJOR ||
        sae_version_number() < SAE_VERSION_NUMBER) {
        fprintf(stderr, "consumer: compiled against libsae %d, running %u\n",
                SAE_VERSION_NUMBER, (unsigned)sae_version_number());
        return 1;
    }
    printf("libsae %s (header %d.%d.%d)\n", sae_version_string(), SAE_VERSION_MAJOR,
           SAE_VERSION_MINOR, SAE_VERSION_PATCH);
    printf("%s\n", sae_build_info());

    sae_config *cfg = NULL;
    if (check(sae_config_create(&cfg, SAE_KIND_TOY, NULL), "sae_config_create", NULL))
        return 1;
    int rc = check(sae_config_set_by_name(cfg, "n_features", 8), "set n_features",
                   sae_config_errmsg(cfg)) ||
             check(sae_config_set_by_name(cfg, "d", 4), "set d", sae_config_errmsg(cfg));
    sae_toy *toy = NULL;
    if (rc == 0)
        rc = check(sae_toy_create(&toy, cfg, NULL), "sae_toy_create", sae_config_errmsg(cfg));
    float x[3 * 4];
    if (rc == 0)
        rc = check(sae_toy_sample(toy, 0, 3, x, 4), "sae_toy_sample", sae_toy_errmsg(toy));
    if (rc == 0) {
        double norm2 = 0.0;
        for (int i = 0; i < 3 * 4; i++)
            norm2 += (double)x[i] * x[i];
        printf("3 toy samples in 4 dims, squared norm %.6f\n", norm2);
        printf("consumer: ok\n");
    }
    sae_toy_free(toy);
    sae_config_free(cfg);
    return rc;
}
