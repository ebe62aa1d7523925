/* ringscope lock stores: where distributed locks live. The URL's scheme
 * selects the backend: memory:, redis://, postgresql://, mysql://, mongodb://.
 * Expiry is always decided by the store's clock. */
#ifndef RINGSCOPE_STORE_H
#define RINGSCOPE_STORE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rs_store rs_store;
typedef enum { RS_LOCK_EXCLUSIVE = 0, RS_LOCK_READ = 1, RS_LOCK_WRITE = 2 } rs_lock_mode;

typedef struct rs_store_opts {
    const char *key_prefix;     /* namespace for every key; NULL -> "ringscope:" */
    unsigned pool_size;         /* connections; 0 -> 4 */
    int64_t connect_timeout_ms; /* 0 -> 5000 */
    int64_t op_timeout_ms;      /* 0 -> 5000 */
} rs_store_opts;

int rs_store_open(const char *url, const rs_store_opts *opts, rs_store **out);
/* -EBUSY (and stays open) while lock objects, a running runtime or an open scope use it */
int rs_store_close(rs_store *st);

int rs_store_acquire(rs_store *st, const char *key, rs_lock_mode mode, const char *owner, int64_t ttl_ms,
                     uint64_t *token); /* 0 or -EBUSY */
int rs_store_release(rs_store *st, const char *key, rs_lock_mode mode, const char *owner); /* 0 or -ENOLCK */
int rs_store_extend(rs_store *st, const char *key, rs_lock_mode mode, const char *owner,
                    int64_t ttl_ms); /* 0 or -ENOLCK */
int rs_store_force_release(rs_store *st, const char *key); /* no owner check */

typedef struct rs_lock_info {
    rs_lock_mode mode;
    unsigned holders;
    char owner[256];
    int64_t ttl_left_ms;
    uint64_t token;
} rs_lock_info;
int rs_store_inspect(rs_store *st, const char *key, rs_lock_info *info); /* 0, or -ENOENT if free */

#ifdef __cplusplus
}
#endif

#endif
