/* jscan.h - finds a trace's id in its JSON text without parsing it (jscan.c). */
#ifndef ASSAY_JSCAN_H
#define ASSAY_JSCAN_H

#include <stddef.h>

typedef enum { JSCAN_UNSURE, JSCAN_ID } jscan_answer;

/* JSCAN_ID: cJSON parses text (valid UTF-8, no NUL) into an object whose last "id" member is
 * the string of *id_len bytes at *id (a pointer into text). JSCAN_UNSURE: parse it to know. */
jscan_answer jscan_object_id(const char *text, size_t len, const char **id, size_t *id_len);

#endif
