/* storage.c — refcounted device-tagged storage and a caching allocator.
 *
 * A training loop allocates the same sizes every step; freed blocks are
 * parked on per-size-class free lists and handed back on the next request
 * of that class instead of going to malloc. Size classes are 4 per power of
 * two (so at most 25% slack). The cache is bounded (EMPO_CACHE_LIMIT_MB,
 * default 4096); past it blocks go back to the system.
 *
 * A storage can instead point into a refcounted file mapping
 * (empo_storage_from_mapping): safetensors' zero-copy tensors.
 *
 * Device storages (CUDA) have the same size classes in a pool of their
 * own: the header is malloc'd on the host, the block comes from the
 * device table's alloc (kernels/device.h) and goes back to that pool's
 * free lists, so a steady training step allocates nothing on the device.
 * When the device is full the pool gives its cached blocks back and
 * tries once more. EMPO_CUDA_CACHE_LIMIT_MB bounds it (default: none). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include "tensor/tensor_internal.h"
#include "kernels/kernels.h"

enum { N_CLASSES = 256, ALIGNMENT = 64 };

typedef struct free_block { struct free_block *next; } free_block;

static struct {
    pthread_mutex_t lock;
    free_block *lists[N_CLASSES];
    int64_t live, cached, peak, limit;
    int64_t total_limit;   /* bound on live + cached; 0: none */
    int64_t live_tensors;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .limit = -1};

static void trim_cache(int64_t keep);

/* class of n bytes and that class's block size; blocks start at 256 bytes
 * so every block is a multiple of the alignment (aligned_alloc needs it) */
static int size_class(size_t n, size_t *block) {
    if (n < 4 * ALIGNMENT) n = 4 * ALIGNMENT;
    int k = 63 - __builtin_clzll((unsigned long long)n);      /* 2^k <= n */
    size_t base = (size_t)1 << k;
    size_t quarter = base >> 2 ? base >> 2 : 1;
    size_t steps = (n - base + quarter - 1) / quarter;         /* 0..4 */
    *block = base + steps * quarter;
    if (steps == 4) { k++; steps = 0; }
    int c = k * 4 + (int)steps;
    return c < N_CLASSES ? c : N_CLASSES - 1;
}

static int64_t cache_limit(void) {
    if (pool.limit < 0) {
        const char *e = getenv("EMPO_CACHE_LIMIT_MB");
        pool.limit = (e ? atoll(e) : 4096) * 1024 * 1024;
    }
    return pool.limit;
}

/* the block size of class c (size_class's inverse) */
static size_t class_block(int c) {
    const size_t base = (size_t)1 << (c / 4), quarter = base >> 2 ? base >> 2 : 1;
    return base + (size_t)(c % 4) * quarter;
}

/* Blocks of 1 MB and more are mappings of their own, so what leaves the
 * cache goes back to the system (in glibc's heap a freed block can stay
 * resident whatever this cache's bound), and those of 2 MB and more are
 * 2 MB-aligned and asked to be backed by huge pages: a fresh 500 MB
 * gradient then costs 250 page faults, not 128,000 (the kernel's time was
 * a fifth of a Qwen2.5-0.5B step's CPU time before). */
enum { MAPPED = 1 << 20, HUGE_PAGE = 2 << 20 };

static void *sys_alloc(size_t block) {
    if (block < MAPPED) return aligned_alloc(ALIGNMENT, block);
    const size_t pad = block >= HUGE_PAGE ? HUGE_PAGE : 0;
    char *p = mmap(NULL, block + pad, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return NULL;
    if (!pad) return p;
    char *start = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1));
    if (start > p) munmap(p, (size_t)(start - p));                       /* the unaligned head */
    if (start + block < p + block + pad) munmap(start + block, (size_t)(p + block + pad - (start + block)));
    madvise(start, block, MADV_HUGEPAGE);
    return start;
}

static void sys_free(void *p, size_t block) {
    if (block < MAPPED) free(p);
    else munmap(p, block);
}

