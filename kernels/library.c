/* library.c — opening a backend library that lives beside libempo
 * (libempo_cuda, libempo_mpi, libempo_nccl): the path in the environment
 * variable env when set, else soname in libempo's own directory, so an
 * installed or relocated tree finds its own backends. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kernels/kernels.h"

void *empo_open_beside(const char *env, const char *soname, int flags, char *path, size_t len) {
    const char *chosen = env ? getenv(env) : NULL;
    Dl_info self;
    if (chosen && *chosen) snprintf(path, len, "%s", chosen);
    else if (dladdr((void *)empo_open_beside, &self) && self.dli_fname) {
        const char *slash = strrchr(self.dli_fname, '/');
        int dir = slash ? (int)(slash - self.dli_fname) : 1;
        snprintf(path, len, "%.*s/%s", dir, slash ? self.dli_fname : ".", soname);
    } else snprintf(path, len, "%s", soname);
    return dlopen(path, flags);
}
