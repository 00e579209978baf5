/* error.c — the per-thread error message behind empo_last_error(). */
#include <stdio.h>
#include "base/base_internal.h"

static _Thread_local char last_error[1024];

int empo_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return code;
}

const char *empo_last_error(void) { return last_error; }

void empo_clear_error(void) { last_error[0] = '\0'; }

const char *empo_status_name(int status) {
    static const char *names[] = {"ok", "argument", "shape", "dtype", "index", "out of memory",
                                  "state", "io", "device", "numeric"};
    if (status < 0 || status >= (int)(sizeof names / sizeof names[0])) return "unknown";
    return names[status];
}
