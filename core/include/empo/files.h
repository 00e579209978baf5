/* empo/files.h — files written so that a kill or a power cut at any moment
 * leaves the old file or the new one, never a torn one; and `mkdir -p`.
 * One implementation (core/io/files.c) for the safetensors writer, the
 * tokenizer trainer and the Lua library (empo.fs). */
#ifndef EMPO_FILES_H
#define EMPO_FILES_H
#include <stdint.h>

/* Writes n bytes of data to path: to "<path>.tmp.<pid>", fsync, rename
 * over path, fsync of the directory. On failure path is untouched and the
 * temporary file removed; the message names path and the system error. */
int empo_write_file_atomic(const char *path, const void *data, int64_t n);

/* mkdir -p: path and its missing parents (mode 0777 less the umask). An
 * existing directory is fine; a file in the way, or a directory that
 * cannot be made or written into, is an error naming it. */
int empo_make_dirs(const char *path);

#endif
