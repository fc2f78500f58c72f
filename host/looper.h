/* looper.h - a thread running a libuv loop of its own, woken through a mailbox.
 *
 * The one way the library runs a loop on a thread: each worker, the HTTP client and the
 * host's thread mode. Other threads put work in the owner's queues while holding `lock`,
 * then call looper_wake; the mailbox callback runs on the loop's thread, takes the work
 * under the lock and does it outside. The owner adds its own handles to `loop` between
 * looper_init and looper_start.
 *
 * Stopping: looper_stop sets is_stopping and wakes the loop; the owner's mailbox callback,
 * seeing it and nothing left to do, closes its handles and the mailbox (looper_close_mailbox);
 * the loop then runs out and looper_stop returns once the thread has ended.
 */
#ifndef ASSAY_LOOPER_H
#define ASSAY_LOOPER_H

#include <stdbool.h>
#include <uv.h>

typedef struct looper {
    uv_loop_t loop;
    uv_async_t mailbox;   /* its data is the owner's, given to looper_init */
    uv_mutex_t lock;      /* guards what the owner queues for the loop, and is_stopping */
    bool is_stopping;
    uv_thread_t thread;
    /* run on the thread before its loop, with the mailbox's data; NULL for none. Set
     * between looper_init and looper_start. */
    void (*on_start)(void *data);
} looper;

/* Makes the loop, the mailbox (on_mail runs on the loop's thread with mailbox.data = data)
 * and the lock. Returns 0, or -1 with nothing left to undo. */
int looper_init(looper *lp, uv_async_cb on_mail, void *data);
/* Starts the thread. Returns 0, or -1 (then the owner closes its handles and calls
 * looper_abandon). */
int looper_start(looper *lp);
/* Undoes looper_init when the thread never started: closes the mailbox, runs the loop
 * until the handles the owner closed are closed too, and frees the loop and the lock. */
void looper_abandon(looper *lp);
/* Wakes the loop's thread to look at its mail; from any thread. */
void looper_wake(looper *lp);
/* From the loop's thread, once stopping: the last handle the looper itself holds. */
void looper_close_mailbox(looper *lp);
/* Asks the loop to stop (see the top), waits for its thread and frees the loop and lock. */
void looper_stop(looper *lp);
/* Waits for a thread whose loop the owner ends by itself, then frees the loop and lock. */
void looper_join(looper *lp);
/* Whether the calling thread is the loop's. */
bool looper_is_own_thread(const looper *lp);

#endif
