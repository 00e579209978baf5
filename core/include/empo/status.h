/* empo/status.h — status codes and the per-thread error message.
 *
 * Every public empo function that can fail returns an empo_status. On failure
 * the message (op name, shapes, dtypes, what was expected) is kept in a
 * per-thread buffer until the next failure:
 *
 *     empo_tensor *y;
 *     if (empo_matmul(&y, a, b) != EMPO_OK)
 *         fprintf(stderr, "%s\n", empo_last_error());
 *
 * The core never aborts on a caller's mistake. */
#ifndef EMPO_STATUS_H
#define EMPO_STATUS_H

typedef enum empo_status {
    EMPO_OK = 0,
    EMPO_E_ARG = 1,      /* bad argument value (negative size, bad dim, NULL) */
    EMPO_E_SHAPE = 2,    /* shapes do not fit together */
    EMPO_E_DTYPE = 3,    /* dtype not supported or mismatched */
    EMPO_E_INDEX = 4,    /* an index is out of range */
    EMPO_E_NOMEM = 5,    /* allocation failed */
    EMPO_E_STATE = 6,    /* wrong state (freed graph, no grad, ...) */
    EMPO_E_IO = 7,       /* file or format problem */
    EMPO_E_DEVICE = 8,   /* device missing or mismatched */
    EMPO_E_NUMERIC = 9   /* NaN/Inf where a finite value is required */
} empo_status;

/* The message of the last failure on this thread ("" if none). */
const char *empo_last_error(void);
/* A short stable name for a status code, e.g. "shape". */
const char *empo_status_name(int status);
void empo_clear_error(void);

#endif
