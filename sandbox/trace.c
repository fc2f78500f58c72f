/* trace.c - the `assay.trace` module: the walks over a trace that docs/metrics.md defines and
 * several shipped evaluators share (source texts by URL key, the texts and URL keys of a
 * search step's results, the (claim, citation) pairs of a report, the queries), done in C.
 * plugins/lib/trace.lua hands them out under the same names.
 *
 * Why: in Lua each of these walks read three members of every search result through the
 * trace view, each read a metamethod call that makes a Lua string (a snippet is copied
 * whole), plus a Lua call or two per result: about 8,000 instructions per result, the
 * largest cost left in `citation_support` and `relevance`. Here the strings are read from
 * the view without building it (lazy.c, lazy_value_*) and only the texts a walk returns
 * become Lua strings. The rules stay those of docs/metrics.md, and what a plugin changed in
 * its view is what these read (tests/plugins/trace_walks.lua checks both against Lua).
 * Not here: the metrics themselves (the plugins), URL keys (text.c).
 */
#include "sandbox_internal.h"
#include "text.h"

#include <lauxlib.h>
#include <string.h>

/* Leaves the value on top of the stack just above top, dropping what was pushed between. */
static void keep_top(lua_State *L, int top) {
    if (lua_gettop(L) > top + 1) {
        lua_replace(L, top + 1);
        lua_settop(L, top + 1);
    }
}

/* The string member key of object v, "" when absent or not a string (trace.text). */
static const char *text_of(lua_State *L, lazy_value v, const char *key, size_t *n) {
    const char *s = lazy_value_string(L, lazy_value_get(L, v, key), n);
    if (!s) *n = 0;
    return s ? s : "";
}

/* Pushes "title snippet" of a search result (trace.result_text). [-0, +1, m] */
static void push_result_text(lua_State *L, lazy_value result) {
    int top = lua_gettop(L); /* reading may push the members; the text goes in their place */
    size_t title_len, snippet_len;
    const char *title = text_of(L, result, "title", &title_len);
    const char *snippet = text_of(L, result, "snippet", &snippet_len);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, title_len + 1 + snippet_len);
    memcpy(out, title, title_len);
    out[title_len] = ' ';
    memcpy(out + title_len + 1, snippet, snippet_len);
    luaL_pushresultsize(&b, title_len + 1 + snippet_len);
    keep_top(L, top);
}

/* Is the string s (n bytes; NULL: not a string) the string want? */
static bool is_string(const char *s, size_t n, const char *want) {
    return s && n == strlen(want) && memcmp(s, want, n) == 0;
}

/* What a walk's callbacks share: the table being filled (a stack slot), its count, and the
 * second table of trace.sources. */
typedef struct cite_sources cite_sources;
typedef struct walk {
    int out, found;
    lua_Integer n;
    cite_sources *cs; /* cited_pairs' walk over the steps */
} walk;

typedef void (*entry_fn)(lua_State *L, lazy_value entry, walk *w);

/* Calls fn for each entry of the list parent[key] that is an object (trace.objects), in
 * order, with the stack as it was at the call. */
static void each_object(lua_State *L, lazy_value parent, const char *key, entry_fn fn, walk *w) {
    int top = lua_gettop(L);
    lazy_value list = lazy_value_get(L, parent, key);
    int base = lua_gettop(L);
    lazy_iter it;
    lazy_value entry;
    if (lazy_value_first(L, list, &it))
        for (unsigned i = 1; lazy_value_next(L, list, &it, &entry); i++) {
            if (i % 4096 == 0) sandbox_check_limits(L); /* a trace may hold millions */
            if (lazy_value_is_object(L, entry)) fn(L, entry, w);
            lua_settop(L, base);
        }
    lua_settop(L, top);
}

/* Is the step's type the string want? */
static bool type_is(lua_State *L, lazy_value step, const char *want) {
    size_t n = 0;
    const char *type = lazy_value_string(L, lazy_value_get(L, step, "type"), &n);
    return is_string(type, n, want);
}

/* Pushes the URL key of the result's url when it is a string; false with nothing pushed
 * otherwise. */
static bool push_result_key(lua_State *L, lazy_value result) {
    size_t n;
    const char *url = lazy_value_string(L, lazy_value_get(L, result, "url"), &n);
    if (url) text_push_url_key(L, url, n);
    return url != NULL;
}

