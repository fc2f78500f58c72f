/* sandbox_internal.h - what the sandbox's own files share; not seen by host/. */
#ifndef ASSAY_SANDBOX_INTERNAL_H
#define ASSAY_SANDBOX_INTERNAL_H

#include <lua.h>
#include <lauxlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <cjson/cJSON.h>

#include "../host/base/buf.h"
#include "pattern.h"
#include "sandbox.h"

/* Registers the array marker metatable in a new state. [-0, +0, m] */
void convert_init_state(lua_State *L);
/* Is the value at idx a table that came from a JSON array? [-0, +0, -] */
int convert_is_array(lua_State *L, int idx);
/* Is the metatable of the value at idx the array marker itself? [-0, +0, -] */
int convert_has_array_metatable(lua_State *L, int idx);

/* JSON null inside arrays, so that [1, null, 3] keeps its length in Lua. Object members
 * that are null are simply absent (nil). [-0, +1, -] */
void convert_push_null(lua_State *L);
int convert_is_null(lua_State *L, int idx);

/* The length of a string node's text: the worker's parser leaves it in valueint (jparse.h),
 * cJSON does not (0). */
static inline size_t json_string_len(const cJSON *item) {
    return item->valueint > 0 ? (size_t)item->valueint : strlen(item->valuestring);
}

/* Pushes a Lua value for a cJSON item, every nested table built now. [-0, +1, m] */
void convert_push_json(lua_State *L, const cJSON *item);
/* Pushes the metatable that marks tables from JSON arrays. [-0, +1, -] */
void convert_push_array_metatable(lua_State *L);

/* lazy.c: the trace as plugins see it, each table built when first touched. */
/* Pushes the trace's root table and returns a registry reference to its view, the
 * caller's until lazy_doc_end closes the trace's document once the cJSON tree is about to
 * go. *idle_view is the state's idle view (LUA_NOREF: none): lazy_push_trace takes it,
 * lazy_doc_end puts the view back there when the place is free, and never allocates.
 * [-0, +1, m] */
int lazy_push_trace(lua_State *L, const cJSON *root, int *idle_view);
void lazy_doc_end(lua_State *L, int view_ref, int *idle_view);
/* Fills the table at idx if it is a stand-in not yet built; raises if its trace is gone.
 * Host functions that walk a table raw call it first. [-0, +0, e] */
void lazy_fill(lua_State *L, int idx);
/* Whether the value at idx is a stand-in; if so, *is_array says whether it stands for a
 * JSON array, without building it. Raises if its trace is gone. [-0, +0, e] */
int lazy_is_array(lua_State *L, int idx, bool *is_array);
/* luaL_checktype(arg, table), then lazy_fill: for host functions that read a table argument
 * raw. [-0, +0, e] */
void lazy_check_table(lua_State *L, int arg);
/* Makes rawset on the table at idx raise message: for tables read-only through their
 * metatable. [-0, +0, m] */
void lazy_mark_readonly(lua_State *L, int idx, const char *message);
/* Sets next, pairs, rawget, rawset, rawlen and getmetatable in the table at globals to versions
 * that fill a stand-in first. [-0, +0, m] */
void lazy_install_base(lua_State *L, int globals);
/* A value of the trace as a plugin sees it, for host functions that read it without
 * building it (lazy.c): `node` is the parsed value behind it when the plugin cannot have
 * changed it, NULL otherwise; `idx` its stack slot when it is a Lua value, 0 when it is a
 * node only. Both 0/NULL: absent. Every function may push one value (the caller resets the
 * stack when done with it) and raises what reading it in Lua would. */
