/* looper.c - a thread running a libuv loop of its own, woken through a mailbox (looper.h). */
#include "looper.h"

static void looper_main(void *arg) {
    looper *lp = arg;
    if (lp->on_start) lp->on_start(lp->mailbox.data);
    uv_run(&lp->loop, UV_RUN_DEFAULT);
}

int looper_init(looper *lp, uv_async_cb on_mail, void *data) {
    lp->is_stopping = false;
    lp->on_start = NULL;
    if (uv_loop_init(&lp->loop) != 0) return -1;
    if (uv_mutex_init(&lp->lock) != 0) {
        uv_loop_close(&lp->loop);
        return -1;
    }
    uv_async_init(&lp->loop, &lp->mailbox, on_mail);
    lp->mailbox.data = data;
    return 0;
}

int looper_start(looper *lp) { return uv_thread_create(&lp->thread, looper_main, lp) == 0 ? 0 : -1; }

void looper_abandon(looper *lp) {
    uv_close((uv_handle_t *)&lp->mailbox, NULL);
    uv_run(&lp->loop, UV_RUN_DEFAULT);
    uv_loop_close(&lp->loop);
    uv_mutex_destroy(&lp->lock);
}

void looper_wake(looper *lp) { uv_async_send(&lp->mailbox); }

void looper_close_mailbox(looper *lp) { uv_close((uv_handle_t *)&lp->mailbox, NULL); }

void looper_join(looper *lp) {
    uv_thread_join(&lp->thread);
    uv_loop_close(&lp->loop);
    uv_mutex_destroy(&lp->lock);
}

void looper_stop(looper *lp) {
    uv_mutex_lock(&lp->lock);
    lp->is_stopping = true;
    uv_mutex_unlock(&lp->lock);
    uv_async_send(&lp->mailbox);
    looper_join(lp);
}

bool looper_is_own_thread(const looper *lp) {
    uv_thread_t self = uv_thread_self();
    return uv_thread_equal(&self, &lp->thread) != 0;
}