/* found[key] = "title snippet" for the first result of each URL key. */
static void add_found(lua_State *L, lazy_value result, walk *w) {
    if (!push_result_key(L, result)) return;
    lua_pushvalue(L, -1);
    if (lua_rawget(L, w->found) != LUA_TNIL) return;
    lua_pop(L, 1);
    push_result_text(L, result);
    lua_rawset(L, w->found);
}

/* out[key] = content of the first fetch of each URL key. */
static void add_fetched(lua_State *L, lazy_value step, int out) {
    size_t n;
    const char *url = lazy_value_string(L, lazy_value_get(L, step, "url"), &n);
    if (!url) return;
    text_push_url_key(L, url, n);
    lua_pushvalue(L, -1);
    if (lua_rawget(L, out) != LUA_TNIL) return;
    lua_pop(L, 1);
    int top = lua_gettop(L);
    const char *content = text_of(L, step, "content", &n);
    lua_pushlstring(L, content, n);
    keep_top(L, top);
    lua_rawset(L, out);
}

static void add_step_sources(lua_State *L, lazy_value step, walk *w) {
    if (type_is(L, step, "fetch")) add_fetched(L, step, w->out);
    else if (type_is(L, step, "search")) each_object(L, step, "results", add_found, w);
}

/* trace.sources(t) -> fetched, found: source texts by URL key (docs/metrics.md), fetched
 * page contents and "title snippet" of search results, the first of each kind winning. */
static int l_sources(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkstack(L, 16, "trace.sources");
    lua_settop(L, 1);
    lua_newtable(L); /* 2: fetched */
    lua_newtable(L); /* 3: found */
    walk w = {.out = 2, .found = 3};
    each_object(L, lazy_value_at(L, 1), "steps", add_step_sources, &w);
    return 2;
}

static void add_query(lua_State *L, lazy_value step, walk *w) {
    if (!type_is(L, step, "search")) return;
    size_t n;
    const char *query = lazy_value_string(L, lazy_value_get(L, step, "query"), &n);
    if (!query) return;
    lua_pushlstring(L, query, n);
    lua_rawseti(L, w->out, ++w->n);
}

static void add_text(lua_State *L, lazy_value result, walk *w) {
    push_result_text(L, result);
    lua_rawseti(L, w->out, ++w->n);
}

static void add_key(lua_State *L, lazy_value result, walk *w) {
    if (!push_result_key(L, result)) return;
    lua_pushboolean(L, 1);
    lua_rawset(L, w->out);
}

static void add_key_to_set(lua_State *L, lazy_value result, walk *w) {
    size_t n;
    const char *url = lazy_value_string(L, lazy_value_get(L, result, "url"), &n);
    if (url) tset_add_url_key(L, w->out, url, n);
}

/* Pushes a new table, filled by fn for each object entry of the argument's member key. */
static int push_walk(lua_State *L, const char *key, entry_fn fn) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkstack(L, 16, "assay.trace");
    lua_settop(L, 1);
    lua_newtable(L);
    walk w = {.out = 2};
    each_object(L, lazy_value_at(L, 1), key, fn, &w);
    return 1;
}

/* Adds to the Set given second, by fn for each object entry of the first's results, and
 * returns the Set. */
static int set_walk(lua_State *L, entry_fn fn) {
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!tset_is(L, 2)) luaL_typeerror(L, 2, "assay.text.Set");
    luaL_checkstack(L, 16, "assay.trace");
    lua_settop(L, 2);
    walk w = {.out = 2};
    each_object(L, lazy_value_at(L, 1), "results", fn, &w);
    return 1;
}

/* trace.queries(t) -> {query...}: the query of every search step whose query is a string,
 * in order, repeats kept */
static int l_queries(lua_State *L) { return push_walk(L, "steps", add_query); }

static void add_document(lua_State *L, lazy_value result, walk *w) {
    const char *parts[2];
    size_t lens[2];
    parts[0] = text_of(L, result, "title", &lens[0]);
    parts[1] = text_of(L, result, "snippet", &lens[1]);
    tset_add_document(L, w->out, parts, lens, 2);
}

/* trace.result_texts(step [, S]) -> {"title snippet"...} of the step's results, in order;
 * with a Set S, each is added to S as its next document (S:add_document) and S is returned:
 * no Lua string per result */
static int l_result_texts(lua_State *L) {
    return lua_isnoneornil(L, 2) ? push_walk(L, "results", add_text) : set_walk(L, add_document);
}

