/* stop_signal.c — a graceful stop for long jobs (the trainer): between
 * empo_stop_signals_begin and _end, SIGINT and SIGTERM are only noted, so
 * the job can finish the step it is in and save a checkpoint. A second
 * signal gets the action installed before (the REPL's interrupt, or the
 * default: the process ends; the last checkpoint is intact either way). */
#include "empo/runtime.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t g_pending;
static struct sigaction g_prev_int, g_prev_term;
static int g_depth;

static void on_stop(int sig)
{
    if (g_pending) {
        /* blocked while we run: delivered under the old action on return */
        sigaction(sig, sig == SIGINT ? &g_prev_int : &g_prev_term, NULL);
        raise(sig);
        return;
    }
    g_pending = sig;
    static const char msg[] = "\nempo: stop requested: finishing this step, then saving "
                              "(send it again to stop at once)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
}

int empo_stop_signals_begin(void)
{
    if (g_depth++ > 0)
        return 0;
    g_pending = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART; /* a write in progress finishes */
    if (sigaction(SIGINT, &sa, &g_prev_int) != 0 || sigaction(SIGTERM, &sa, &g_prev_term) != 0) {
        g_depth = 0;
        return -1;
    }
    return 0;
}

void empo_stop_signals_end(void)
{
    if (g_depth == 0 || --g_depth > 0)
        return;
    sigaction(SIGINT, &g_prev_int, NULL);
    sigaction(SIGTERM, &g_prev_term, NULL);
    g_pending = 0;
}

int empo_stop_requested(void)
{
    return g_pending;
}
