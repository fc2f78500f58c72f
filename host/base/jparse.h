/* jparse.h - a trace's JSON text parsed into cJSON nodes that live in one arena (jparse.c). */
#ifndef ASSAY_JPARSE_H
#define ASSAY_JPARSE_H

#include <cJSON.h>
#include <stddef.h>

typedef struct jparse_tree jparse_tree;

/* The tree cJSON_ParseWithLengthOpts(text, len + 1, &end, 1) would give for text (len bytes;
 * a NUL among them is given up on), with its nodes and the keys and strings that have escapes in one arena
 * owned by *tree. The other keys and strings stay in text, each ended by a NUL written over
 * its closing quote: text must outlive the tree and not change. NULL, and *tree NULL, when
 * text is not JSON of the strict kind this parser takes (or memory ran out); text is then
 * as it was, and the caller parses it with cJSON, which decides. A string that is not valid UTF-8 is
 * given up on too, so a tree means the whole text is valid UTF-8. Free the tree with jparse_free, never
 * with cJSON_Delete, and never give its nodes to cJSON functions that free or move them.
 * One difference from cJSON's tree: a string node's valueint is its length in bytes (cJSON
 * leaves it 0; so does this parser for a string longer than INT_MAX), which spares its
 * readers a strlen (sandbox_internal.h: json_string_len). */
cJSON *jparse(char *text, size_t len, jparse_tree **tree);
void jparse_free(jparse_tree *tree);

#endif