typedef struct lazy_value {
    const cJSON *node;
    int idx;
} lazy_value;
typedef struct lazy_iter {
    const cJSON *next;
    lua_Integer i;
    bool nodes;
} lazy_iter;
lazy_value lazy_value_at(lua_State *L, int idx);                           /* [-0, +0, e] */
lazy_value lazy_value_get(lua_State *L, lazy_value object, const char *key); /* object[key] [-0, +(0|1), e] */
/* The bytes of a string value, or NULL for anything else. [-0, +0, -] */
const char *lazy_value_string(lua_State *L, lazy_value v, size_t *n);
bool lazy_value_is_object(lua_State *L, lazy_value v); /* a table not from a JSON array [-0, +0, e] */
/* Starts a walk over an array as ipairs would; false when the value is no JSON array. */
bool lazy_value_first(lua_State *L, lazy_value array, lazy_iter *it);         /* [-0, +0, e] */
bool lazy_value_next(lua_State *L, lazy_value array, lazy_iter *it, lazy_value *entry); /* [-0, +(0|1), e] */
/* The same in a protected call: returns a lua_pcall status; on error the message is on
 * the stack instead of the value. [-0, +1, -] */
int convert_pcall_push_json(lua_State *L, const cJSON *item);

/* Appends the value at idx as JSON. Object keys are sorted so that output never depends on
 * the hash order of a state. Uses raw access only: a metamethod cannot run here. Returns 0,
 * or -1 with a message in err (nesting deeper than 64 levels, e.g. a cycle; output longer
 * than the state's memory limit, e.g. a table shared along many paths). Raises when the time
 * limit passes. [-0, +0, e] */
int convert_lua_to_json(lua_State *L, int idx, buf *b, char *err, size_t errlen);

/* The host modules, each pushing its table. [-0, +1, m] */
int convert_open_json(lua_State *L);
/* assay.trace (trace.c): the walks over a trace that docs/metrics.md defines. */
int trace_open(lua_State *L);
/* Pushes the URL key of url (text.url_key, docs/metrics.md). [-0, +1, m] */
void text_push_url_key(lua_State *L, const char *url, size_t n);
/* Pushes s with every citation marker "[k]" removed (text.strip_markers). [-0, +1, m] */
void text_push_stripped(lua_State *L, const char *s, size_t n);
/* text_open's regex_find calls limits->check during long searches. */
int text_open(lua_State *L, const pattern_limits *limits);

/* TF-IDF (docs/metrics.md) over counted documents, for text.tfidf_cosines and a Set's
 * documents (tset.c): per term its document frequency and its count in document 1, and per
 * document its distinct terms with their counts, in the order they first appear in it. */
typedef struct tfidf_term {
    uint32_t df, count0;
    uint32_t last_doc, count; /* the document that counted it last (+ 1), and its count there */
} tfidf_term;
typedef struct tfidf_entry {
    uint32_t term, count;
} tfidf_entry;
/* Counts one occurrence of term t in document d (0-based); the first in d appends an entry
 * (the caller has room for it). */
static inline void tfidf_count(tfidf_term *terms, uint32_t t, uint32_t d, tfidf_entry *entries, uint32_t *nentries) {
    tfidf_term *c = &terms[t];
    if (c->last_doc != d + 1) {
        c->last_doc = d + 1;
        c->df++;
        c->count = 0;
        entries[(*nentries)++] = (tfidf_entry){t, 0};
    }
    c->count++;
    if (d == 0) c->count0 = c->count;
}
/* Once document d is counted: copies its terms' counts into its entries [from, to). */
void tfidf_end_doc(tfidf_entry *entries, uint32_t from, uint32_t to, const tfidf_term *terms);
/* Pushes {cos(d1, d2), ..., cos(d1, dN)}; document d's entries are [doc_start[d],
 * doc_start[d + 1]). [-0, +1, m] */
void tfidf_push_cosines(lua_State *L, uint32_t ndoc, const uint32_t *doc_start, const tfidf_entry *entries,
                        const tfidf_term *terms);

/* assay.text.Set (tset.c): token sets kept in C, for text.c's set functions. Each raises a
 * Lua error on a wrong argument or when memory runs out. */
