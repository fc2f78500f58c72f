/* curl_api.c - libcurl opened with dlopen at the HTTP client's start (curl_api.h says why).
 *
 * Debian's libcurl4 package names the library libcurl.so.4 (OpenSSL); the GnuTLS and NSS
 * builds, which a machine may have instead, are tried after it. The library stays open
 * for the life of the process, as a linked one would. */
#include "curl_api.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

static const char *const curl_api_sonames[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl-nss.so.4"};

static curl_api api;
static const curl_api *loaded; /* &api once everything is in it */
static char load_error[512];
static uv_once_t load_once = UV_ONCE_INIT;

/* dlsym returns a data pointer; POSIX guarantees it converts to a function pointer, and
 * memcpy says so without a cast C forbids. */
static bool find(void *lib, const char *soname, const char *name, void *fn, size_t size, char *err, size_t errlen) {
    void *p = dlsym(lib, name);
    if (!p) {
        snprintf(err, errlen, "%s has no %s (not libcurl, or too old a one)", soname, name);
        return false;
    }
    memcpy(fn, &p, size);
    return true;
}

#define FIND(field, name) find(lib, sonames[opened], name, &out->field, sizeof out->field, err, errlen)

bool curl_api_open(const char *const *sonames, size_t count, curl_api *out, char *err, size_t errlen) {
    void *lib = NULL;
    const char *why = NULL;
    size_t opened = 0;
    for (; opened < count; opened++) {
        if ((lib = dlopen(sonames[opened], RTLD_NOW | RTLD_LOCAL))) break;
        if (!why) why = dlerror();
    }
    if (!lib) {
        snprintf(err, errlen, "libcurl could not be loaded (%s; on Debian: apt-get install libcurl4)",
                 why ? why : "no name to open");
        return false;
    }
    /* on failure the library stays open: closing it is not worth a second path */
    return FIND(global_init, "curl_global_init") && FIND(easy_init, "curl_easy_init") &&
           FIND(easy_cleanup, "curl_easy_cleanup") && FIND(easy_reset, "curl_easy_reset") &&
           FIND(easy_setopt, "curl_easy_setopt") && FIND(easy_getinfo, "curl_easy_getinfo") &&
           FIND(easy_strerror, "curl_easy_strerror") && FIND(getdate, "curl_getdate") &&
           FIND(slist_append, "curl_slist_append") && FIND(slist_free_all, "curl_slist_free_all") &&
           FIND(multi_init, "curl_multi_init") && FIND(multi_cleanup, "curl_multi_cleanup") &&
           FIND(multi_setopt, "curl_multi_setopt") && FIND(multi_add_handle, "curl_multi_add_handle") &&
           FIND(multi_remove_handle, "curl_multi_remove_handle") && FIND(multi_info_read, "curl_multi_info_read") &&
           FIND(multi_socket_action, "curl_multi_socket_action") && FIND(multi_assign, "curl_multi_assign");
}

static void load(void) {
    if (!curl_api_open(curl_api_sonames, sizeof curl_api_sonames / sizeof *curl_api_sonames, &api, load_error,
                       sizeof load_error))
        return;
    CURLcode rc = api.global_init(CURL_GLOBAL_DEFAULT);
    if (rc != CURLE_OK) {
        snprintf(load_error, sizeof load_error, "libcurl could not be initialised (%s)", api.easy_strerror(rc));
        return;
    }
    loaded = &api;
}

const curl_api *curl_api_load(char *err, size_t errlen) {
    uv_once(&load_once, load);
    if (!loaded) snprintf(err, errlen, "%s", load_error);
    return loaded;
}
