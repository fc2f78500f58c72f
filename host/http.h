/* http.h - the host's HTTP client: one thread running libcurl's multi interface on its own
 * libuv loop, shared by all workers.
 *
 * Workers hand it the requests of suspended evaluations (sandbox_io) from any thread; it
 * answers each through the done callback, on its own thread, exactly once. Between the two
 * it owns the request: the LLM base URL and API key, the on-disk cache and the coalescing
 * of identical requests, retries with backoff, the in-flight cap with adaptive concurrency,
 * the request and token rate limits and the spend cap.
 */
#ifndef ASSAY_HTTP_H
#define ASSAY_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include "assay.h"
#include "../sandbox/sandbox.h"

typedef struct http_client http_client;

typedef struct http_config {
    const char *llm_url;         /* base URL of an OpenAI-compatible API; NULL: no LLM */
    const char *api_key;         /* sent as a bearer token to llm_url only; may be NULL */
    /* named endpoints: a request for endpoint i (1-based) goes to endpoint_urls[i - 1] with
     * endpoint_keys[i - 1] (NULL: none) */
    const char *const *endpoint_urls, *const *endpoint_keys;
    size_t endpoint_count;
    unsigned max_inflight;       /* cap on concurrent requests (default 64) */
    unsigned timeout_ms;         /* per attempt, when the request names none (0: ASSAY_DEFAULT_HTTP_TIMEOUT_MS) */
    unsigned max_attempts;       /* per request, first try included (default 5) */
    double rps;                  /* requests started per second; 0 = no cap */
    long tpm;                    /* LLM tokens per minute; 0 = no cap */
    long max_tokens_total;       /* stop issuing LLM calls once this many were used; 0 = none */
    const char *cache_path;      /* SQLite cache file; NULL = no cache */
    unsigned backoff_base_ms;    /* first retry delay (default 250); tests shorten it */
} http_config;

/* The figures libassay reports (assay_io_stats in assay.h). */
typedef assay_io_stats http_stats;

/* Opens the cache (the thread starts with the first request); NULL and a message in err
 * on failure. */
http_client *http_client_new(const http_config *cfg, char *err, size_t errlen);
/* Performs io and calls done(ctx, io) on the client's thread when it is answered. */
void http_submit(http_client *c, sandbox_io *io, void (*done)(void *ctx, sandbox_io *io), void *ctx);
/* Waits for every request to be answered, stops the thread and frees the client. */
void http_client_free(http_client *c);
void http_client_stats(http_client *c, http_stats *out);

#endif
