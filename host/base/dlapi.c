/* dlapi.c - opening a library by its soname and looking up its functions (dlapi.h). */
#include "dlapi.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

bool dlapi_open(const char *what, const char *package, const char *const *sonames, size_t nsonames,
                const dlapi_symbol *symbols, size_t nsymbols, char *err, size_t errlen) {
    void *lib = NULL;
    const char *why = NULL;
    size_t opened = 0;
    for (; opened < nsonames; opened++) {
        if ((lib = dlopen(sonames[opened], RTLD_NOW | RTLD_LOCAL))) break;
        if (!why) why = dlerror(); /* the first name's reason: the usual one is missing */
    }
    if (!lib) {
        snprintf(err, errlen, "%s could not be loaded (%s; on Debian: apt-get install %s)", what,
                 why ? why : "no name to open", package);
        return false;
    }
    for (size_t i = 0; i < nsymbols; i++) {
        void *p = dlsym(lib, symbols[i].name);
        if (!p) { /* the library stays open: closing it is not worth a second path */
            snprintf(err, errlen, "%s has no %s (not %s, or too old a one)", sonames[opened], symbols[i].name, what);
            return false;
        }
        /* dlsym answers with a data pointer, which POSIX lets a function pointer hold;
         * memcpy says so without the cast C forbids */
        memcpy(symbols[i].fn, &p, symbols[i].size);
    }
    return true;
}
