/* options.c - assay_options: what a host is created from. Plain data; validated as far as
 * can be without loading plugins (that happens in assay_host_new). */
#include "host_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

assay_options *assay_options_new(void) {
    assay_options *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->timeout_ms = ASSAY_DEFAULT_TIMEOUT_MS;
    o->memory_mb = ASSAY_DEFAULT_MEMORY_MB;
    o->is_ordered = true;
    o->record_timing = true;
    o->max_inflight = ASSAY_DEFAULT_MAX_INFLIGHT;
    o->http_timeout_ms = ASSAY_DEFAULT_HTTP_TIMEOUT_MS;
    o->max_attempts = ASSAY_DEFAULT_HTTP_ATTEMPTS;
    o->backoff_base_ms = ASSAY_DEFAULT_RETRY_BASE_MS;
    o->sample_rate = 1;
    o->shard_count = 1;
    return o;
}

static void free_strings(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

void assay_options_free(assay_options *o) {
    if (!o) return;
    free_strings(o->plugin_paths, o->plugin_path_count);
    free_strings(o->lib_dirs, o->lib_dir_count);
    for (size_t i = 0; i < o->param_count; i++) {
        free(o->params[i].plugin);
        free(o->params[i].key);
        free(o->params[i].value);
    }
    free(o->params);
    free(o->group_by);
    free(o->llm_url);
    free(o->llm_model);
    if (o->api_key) memset(o->api_key, 0, strlen(o->api_key));
    free(o->api_key);
    for (size_t i = 0; i < o->endpoint_count; i++) {
        free(o->endpoint_names[i]);
        free(o->endpoint_urls[i]);
        if (o->endpoint_keys[i]) memset(o->endpoint_keys[i], 0, strlen(o->endpoint_keys[i]));
        free(o->endpoint_keys[i]);
    }
    free(o->cache_path);
    free(o);
}

static int push_string(char ***v, size_t *n, const char *s) {
    char *copy = strdup(s);
    char **grown = copy ? realloc(*v, (*n + 1) * sizeof **v) : NULL;
    if (!grown) {
        free(copy);
        return ASSAY_ENOMEM;
    }
    grown[(*n)++] = copy;
    *v = grown;
    return ASSAY_OK;
}

int assay_options_set_workers(assay_options *o, unsigned workers) {
    if (!o || workers > 1024) return ASSAY_EINVAL;
    o->workers = workers;
    return ASSAY_OK;
}

int assay_options_add_plugin_path(assay_options *o, const char *path) {
    if (!o || !path || !*path) return ASSAY_EINVAL;
    return push_string(&o->plugin_paths, &o->plugin_path_count, path);
}

int assay_options_add_lib_dir(assay_options *o, const char *dir) {
    if (!o || !dir || !*dir) return ASSAY_EINVAL;
    return push_string(&o->lib_dirs, &o->lib_dir_count, dir);
}

int assay_options_set_param(assay_options *o, const char *assignment) {
    if (!o || !assignment) return ASSAY_EINVAL;
    const char *dot = strchr(assignment, '.');
    const char *eq = strchr(assignment, '=');
    if (!dot || !eq || dot > eq || dot == assignment || eq == dot + 1) return ASSAY_EINVAL;
    param_assignment p = {
        strndup(assignment, (size_t)(dot - assignment)),
        strndup(dot + 1, (size_t)(eq - dot - 1)),
        strdup(eq + 1),
    };
    param_assignment *grown = p.plugin && p.key && p.value ? realloc(o->params, (o->param_count + 1) * sizeof *grown)
                                                          : NULL;
    if (!grown) {
        free(p.plugin), free(p.key), free(p.value);
        return ASSAY_ENOMEM;
    }
    /* a later assignment of the same NAME.KEY wins, as on any command line */
    for (size_t i = 0; i < o->param_count; i++) {
        if (strcmp(grown[i].plugin, p.plugin) == 0 && strcmp(grown[i].key, p.key) == 0) {
            free(grown[i].value);
            grown[i].value = p.value;
            free(p.plugin), free(p.key);
            o->params = grown;
            return ASSAY_OK;
        }
    }
    grown[o->param_count++] = p;
    o->params = grown;
    return ASSAY_OK;
}

int assay_options_set_timeout_ms(assay_options *o, unsigned timeout_ms) {
    if (!o) return ASSAY_EINVAL;
    o->timeout_ms = timeout_ms;
    return ASSAY_OK;
}

int assay_options_set_memory_mb(assay_options *o, unsigned memory_mb) {
    if (!o || memory_mb > (1u << 20)) return ASSAY_EINVAL;
    o->memory_mb = memory_mb;
    return ASSAY_OK;
}

int assay_options_set_group_by(assay_options *o, const char *field) {
    if (!o) return ASSAY_EINVAL;
    if (field && strncmp(field, "metadata.", 9) == 0) field += 9;
    if (field && !*field) return ASSAY_EINVAL;
    char *copy = field ? strdup(field) : NULL;
    if (field && !copy) return ASSAY_ENOMEM;
    free(o->group_by);
    o->group_by = copy;
    return ASSAY_OK;
}

int assay_options_set_ordered(assay_options *o, int ordered) {
    if (!o) return ASSAY_EINVAL;
    o->is_ordered = ordered != 0;
    return ASSAY_OK;
}

int assay_options_set_sample(assay_options *o, double rate, uint64_t seed) {
    if (!o || !(rate > 0 && rate <= 1)) return ASSAY_EINVAL;
    o->sample_rate = rate;
    o->sample_seed = seed;
    return ASSAY_OK;
}

int assay_options_set_shard(assay_options *o, unsigned index, unsigned count) {
    if (!o || count < 1 || count > ASSAY_MAX_SHARDS || index >= count) return ASSAY_EINVAL;
    o->shard_index = index;
    o->shard_count = count;
    return ASSAY_OK;
}

int assay_options_set_mappers(assay_options *o, int is_mapper) {
    if (!o) return ASSAY_EINVAL;
    o->is_mapper = is_mapper != 0;
    return ASSAY_OK;
}

int assay_options_set_record_timing(assay_options *o, int record_timing) {
    if (!o) return ASSAY_EINVAL;
    o->record_timing = record_timing != 0;
    return ASSAY_OK;
}

int assay_options_set_log(assay_options *o, assay_log_cb log, void *ctx) {
    if (!o) return ASSAY_EINVAL;
    o->log = log;
    o->log_ctx = ctx;
    return ASSAY_OK;
}

int assay_options_set_responder(assay_options *o, assay_responder_cb responder, void *ctx) {
    if (!o) return ASSAY_EINVAL;
    o->responder = responder;
    o->responder_ctx = ctx;
    return ASSAY_OK;
}

/* Replaces *slot with a copy of s (NULL or "" clears it). */
static int set_string(char **slot, const char *s) {
    char *copy = s && *s ? strdup(s) : NULL;
    if (s && *s && !copy) return ASSAY_ENOMEM;
    if (*slot) memset(*slot, 0, strlen(*slot)); /* one of them is a secret */
    free(*slot);
    *slot = copy;
    return ASSAY_OK;
}

int assay_options_set_llm(assay_options *o, const char *base_url, const char *model, const char *api_key) {
    if (!o) return ASSAY_EINVAL;
    if (base_url && *base_url && strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0)
        return ASSAY_EINVAL;
    int status = set_string(&o->llm_url, base_url);
    if (status == ASSAY_OK) status = set_string(&o->llm_model, model);
    if (status == ASSAY_OK) status = set_string(&o->api_key, api_key);
    if (o->llm_url) { /* "…/v1/" and "…/v1" name the same API */
        size_t n = strlen(o->llm_url);
        while (n > 0 && o->llm_url[n - 1] == '/') o->llm_url[--n] = '\0';
    }
    return status;
}

static bool is_endpoint_name(const char *name) {
    size_t n = strlen(name);
    if (n == 0 || n > 32) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '_' && name[i] != '-') return false;
    return true;
}

