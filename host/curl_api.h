/* curl_api.h - libcurl's functions, opened when the HTTP client starts.
 *
 * Why not linked: libcurl brings 32 libraries with it (TLS, Kerberos, LDAP, SSH, IDN, ...),
 * and the dynamic loader took 10 ms and 5 MB of resident memory at every start of the
 * program to map and relocate them, for a network most runs never use (base/dlapi.h). */
#ifndef ASSAY_CURL_API_H
#define ASSAY_CURL_API_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

typedef struct curl_api {
    CURLcode (*global_init)(long flags);
    CURL *(*easy_init)(void);
    void (*easy_cleanup)(CURL *easy);
    void (*easy_reset)(CURL *easy);
    CURLcode (*easy_setopt)(CURL *easy, CURLoption option, ...);
    CURLcode (*easy_getinfo)(CURL *easy, CURLINFO info, ...);
    const char *(*easy_strerror)(CURLcode code);
    time_t (*getdate)(const char *text, const time_t *unused);
    struct curl_slist *(*slist_append)(struct curl_slist *list, const char *text);
    void (*slist_free_all)(struct curl_slist *list);
    CURLM *(*multi_init)(void);
    CURLMcode (*multi_cleanup)(CURLM *multi);
    CURLMcode (*multi_setopt)(CURLM *multi, CURLMoption option, ...);
    CURLMcode (*multi_add_handle)(CURLM *multi, CURL *easy);
    CURLMcode (*multi_remove_handle)(CURLM *multi, CURL *easy);
    CURLMsg *(*multi_info_read)(CURLM *multi, int *left);
    CURLMcode (*multi_socket_action)(CURLM *multi, curl_socket_t fd, int mask, int *running);
    CURLMcode (*multi_assign)(CURLM *multi, curl_socket_t fd, void *data);
} curl_api;

/* Opens libcurl and runs curl_global_init, once for the process (thread-safe). Returns
 * the functions, or NULL with why in err (the same answer at every later call). */
const curl_api *curl_api_load(char *err, size_t errlen);
/* The first of the libraries named that opens, its functions into out; false with why
 * in err. curl_api_load's first step, apart for tests. */
bool curl_api_open(const char *const *sonames, size_t count, curl_api *out, char *err, size_t errlen);

#endif