/* A request of class c takes a parked block of its class or, failing
 * that, of the next four (at most twice its size): micro-batches of
 * different shapes then reuse each other's blocks instead of parking
 * ones nobody asks for while the system is asked for new ones. */
static void *block_get(size_t nbytes, size_t *capacity) {
    size_t block;
    int c = size_class(nbytes, &block);
    pthread_mutex_lock(&pool.lock);
    free_block *b = NULL;
    for (int k = c; k < N_CLASSES && k <= c + 4 && !b; k++)
        if (pool.lists[k]) {
            b = pool.lists[k];
            pool.lists[k] = b->next;
            block = class_block(k);
            pool.cached -= (int64_t)block;
        }
    pool.live += (int64_t)block;
    if (pool.live > pool.peak) pool.peak = pool.live;
    /* a miss takes fresh memory: parked blocks of other sizes go back
     * first where keeping them would pass the bound on live + cached */
    if (!b && pool.total_limit > 0 && pool.live + pool.cached > pool.total_limit)
        trim_cache(pool.total_limit - pool.live);
    pthread_mutex_unlock(&pool.lock);
    if (!b) {
        b = sys_alloc(block);
        if (!b) {
            pthread_mutex_lock(&pool.lock);
            pool.live -= (int64_t)block;
            pthread_mutex_unlock(&pool.lock);
            return NULL;
        }
    }
    *capacity = block;
    return b;
}

static void block_put(void *p, size_t capacity) {
    size_t block;
    int c = size_class(capacity, &block);
    pthread_mutex_lock(&pool.lock);
    pool.live -= (int64_t)capacity;
    int keep = pool.cached + (int64_t)capacity <= cache_limit();
    if (keep) {
        free_block *b = p;
        b->next = pool.lists[c];
        pool.lists[c] = b;
        pool.cached += (int64_t)capacity;
    }
    pthread_mutex_unlock(&pool.lock);
    if (!keep) sys_free(p, capacity);
}

/* ---- the device pool: blocks of device memory, parked by size class ----
 * The blocks cannot hold the list links (the host cannot write them), so
 * each parked block has a small host node. */
typedef struct device_block {
    struct device_block *next;
    void *data;
} device_block;

static struct {
    pthread_mutex_t lock;
    device_block *lists[N_CLASSES];
    int64_t live, cached, peak, limit, allocs;
} device_pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .limit = -2};

static int64_t device_cache_limit(void) {
    if (device_pool.limit == -2) {
        const char *e = getenv("EMPO_CUDA_CACHE_LIMIT_MB");
        device_pool.limit = e && *e ? atoll(e) * 1024 * 1024 : -1;
    }
    return device_pool.limit;
}

/* gives every parked block back to the device; call with the lock held */
static void device_pool_drain(const empo_device_api *dev) {
    for (int c = 0; c < N_CLASSES; c++)
        while (device_pool.lists[c]) {
            device_block *b = device_pool.lists[c];
            device_pool.lists[c] = b->next;
            dev->release(b->data);
            free(b);
        }
    device_pool.cached = 0;
}

static void *device_block_get(const empo_device_api *dev, size_t nbytes, size_t *capacity) {
    size_t block;
    int c = size_class(nbytes, &block);
    void *data = NULL;
    pthread_mutex_lock(&device_pool.lock);
    device_block *b = device_pool.lists[c];
    if (b) {
        device_pool.lists[c] = b->next;
        device_pool.cached -= (int64_t)block;
        data = b->data;
        free(b);
    } else {
        data = dev->alloc(block);
        if (!data && device_pool.cached) {   /* full: give the cache back, once */
            device_pool_drain(dev);
            data = dev->alloc(block);
        }
        if (data) device_pool.allocs++;
    }
    if (data) {
        device_pool.live += (int64_t)block;
        if (device_pool.live > device_pool.peak) device_pool.peak = device_pool.live;
    }
    pthread_mutex_unlock(&device_pool.lock);
    *capacity = block;
    return data;
}