int assay_options_add_llm_endpoint(assay_options *o, const char *name, const char *base_url, const char *api_key) {
    if (!o || !name || !base_url || !is_endpoint_name(name) || o->endpoint_count == ASSAY_MAX_LLM_ENDPOINTS ||
        (strncmp(base_url, "http://", 7) != 0 && strncmp(base_url, "https://", 8) != 0))
        return ASSAY_EINVAL;
    for (size_t i = 0; i < o->endpoint_count; i++)
        if (strcmp(o->endpoint_names[i], name) == 0) return ASSAY_EINVAL;
    size_t i = o->endpoint_count;
    o->endpoint_names[i] = strdup(name);
    o->endpoint_urls[i] = strdup(base_url);
    o->endpoint_keys[i] = api_key && *api_key ? strdup(api_key) : NULL;
    o->endpoint_count++; /* counted now: assay_options_free frees whatever was copied */
    if (!o->endpoint_names[i] || !o->endpoint_urls[i] || (api_key && *api_key && !o->endpoint_keys[i]))
        return ASSAY_ENOMEM;
    size_t n = strlen(o->endpoint_urls[i]);
    while (n > 0 && o->endpoint_urls[i][n - 1] == '/') o->endpoint_urls[i][--n] = '\0';
    return ASSAY_OK;
}

