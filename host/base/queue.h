/* queue.h - the intrusive FIFO of every hand-off in the library: jobs to a worker, answers
 * back to it, finished jobs to the host, requests to the HTTP client and its ready queue.
 *
 * An item carries its own link (a `next` pointer at a fixed offset, named once in
 * QUEUE_INIT), so queuing never allocates and cannot fail. Not thread-safe: whoever shares
 * a queue between threads holds their lock around it, and takes a whole batch at once
 * (queue_move_all) to work on it outside the lock.
 */
#ifndef ASSAY_QUEUE_H
#define ASSAY_QUEUE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct queue {
    void *head, *tail;
    size_t link;          /* offset of the item's `next` pointer */
} queue;

#define QUEUE_INIT(type, member) ((queue){NULL, NULL, offsetof(type, member)})

static inline void **queue_link_of(const queue *q, void *item) { return (void **)(void *)((char *)item + q->link); }

static inline bool queue_is_empty(const queue *q) { return q->head == NULL; }

static inline void queue_push(queue *q, void *item) {
    *queue_link_of(q, item) = NULL;
    if (q->tail) *queue_link_of(q, q->tail) = item;
    else q->head = item;
    q->tail = item;
}

/* The first item, unlinked; NULL when the queue is empty. */
static inline void *queue_pop(queue *q) {
    void *item = q->head;
    if (!item) return NULL;
    q->head = *queue_link_of(q, item);
    if (!q->head) q->tail = NULL;
    *queue_link_of(q, item) = NULL;
    return item;
}

/* Appends every item of from to to, in order, and leaves from empty. Both link through the
 * same member. */
static inline void queue_move_all(queue *to, queue *from) {
    if (!from->head) return;
    if (to->tail) *queue_link_of(to, to->tail) = from->head;
    else to->head = from->head;
    to->tail = from->tail;
    from->head = from->tail = NULL;
}

#endif