/* trace.url_keys(step [, S]) -> {key = true}: the URL keys of the step's results with a
 * URL; with a Set S, they are added to S (no Lua string per key) and S is returned */
static int l_url_keys(lua_State *L) {
    return lua_isnoneornil(L, 2) ? push_walk(L, "results", add_key) : set_walk(L, add_key_to_set);
}

/* --------------------------------------------------------------- cited_pairs */

typedef struct cite_url {
    const char *s; /* citations[k] when a string, else NULL */
    size_t n;
} cite_url;

#define CITE_SEEN_INLINE 16
#define CITE_ENTRY_CACHE 64

/* One report being paired: what the sentence and marker callbacks share. Stack slots are
 * absolute. */
typedef struct cite_walk {
    lua_State *L;
    int pairs, keys, entries;  /* the list being built, the Set of cited URL keys, each pair's entry in it */
    int citations;             /* a Lua table to read citations[k] from, or 0 ... */
    const cite_url *urls;      /* ... the citations read from the nodes */
    lua_Integer ncitations, npairs, sentences, cited_sentences, invalid, steps;
    const char *sentence; /* the sentence being paired, and its slots: */
    size_t sentence_len;
    int seen, claim; /* 0 until a 17th distinct marker, and until its first pair */
    /* The sentence's distinct markers so far, while they are few (a sentence cites one to
     * three sources: a Lua table each was a fifth of pairing a report), then the table. */
    long long seen_k[CITE_SEEN_INLINE];
    int nseen;
    /* citation_entry of k for k <= CITE_ENTRY_CACHE, once asked (a source is cited again
     * and again; its URL key was made each time); 0 for not yet, else the entry + 2 */
    lua_Integer entry_of[CITE_ENTRY_CACHE + 1];
} cite_walk;

/* The entry of citations[k]'s URL key (1 <= k <= ncitations) in the Set of cited keys, or -1
 * when citations[k] is not a string or its key is empty (no source has an empty key). */
static lua_Integer citation_entry(cite_walk *w, lua_Integer k) {
    if (k <= CITE_ENTRY_CACHE && w->entry_of[k]) return w->entry_of[k] - 2;
    lua_State *L = w->L;
    int top = lua_gettop(L);
    const char *url = NULL;
    size_t n = 0;
    if (w->urls) {
        url = w->urls[k - 1].s, n = w->urls[k - 1].n;
    } else {
        lua_geti(L, w->citations, k);
        if (lua_type(L, -1) == LUA_TSTRING) url = lua_tolstring(L, -1, &n);
    }
    lua_Integer e = -1;
    if (url) {
        e = tset_url_key_entry(L, w->keys, url, n, true);
        if (tset_member_len(tset_test(L, w->keys), e) == 0) e = -1;
    }
    lua_settop(L, top);
    if (k <= CITE_ENTRY_CACHE) w->entry_of[k] = e + 2;
    return e;
}

/* Has the sentence had marker k already? Notes it if not. */
static bool seen_before(cite_walk *w, long long k) {
    lua_State *L = w->L;
    if (!w->seen) {
        for (int i = 0; i < w->nseen; i++)
            if (w->seen_k[i] == k) return true;
        if (w->nseen < CITE_SEEN_INLINE) {
            w->seen_k[w->nseen++] = k;
            return false;
        }
        lua_createtable(L, 0, 2 * CITE_SEEN_INLINE); /* a sentence of many markers: a table from now on */
        w->seen = lua_gettop(L);
        for (int i = 0; i < w->nseen; i++) {
            lua_pushboolean(L, 1);
            lua_rawseti(L, w->seen, w->seen_k[i]);
        }
    }
    if (lua_rawgeti(L, w->seen, k) != LUA_TNIL) {
        lua_pop(L, 1);
        return true;
    }
    lua_pop(L, 1);
    lua_pushboolean(L, 1);
    lua_rawseti(L, w->seen, k);
    return false;
}

