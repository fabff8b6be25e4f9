list(APPEND SAE_SOURCES core/alloc.c core/error.c core/version.c core/config.c)
