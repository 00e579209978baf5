/* files_internal.h — the atomic writer with a producer callback, for the
 * writers that stream what they write (core/io/safetensors_write.c);
 * empo_write_file_atomic (empo/files.h) is it over a buffer. */
#ifndef EMPO_IO_FILES_INTERNAL_H
#define EMPO_IO_FILES_INTERNAL_H

/* emit writes the whole contents to fd; returns EMPO_OK or a status set
 * with empo_fail. */
typedef int (*empo_emit_fn)(int fd, void *ctx);

/* "<path>.tmp.<pid>", emit, fsync, close, rename over path, fsync of the
 * directory; on failure the temporary file is removed. */
int empo_write_atomically(const char *path, empo_emit_fn emit, void *ctx);

/* write(2) until n bytes are written; 0, or -1 with errno set. */
int empo_write_all(int fd, const void *p, size_t n);

#endif