/* Each distinct marker of a sentence, in order: a pair when k is within the citations. */
static void on_marker(long long k, size_t offset, size_t len, void *ctx) {
    (void)offset, (void)len;
    cite_walk *w = ctx;
    lua_State *L = w->L;
    if (++w->steps % 4096 == 0) sandbox_check_limits(L); /* a report may hold millions */
    if (seen_before(w, k)) return;
    if (k < 1 || k > w->ncitations) {
        w->invalid++;
        return;
    }
    if (!w->claim) {
        text_push_stripped(L, w->sentence, w->sentence_len);
        w->claim = lua_gettop(L);
    }
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, w->sentences);
    lua_setfield(L, -2, "sentence");
    lua_pushvalue(L, w->claim);
    lua_setfield(L, -2, "claim");
    lua_pushinteger(L, k);
    lua_setfield(L, -2, "k");
    lua_rawseti(L, w->pairs, ++w->npairs);
    lua_pushinteger(L, citation_entry(w, k)); /* its source is found once the steps are read */
    lua_rawseti(L, w->entries, w->npairs);
}

static void on_sentence(const char *s, size_t n, void *ctx) {
    cite_walk *w = ctx;
    if (text_starts_with_marker(s, n)) return; /* a reference-list entry */
    if (++w->steps % 4096 == 0) sandbox_check_limits(w->L);
    int top = lua_gettop(w->L);
    w->sentences++;
    w->sentence = s, w->sentence_len = n, w->seen = 0, w->claim = 0, w->nseen = 0;
    text_markers(s, n, on_marker, w);
    if (w->claim) w->cited_sentences++;
    lua_settop(w->L, top);
}

/* Reads trace.citations: into w->urls from the nodes when no Lua code has built the list,
 * else as a Lua table (w->citations). ncitations is #citations; 0 when not an array. */
static void read_citations(lua_State *L, lazy_value t, cite_walk *w) {
    lazy_value citations = lazy_value_get(L, t, "citations");
    lazy_iter it;
    if (!lazy_value_first(L, citations, &it)) return;
    if (!it.nodes) {
        w->citations = citations.idx;
        w->ncitations = luaL_len(L, citations.idx);
        return;
    }
    lua_Integer n = 0;
    for (const cJSON *c = it.next; c; c = c->next) n++;
    cite_url *urls = lua_newuserdatauv(L, (size_t)n * sizeof *urls + 1, 0);
    lazy_value entry;
    for (lua_Integer i = 0; lazy_value_next(L, citations, &it, &entry); i++) {
        urls[i].n = 0;
        urls[i].s = lazy_value_string(L, entry, &urls[i].n);
    }
    w->urls = urls, w->ncitations = n;
}

/* The sources of the cited keys, found in one walk over the steps: why not trace.sources,
 * which made a Lua string of every result's URL key and text (a third of what
 * citation_support cost) when a report cites a few of them. Slots are absolute. */
struct cite_sources {
    int keys;                     /* the Set of cited URL keys (cite_walk's) */
    int fetched, found;           /* tables: entry + 1 -> first fetch's content, first result's text */
    int seen_fetched, seen_found; /* Sets of every key seen, while no source text is known */
    bool has_sources;
};

/* Does s hold a character that is not a space (Lua's %S)? */
static bool not_blank(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && (s[i] < '\t' || s[i] > '\r')) return true;
    return false;
}

/* has_sources is trace.sources' answer: whether the first fetch or the first result of some
 * URL key logged a text that is not blank. Once one did, nothing more is noted. */
static void note_source(lua_State *L, cite_sources *cs, int seen, const char *url, size_t n, bool text) {
    lua_Integer before = tset_count(tset_test(L, seen));
    tset_url_key_entry(L, seen, url, n, true);
    if (text && tset_count(tset_test(L, seen)) > before) cs->has_sources = true;
}

static void cite_result(lua_State *L, lazy_value result, walk *w) {
    cite_sources *cs = w->cs;
    size_t n;
    const char *url = lazy_value_string(L, lazy_value_get(L, result, "url"), &n);
    if (!url) return;
    if (!cs->has_sources) {
        size_t title_len, snippet_len;
        const char *title = text_of(L, result, "title", &title_len);
        const char *snippet = text_of(L, result, "snippet", &snippet_len);
        note_source(L, cs, cs->seen_found, url, n, not_blank(title, title_len) || not_blank(snippet, snippet_len));
    }
    lua_Integer e = tset_url_key_entry(L, cs->keys, url, n, false);
    if (e < 0 || lua_rawgeti(L, cs->found, e + 1) != LUA_TNIL) return;
    lua_pop(L, 1);
    push_result_text(L, result);
    lua_rawseti(L, cs->found, e + 1);
}

