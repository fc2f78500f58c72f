/* dlapi.h - a library's functions, opened at their first use rather than linked.
 *
 * For the libraries most runs never call (libcurl: the network; libzip: inspect_ai's
 * zips): linked, each start of the program paid the dynamic loader to map and relocate
 * them and the dozens they bring (10 ms and 5 MB of resident memory for libcurl's). The
 * headers still come from pkg-config; the library is Debian's, opened by its soname. */
#ifndef ASSAY_DLAPI_H
#define ASSAY_DLAPI_H

#include <stdbool.h>
#include <stddef.h>

/* One function to look up: its name, and the function-pointer variable (of its own type)
 * that receives it. */
typedef struct dlapi_symbol {
    const char *name;
    void *fn;    /* the address of the variable */
    size_t size; /* sizeof that variable */
} dlapi_symbol;

#define DLAPI_SYMBOL(name, var) {name, &(var), sizeof(var)}

/* Opens the first of the sonames that opens and fills every symbol's variable. Returns
 * false with why in err, naming `what` (e.g. "libcurl") and `package` (what to install).
 * The library stays open for the life of the process, as a linked one would. */
bool dlapi_open(const char *what, const char *package, const char *const *sonames, size_t nsonames,
                const dlapi_symbol *symbols, size_t nsymbols, char *err, size_t errlen);

#endif