typedef struct tset tset;
/* Registers the metatable; `shared` are text.c's functions that are Set methods too
 * (S:jaccard(other) is text.jaccard(S, other)). [-0, +0, m] */
void tset_open(lua_State *L, const luaL_Reg *shared);
int tset_new(lua_State *L);                   /* text.Set() [-0, +1, m] */
bool tset_is(lua_State *L, int idx);
/* Adds set(T(s)), or set(C(s)) when content_only, to the Set at idx. */
void tset_add_text(lua_State *L, int idx, const char *s, size_t n, bool content_only);
/* Adds the URL key of url (docs/metrics.md) to the Set at idx as one member, made in the
 * Set's own memory: no Lua string. */
void tset_add_url_key(lua_State *L, int idx, const char *url, size_t n);
/* The entry number (0 for the first member added) of url's URL key in the Set at idx, or
 * -1 when it is not a member; with add, it is added first. */
lua_Integer tset_url_key_entry(lua_State *L, int idx, const char *url, size_t n, bool add);
size_t tset_member_len(const tset *S, lua_Integer e); /* the bytes of member number e */
/* Adds parts[0] .. parts[nparts - 1], joined by spaces, as the next document of the Set at
 * idx (S:add_document). */
void tset_add_document(lua_State *L, int idx, const char *const *parts, const size_t *lens, int nparts);
/* The Set at idx, or NULL when the value is something else. */
const tset *tset_test(lua_State *L, int idx);
lua_Integer tset_count(const tset *S);
/* |A ∩ B|, or with B NULL |A ∩ the keys of the table set at t| (raises if t is no table). */
lua_Integer tset_intersection_size(lua_State *L, const tset *A, const tset *B, int t);
/* Adds the members of a Set or the keys of a table set at src to the Set at dst. */
void tset_add_all(lua_State *L, int dst, int src);
/* Sets table[member] = true for each member of the Set at src. */
void tset_into_table(lua_State *L, int table, int src);

/* The limits of the state running L (sandbox.c), for host functions with long C loops:
 * sandbox_check_limits raises when the time or memory limit has been passed. */
void sandbox_check_limits(lua_State *L);
size_t sandbox_memory_limit(lua_State *L);
/* Counts bytes a host function holds outside Lua (a parsed tree, say) against the state's
 * memory limit while it holds them. When they do not fit it returns false, counts nothing
 * and marks the limit as hit, so that the evaluation ends as a memory kill (the caller
 * raises). Every charge is undone with sandbox_uncharge before the function returns. */
bool sandbox_charge(lua_State *L, size_t bytes);
void sandbox_uncharge(lua_State *L, size_t bytes);

/* I/O from Lua (sandbox.c, used by net.c). A host function first forgets requests left by
 * an earlier call that raised, begins one request per call it makes (raising when I/O is not
 * possible here: no client, not inside evaluate's own coroutine), then returns
 * sandbox_io_wait, which suspends the evaluation and later returns its answer: the
 * response value (a list of them for a batch) or an http error raised in the plugin. */
void sandbox_io_forget(lua_State *L);
sandbox_io *sandbox_io_begin(lua_State *L, sandbox_io_kind kind, const char *what);
int sandbox_io_wait(lua_State *L, bool is_batch);
/* Raises unless an LLM endpoint is configured. */
void sandbox_io_check_llm(lua_State *L, const char *what);
/* The configured default model for assay.llm, or NULL. */
const char *sandbox_io_default_model(lua_State *L);
/* The named LLM endpoint called name (len bytes): its number (1-based), 0 when none is. */
unsigned sandbox_io_endpoint(lua_State *L, const char *name, size_t len);

/* net.c: the assay.http and assay.llm modules. net_push_response turns a finished request
 * into the value the plugin sees, or returns false with the http error message. */
int net_open_http(lua_State *L);
int net_open_llm(lua_State *L);
bool net_push_response(lua_State *L, const sandbox_io *io, char *err, size_t errlen);

#endif