static void cite_step(lua_State *L, lazy_value step, walk *w) {
    cite_sources *cs = w->cs;
    if (type_is(L, step, "search")) {
        each_object(L, step, "results", cite_result, w);
        return;
    }
    size_t n, content_len;
    const char *url;
    if (!type_is(L, step, "fetch") || !(url = lazy_value_string(L, lazy_value_get(L, step, "url"), &n))) return;
    const char *content = text_of(L, step, "content", &content_len);
    if (!cs->has_sources) note_source(L, cs, cs->seen_fetched, url, n, not_blank(content, content_len));
    lua_Integer e = tset_url_key_entry(L, cs->keys, url, n, false);
    if (e < 0 || lua_rawgeti(L, cs->fetched, e + 1) != LUA_TNIL) return;
    lua_pushlstring(L, content, content_len);
    lua_rawseti(L, cs->fetched, e + 1);
}

/* pairs[i].source for each pair whose citation has a source: the first fetch's content,
 * else the first result's text. */
static void set_sources(lua_State *L, const cite_walk *w, const cite_sources *cs) {
    for (lua_Integer i = 1; i <= w->npairs; i++) {
        if (i % 4096 == 0) sandbox_check_limits(L);
        lua_rawgeti(L, w->entries, i);
        lua_Integer e = lua_tointeger(L, -1);
        lua_pop(L, 1);
        if (e < 0) continue;
        if (lua_rawgeti(L, cs->fetched, e + 1) == LUA_TNIL) {
            lua_pop(L, 1);
            if (lua_rawgeti(L, cs->found, e + 1) == LUA_TNIL) {
                lua_pop(L, 1);
                continue;
            }
        }
        lua_rawgeti(L, w->pairs, i);
        lua_insert(L, -2);
        lua_setfield(L, -2, "source");
        lua_pop(L, 1);
    }
}

/* trace.cited_pairs(t) -> pairs, counts: the (claim, citation) pairs of the report
 * (docs/metrics.md, citation_support; the contract is in plugins/lib/trace.lua). */
static int l_cited_pairs(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checkstack(L, 24, "trace.cited_pairs");
    lua_settop(L, 1);
    lua_pushnil(L); /* 2: the pairs, and 3: the entry of each pair's citation key in 4 (made */
    lua_pushnil(L); /*    below, their size known) */
    for (int i = 4; i <= 6; i++) tset_new(L); /* 4: cited keys, 5 and 6: keys seen (cite_sources) */
    lua_newtable(L); /* 7: fetched, by entry + 1 */
    lua_newtable(L); /* 8: found, by entry + 1 */
    cite_walk w = {.L = L, .pairs = 2, .entries = 3, .keys = 4};
    lazy_value t = lazy_value_at(L, 1);
    read_citations(L, t, &w);
    size_t n;
    const char *output = text_of(L, t, "output", &n);
    /* a pair per marker at most: tables grown a pair at a time were rehashed at every power
     * of two (a tenth of what this function cost) */
    int hint = 0;
    for (const char *p = output, *end = output + n; hint < 64 && (p = memchr(p, '[', (size_t)(end - p))); p++) hint++;
    for (int i = 2; i <= 3; i++) {
        lua_createtable(L, hint, 0);
        lua_replace(L, i);
    }
    text_sentences(output, n, on_sentence, &w);
    cite_sources cs = {.keys = 4, .seen_fetched = 5, .seen_found = 6, .fetched = 7, .found = 8};
    walk steps = {.cs = &cs};
    each_object(L, t, "steps", cite_step, &steps);
    set_sources(L, &w, &cs);
    lua_pushvalue(L, 2);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, w.sentences);
    lua_setfield(L, -2, "sentences");
    lua_pushinteger(L, w.cited_sentences);
    lua_setfield(L, -2, "cited_sentences");
    lua_pushinteger(L, w.invalid);
    lua_setfield(L, -2, "invalid_markers");
    lua_pushboolean(L, cs.has_sources);
    lua_setfield(L, -2, "has_sources");
    return 2;
}

int trace_open(lua_State *L) {
    static const luaL_Reg functions[] = {
        {"sources", l_sources},
        {"result_texts", l_result_texts},
        {"url_keys", l_url_keys},
        {"cited_pairs", l_cited_pairs},
        {"queries", l_queries},
        {NULL, NULL},
    };
    luaL_newlib(L, functions);
    return 1;
}
