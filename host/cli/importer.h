/* importer.h - reading logs of other formats into documents for the import mappers
 * (importer.c; the mapping itself is Lua: plugins/importers/, docs/importers.md). */
#ifndef ASSAY_IMPORTER_H
#define ASSAY_IMPORTER_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum {
    IMPORTER_OTLP,
    IMPORTER_LANGFUSE,
    IMPORTER_LANGSMITH,
    IMPORTER_INSPECT,
    IMPORTER_CHAT,
    IMPORTER_OPENAI_RESPONSES,
    IMPORTER_ANTHROPIC,
    IMPORTER_GEMINI,
    IMPORTER_FORMAT_COUNT
} importer_format;

typedef struct importer_config {
    /* one trace's document, as a JSON line (without '\n'); line is where it began */
    void (*on_document)(void *ctx, const char *json, size_t len, const char *source, uint64_t line);
    /* something of the input that could not be imported (the rest is) */
    void (*on_problem)(void *ctx, const char *source, uint64_t line, const char *message);
    /* following (importer_follow), while waiting for the input to grow; may be NULL */
    void (*on_idle)(void *ctx);
    void *ctx;
    /* otlp: a trace whose root span has come is complete once this many lines passed
     * without a span of it (0: 1000); at most max_open open traces are held in memory
     * (0: 10000), the spans of older ones wait in a temporary file */
    uint64_t quiet_lines;
    size_t max_open;
} importer_config;

typedef struct importer importer;

const char *importer_format_name(importer_format f);
/* 0 and *out set, or -1 for an unknown name. */
int importer_format_parse(const char *name, importer_format *out);
/* The format of a JSON value's text (a first line, or a whole small file); -1: unknown. */
int importer_detect(const char *text, size_t len, importer_format *out);

importer *importer_new(importer_format format, const importer_config *cfg);
/* Reads one input to its end: JSON lines, or one JSON document. source names it in
 * messages and documents. Returns 0, or -1 on a read error (reported). */
int importer_feed(importer *im, FILE *f, const char *source);
/* With *stop not NULL: at the end of f, waits for it to grow (polling) until *stop is set
 * (by a signal handler), like tail -f. */
void importer_follow(importer *im, volatile int *stop);
/* Reads an inspect_ai .eval log (a zip of header.json and the samples); problems,
 * a truncated zip included, are reported and the rest is imported. The "line" of a sample
 * is its position among the samples. Returns 0. */
int importer_feed_eval_zip(importer *im, const char *path);
/* The end of all input: the documents still held (OTLP traces, LangSmith runs) go out. */
void importer_finish(importer *im);
uint64_t importer_documents(const importer *im);
uint64_t importer_problems(const importer *im);
/* Traces of which some spans waited in the temporary file. */
uint64_t importer_spilled(const importer *im);
void importer_free(importer *im);

#endif
