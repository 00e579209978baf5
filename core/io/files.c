/* files.c — the one atomic file writer and the one `mkdir -p` of the
 * runtime (empo/files.h, files_internal.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "base/base_internal.h"
#include "empo/files.h"
#include "io/files_internal.h"

int empo_write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);   /* large writes go in pieces */
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* fsync of path's directory, so that the rename itself is durable */
static void sync_dir_of(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == path) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

int empo_write_atomically(const char *path, empo_emit_fn emit, void *ctx) {
    if (!path || !*path) return empo_fail(EMPO_E_ARG, "write_file_atomic: no path");
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return empo_fail(EMPO_E_ARG, "%.200s...: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return empo_fail(EMPO_E_IO, "cannot write %s: %s", path, strerror(errno));
    int st = emit(fd, ctx);
    if (st == EMPO_OK && fsync(fd) != 0) st = empo_fail(EMPO_E_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && st == EMPO_OK) st = empo_fail(EMPO_E_IO, "%s: close failed: %s", path, strerror(errno));
    if (st == EMPO_OK && rename(tmp, path) != 0)
        st = empo_fail(EMPO_E_IO, "cannot rename %s to %s: %s", tmp, path, strerror(errno));
    if (st != EMPO_OK) {
        unlink(tmp);
        return st;
    }
    sync_dir_of(path);
    return EMPO_OK;
}

typedef struct bytes {
    const char *path;
    const void *data;
    size_t n;
} bytes;

static int emit_bytes(int fd, void *ctx) {
    const bytes *b = ctx;
    if (b->n > 0 && empo_write_all(fd, b->data, b->n) != 0)
        return empo_fail(EMPO_E_IO, "cannot write %s: %s", b->path, strerror(errno));
    return EMPO_OK;
}

int empo_write_file_atomic(const char *path, const void *data, int64_t n) {
    if (n < 0 || (n > 0 && !data)) return empo_fail(EMPO_E_ARG, "write_file_atomic: %s: no data", path ? path : "?");
    bytes b = {path, data, (size_t)n};
    return empo_write_atomically(path, emit_bytes, &b);
}

int empo_make_dirs(const char *path) {
    if (!path || !*path) return empo_fail(EMPO_E_ARG, "make_dirs: no path");
    size_t len = strlen(path);
    char *p = malloc(len + 1);
    if (!p) return empo_fail(EMPO_E_NOMEM, "make_dirs: out of memory");
    memcpy(p, path, len + 1);
    int st = EMPO_OK;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            struct stat sb;
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                st = empo_fail(EMPO_E_IO, "cannot create directory %s: %s", p, strerror(errno));
            else if (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))
                st = empo_fail(EMPO_E_IO, "cannot create directory %s: a file is in the way", p);
            *s = c;
            if (!c || st != EMPO_OK) break;
        }
    }
    free(p);
    if (st == EMPO_OK && access(path, W_OK | X_OK) != 0)
        st = empo_fail(EMPO_E_IO, "cannot write into directory %s: %s", path, strerror(errno));
    return st;
}