static void device_block_put(const empo_device_api *dev, void *data, size_t capacity) {
    size_t block;
    int c = size_class(capacity, &block);
    device_block *node = malloc(sizeof *node);
    pthread_mutex_lock(&device_pool.lock);
    device_pool.live -= (int64_t)capacity;
    int64_t limit = device_cache_limit();
    int keep = node && (limit < 0 || device_pool.cached + (int64_t)capacity <= limit);
    if (keep) {
        node->data = data;
        node->next = device_pool.lists[c];
        device_pool.lists[c] = node;
        device_pool.cached += (int64_t)capacity;
    }
    pthread_mutex_unlock(&device_pool.lock);
    if (!keep) {
        free(node);
        dev->release(data);
    }
}

static empo_storage *device_storage_new(size_t nbytes, int device) {
    const empo_kernel_table *k = empo_kernels_device(device);
    if (!k) {
        empo_fail(EMPO_E_DEVICE, "storage: cannot use cuda: %s", empo_kernels_device_why());
        return NULL;
    }
    empo_storage *s = malloc(sizeof *s);
    size_t capacity = 0;
    void *data = s ? device_block_get(k->device, nbytes, &capacity) : NULL;
    if (!data) {
        free(s);
        empo_fail(EMPO_E_NOMEM, "storage: cannot allocate %zu bytes on cuda (%s; %lld bytes in use there)", nbytes,
                  k->device->last_error(), (long long)device_pool.live);
        return NULL;
    }
    *s = (empo_storage){.refcount = 1, .device = device, .nbytes = nbytes, .capacity = capacity, .data = data};
    return s;
}

/* The storage header lives at the head of its own block, ahead of the data
 * (one allocation per tensor instead of two). */
enum { HEADER = ALIGNMENT };
_Static_assert(sizeof(empo_storage) <= HEADER, "storage header must fit in one alignment unit");

empo_storage *empo_storage_new(size_t nbytes, int device) {
    if (nbytes > ((size_t)1 << 46)) {
        empo_fail(EMPO_E_NOMEM, "storage: %zu bytes is beyond any machine", nbytes);
        return NULL;
    }
    if (device == EMPO_CUDA) return device_storage_new(nbytes, device);
    if (device != EMPO_CPU) {
        empo_fail(EMPO_E_DEVICE, "storage: device %d is not one empo knows (cpu, cuda)", device);
        return NULL;
    }
    size_t capacity;
    empo_storage *s = block_get(HEADER + nbytes, &capacity);
    if (!s) {
        empo_fail(EMPO_E_NOMEM, "storage: cannot allocate %zu bytes", nbytes);
        return NULL;
    }
    s->refcount = 1;
    s->device = device;
    s->nbytes = nbytes;
    s->capacity = capacity;
    s->data = (char *)s + HEADER;
    s->mapping = NULL;
    return s;
}

void empo_storage_retain(empo_storage *s) { __atomic_add_fetch(&s->refcount, 1, __ATOMIC_RELAXED); }

