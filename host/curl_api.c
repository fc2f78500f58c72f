/* curl_api.c - libcurl opened at the HTTP client's start (curl_api.h, base/dlapi.h say why).
 *
 * Debian's libcurl4 package names the library libcurl.so.4 (OpenSSL); the GnuTLS and NSS
 * builds, which a machine may have instead, are tried after it. */
#include "curl_api.h"
#include "base/dlapi.h"

#include <stdio.h>
#include <uv.h>

static const char *const curl_api_sonames[] = {"libcurl.so.4", "libcurl-gnutls.so.4", "libcurl-nss.so.4"};

static curl_api api;
static const curl_api *loaded; /* &api once everything is in it */
static char load_error[512];
static uv_once_t load_once = UV_ONCE_INIT;

bool curl_api_open(const char *const *sonames, size_t count, curl_api *out, char *err, size_t errlen) {
    const dlapi_symbol symbols[] = {
        DLAPI_SYMBOL("curl_global_init", out->global_init),
        DLAPI_SYMBOL("curl_easy_init", out->easy_init),
        DLAPI_SYMBOL("curl_easy_cleanup", out->easy_cleanup),
        DLAPI_SYMBOL("curl_easy_reset", out->easy_reset),
        DLAPI_SYMBOL("curl_easy_setopt", out->easy_setopt),
        DLAPI_SYMBOL("curl_easy_getinfo", out->easy_getinfo),
        DLAPI_SYMBOL("curl_easy_strerror", out->easy_strerror),
        DLAPI_SYMBOL("curl_getdate", out->getdate),
        DLAPI_SYMBOL("curl_slist_append", out->slist_append),
        DLAPI_SYMBOL("curl_slist_free_all", out->slist_free_all),
        DLAPI_SYMBOL("curl_multi_init", out->multi_init),
        DLAPI_SYMBOL("curl_multi_cleanup", out->multi_cleanup),
        DLAPI_SYMBOL("curl_multi_setopt", out->multi_setopt),
        DLAPI_SYMBOL("curl_multi_add_handle", out->multi_add_handle),
        DLAPI_SYMBOL("curl_multi_remove_handle", out->multi_remove_handle),
        DLAPI_SYMBOL("curl_multi_info_read", out->multi_info_read),
        DLAPI_SYMBOL("curl_multi_socket_action", out->multi_socket_action),
        DLAPI_SYMBOL("curl_multi_assign", out->multi_assign),
    };
    return dlapi_open("libcurl", "libcurl4", sonames, count, symbols, sizeof symbols / sizeof *symbols, err, errlen);
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
