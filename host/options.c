/* options.c - assay_options: what a host is created from. Plain data; validated as far as
 * can be without loading plugins (that happens in assay_host_new). */
#include "host_internal.h"

#include <stdlib.h>
#include <string.h>

assay_options *assay_options_new(void) {
    assay_options *o = calloc(1, sizeof *o);
    if (!o) return NULL;
    o->timeout_ms = 2000;
    o->memory_mb = 64;
    o->is_ordered = true;
    o->record_timing = true;
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