void empo_storage_release(empo_storage *s) {
    if (!s || __atomic_sub_fetch(&s->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    if (s->mapping) {
        empo_mapping_release(s->mapping);
        free(s);
        return;
    }
    if (s->device != EMPO_CPU) {
        device_block_put(empo_kernels_device(s->device)->device, s->data, s->capacity);
        free(s);
        return;
    }
    block_put(s, s->capacity);
}

/* ---- file mappings: storages that point into an mmap'd file ----
 * Their bytes are the kernel's page cache, not the allocator's, so they
 * are not counted in the live/cached/peak figures. */

struct empo_mapping {
    int refcount;
    void *addr;
    size_t len;
};

empo_mapping *empo_mapping_new(void *addr, size_t len) {
    empo_mapping *m = malloc(sizeof *m);
    if (!m) {
        empo_fail(EMPO_E_NOMEM, "storage: out of memory");
        return NULL;
    }
    m->refcount = 1;
    m->addr = addr;
    m->len = len;
    return m;
}

void empo_mapping_retain(empo_mapping *m) { __atomic_add_fetch(&m->refcount, 1, __ATOMIC_RELAXED); }

void empo_mapping_release(empo_mapping *m) {
    if (!m || __atomic_sub_fetch(&m->refcount, 1, __ATOMIC_ACQ_REL) > 0) return;
    munmap(m->addr, m->len);
    free(m);
}

empo_storage *empo_storage_from_mapping(empo_mapping *m, void *data, size_t nbytes) {
    empo_storage *s = malloc(sizeof *s);
    if (!s) {
        empo_fail(EMPO_E_NOMEM, "storage: out of memory");
        return NULL;
    }
    s->refcount = 1;
    s->device = EMPO_CPU;
    s->nbytes = nbytes;
    s->capacity = 0;
    s->data = data;
    s->mapping = m;
    empo_mapping_retain(m);
    return s;
}

void empo_count_tensor(int delta) { __atomic_add_fetch(&pool.live_tensors, delta, __ATOMIC_RELAXED); }

int64_t empo_live_tensors(void) { return __atomic_load_n(&pool.live_tensors, __ATOMIC_RELAXED); }
int64_t empo_mem_live_bytes(void) { return pool.live; }
int64_t empo_mem_all_live_bytes(void) { return pool.live + device_pool.live; }
int64_t empo_mem_cached_bytes(void) { return pool.cached; }
int64_t empo_mem_peak_bytes(void) { return pool.peak; }

void empo_mem_reset_peak(void) {
    pthread_mutex_lock(&pool.lock);
    pool.peak = pool.live;
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_lock(&device_pool.lock);
    device_pool.peak = device_pool.live;
    pthread_mutex_unlock(&device_pool.lock);
}

int empo_mem_device(int device, empo_device_memory *m) {
    if (device != EMPO_CUDA) return empo_fail(EMPO_E_DEVICE, "memory: device %d has no pool (cuda: 1)", device);
    pthread_mutex_lock(&device_pool.lock);
    *m = (empo_device_memory){device_pool.live, device_pool.cached, device_pool.peak, device_pool.allocs};
    pthread_mutex_unlock(&device_pool.lock);
    return EMPO_OK;
}

/* the cache's blocks, largest classes first, back to the system until it
 * holds at most keep bytes (pool.lock held) */
static void trim_cache(int64_t keep) {
    for (int c = N_CLASSES - 1; c >= 0 && pool.cached > keep; c--) {
        while (pool.lists[c] && pool.cached > keep) {
            free_block *b = pool.lists[c];
            pool.lists[c] = b->next;
            pool.cached -= (int64_t)class_block(c);
            sys_free(b, class_block(c));
        }
    }
}

int64_t empo_mem_set_cache_limit(int64_t bytes) {
    pthread_mutex_lock(&pool.lock);
    const int64_t prev = cache_limit();
    pool.limit = bytes > 0 ? bytes : 0;
    trim_cache(pool.limit);
    pthread_mutex_unlock(&pool.lock);
    return prev;
}

int64_t empo_mem_set_total_limit(int64_t bytes) {
    pthread_mutex_lock(&pool.lock);
    const int64_t prev = pool.total_limit;
    pool.total_limit = bytes > 0 ? bytes : 0;
    if (pool.total_limit && pool.live + pool.cached > pool.total_limit) trim_cache(pool.total_limit - pool.live);
    pthread_mutex_unlock(&pool.lock);
    return prev;
}

void empo_mem_empty_cache(void) {
    pthread_mutex_lock(&pool.lock);
    trim_cache(0);
    pthread_mutex_unlock(&pool.lock);
    pthread_mutex_lock(&device_pool.lock);
    if (device_pool.cached) device_pool_drain(empo_kernels_device(EMPO_CUDA)->device);
    pthread_mutex_unlock(&device_pool.lock);
}