int assay_options_set_llm_price(assay_options *o, double per_million_in, double per_million_out) {
    if (!o || !(per_million_in >= 0 && per_million_in < 1e9) || !(per_million_out >= 0 && per_million_out < 1e9))
        return ASSAY_EINVAL;
    o->price_in = per_million_in;
    o->price_out = per_million_out;
    return ASSAY_OK;
}

int assay_options_set_http_limits(assay_options *o, unsigned max_inflight, double rps, long tokens_per_minute,
                                  long max_tokens_total) {
    if (!o || max_inflight > 65536 || !(rps >= 0) || tokens_per_minute < 0 || max_tokens_total < 0)
        return ASSAY_EINVAL;
    o->max_inflight = max_inflight ? max_inflight : ASSAY_DEFAULT_MAX_INFLIGHT;
    o->rps = rps;
    o->tpm = tokens_per_minute;
    o->max_tokens_total = max_tokens_total;
    return ASSAY_OK;
}

int assay_options_set_http_retry(assay_options *o, unsigned timeout_ms, unsigned max_attempts,
                                 unsigned backoff_base_ms) {
    if (!o || max_attempts > 100 || backoff_base_ms > 600000) return ASSAY_EINVAL;
    o->http_timeout_ms = timeout_ms ? timeout_ms : ASSAY_DEFAULT_HTTP_TIMEOUT_MS;
    o->max_attempts = max_attempts ? max_attempts : ASSAY_DEFAULT_HTTP_ATTEMPTS;
    o->backoff_base_ms = backoff_base_ms;
    return ASSAY_OK;
}

int assay_options_set_cache(assay_options *o, const char *path) {
    if (!o) return ASSAY_EINVAL;
    return set_string(&o->cache_path, path);
}

static int clone_string(char **dst, const char *src) {
    return !src || (*dst = strdup(src)) ? ASSAY_OK : ASSAY_ENOMEM;
}

/* A deep copy: the host keeps one, so that the caller may free its options right after
 * assay_host_new and a reload sees the same paths and params. */
assay_options *options_clone(const assay_options *o) {
    assay_options *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    *c = *o;
    c->plugin_paths = NULL, c->plugin_path_count = 0;
    c->lib_dirs = NULL, c->lib_dir_count = 0;
    c->params = NULL, c->param_count = 0;
    c->group_by = c->llm_url = c->llm_model = c->api_key = c->cache_path = NULL;
    c->endpoint_count = 0;
    int status = ASSAY_OK;
    for (size_t i = 0; i < o->plugin_path_count && !status; i++)
        status = push_string(&c->plugin_paths, &c->plugin_path_count, o->plugin_paths[i]);
    for (size_t i = 0; i < o->lib_dir_count && !status; i++)
        status = push_string(&c->lib_dirs, &c->lib_dir_count, o->lib_dirs[i]);
    if (!status && o->param_count && !(c->params = calloc(o->param_count, sizeof *c->params))) status = ASSAY_ENOMEM;
    for (size_t i = 0; i < o->param_count && !status; i++) {
        c->param_count++;
        status = clone_string(&c->params[i].plugin, o->params[i].plugin);
        if (!status) status = clone_string(&c->params[i].key, o->params[i].key);
        if (!status) status = clone_string(&c->params[i].value, o->params[i].value);
    }
    if (!status) status = clone_string(&c->group_by, o->group_by);
    if (!status) status = clone_string(&c->llm_url, o->llm_url);
    if (!status) status = clone_string(&c->llm_model, o->llm_model);
    if (!status) status = clone_string(&c->api_key, o->api_key);
    if (!status) status = clone_string(&c->cache_path, o->cache_path);
    for (size_t i = 0; i < o->endpoint_count && !status; i++)
        status = assay_options_add_llm_endpoint(c, o->endpoint_names[i], o->endpoint_urls[i], o->endpoint_keys[i]);
    if (status) {
        assay_options_free(c);
        return NULL;
    }
    return c;
}
