/* The store contract (ringscope/store.h, API.md "Lock stores"), one suite for
 * every backend.
 *
 * Each test runs its body once per store URL: always "memory:", then every
 * URL listed (space-separated) in RS_TEST_STORE_URLS, for example
 *   RS_TEST_STORE_URLS="redis://127.0.0.1:6390 postgresql://u:p@127.0.0.1:5440/db"
 * A new backend needs no change here: list its URL. Every run of a body gets
 * a store handle with a fresh key prefix, so runs never see each other's
 * keys (also on a server that outlives the test). */
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "support.h"

#define MAX_URLS 16
#define LONG_TTL 30000

typedef struct contract {
    rs_store *st;
    const char *url;
    const char *prefix;
    int (*body)(struct contract *c);
} contract;

/* "memory:" first, then the environment's list without repeating it. */
static size_t store_urls(const char *urls[MAX_URLS], char *buf, size_t bufsz)
{
    size_t n = 0;
    urls[n++] = "memory:";
    const char *env = getenv("RS_TEST_STORE_URLS");
    if (!env)
        return n;
    cr_assert(strlen(env) < bufsz, "RS_TEST_STORE_URLS is too long");
    strcpy(buf, env);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t\n", &save); tok; tok = strtok_r(NULL, " \t\n", &save)) {
        if (strcmp(tok, "memory:") == 0)
            continue;
        cr_assert(n < MAX_URLS, "RS_TEST_STORE_URLS lists more than %d URLs", MAX_URLS - 1);
        urls[n++] = tok;
    }
    return n;
}

static int contract_main(void *arg)
{
    contract *c = arg;
    return c->body(c);
}

static void for_each_store(int (*body)(contract *c))
{
    static unsigned seq;
    char buf[4096];
    const char *urls[MAX_URLS];
    size_t n = store_urls(urls, buf, sizeof buf);
    for (size_t i = 0; i < n; i++) {
        char prefix[96];
        snprintf(prefix, sizeof prefix, "rs-contract:%ld:%ld:%u:", (long)getpid(), (long)time(NULL), seq++);
        rs_store *st = NULL;
        int rc = rs_store_open(urls[i], &(rs_store_opts){ .key_prefix = prefix }, &st);
        cr_assert_eq(rc, 0, "rs_store_open(\"%s\") returned %d (%s)", urls[i], rc, rs_strerror(rc));
        contract c = { .st = st, .url = urls[i], .prefix = prefix, .body = body };
        rc = rs_run(contract_main, &c, NULL);
        cr_expect_eq(rc, 0, "store %s: the contract failed (%d)", urls[i], rc);
        cr_assert_eq(rs_store_close(st), 0, "store %s: close failed", urls[i]);
        if (rc)
            cr_assert_fail("store %s failed", urls[i]);
    }
}

#define CONTRACT(name, seconds)                                                                               \
    static int name##_body(contract *c);                                                                      \
    Test(store_contract, name, .timeout = (seconds))                                                          \
    {                                                                                                         \
        for_each_store(name##_body);                                                                          \
    }                                                                                                         \
    static int name##_body(contract *c)

/* ------------------------------------------------------------ basics */

CONTRACT(acquire_release, 30)
{
    uint64_t tok = 0;
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", LONG_TTL, &tok));
    RS_CHECK(tok > 0);
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(c->st, "k", &info));
    RS_CHECK_EQ(info.mode, RS_LOCK_EXCLUSIVE);
    RS_CHECK_EQ(info.holders, 1);
    RS_CHECK(strcmp(info.owner, "A") == 0);
    RS_CHECK_EQ(info.token, tok);
    RS_CHECK(info.ttl_left_ms > 0 && info.ttl_left_ms <= LONG_TTL);
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "A"));
    RS_CHECK_EQ(rs_store_inspect(c->st, "k", &info), -ENOENT);
    RS_CHECK_EQ(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "A"), -ENOLCK);
    /* free again: anyone may take it */
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "B", LONG_TTL, NULL));
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "B"));
    return 0;
}

CONTRACT(other_owner_is_busy, 30)
{
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", LONG_TTL, NULL));
    uint64_t tok = 7;
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "B", LONG_TTL, &tok), -EBUSY);
    RS_CHECK_EQ(tok, 7); /* untouched on failure */
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_WRITE, "B", LONG_TTL, NULL), -EBUSY);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_READ, "B", LONG_TTL, NULL), -EBUSY);
    /* another key is another lock */
    RS_CHECK_OK(rs_store_acquire(c->st, "k2", RS_LOCK_EXCLUSIVE, "B", LONG_TTL, NULL));
    RS_CHECK_OK(rs_store_release(c->st, "k2", RS_LOCK_EXCLUSIVE, "B"));
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "A"));
    return 0;
}

CONTRACT(ttl_expiry_lets_another_owner_in, 30)
{
    uint64_t t1, t2;
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 300, &t1));
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "B", 300, NULL), -EBUSY);
    RS_CHECK_OK(rs_sleep(450));
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(c->st, "k", &info), -ENOENT);
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "B", LONG_TTL, &t2));
    RS_CHECK(t2 > t1);
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "B"));
    return 0;
}

CONTRACT(extend_keeps_the_lease, 30)
{
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 300, NULL));
    for (int i = 0; i < 5; i++) { /* 750 ms in all: well past the first 300 ms */
        RS_CHECK_OK(rs_sleep(150));
        RS_CHECK_OK(rs_store_extend(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 300));
    }
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "B", 300, NULL), -EBUSY);
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(c->st, "k", &info));
    RS_CHECK(strcmp(info.owner, "A") == 0);
    RS_CHECK(info.ttl_left_ms > 0 && info.ttl_left_ms <= 300);
    /* extend sets the end ttl from now, longer or shorter */
    RS_CHECK_OK(rs_store_extend(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 20000));
    RS_CHECK_OK(rs_store_inspect(c->st, "k", &info));
    RS_CHECK(info.ttl_left_ms > 10000);
    RS_CHECK_OK(rs_store_extend(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 1000));
    RS_CHECK_OK(rs_store_inspect(c->st, "k", &info));
    RS_CHECK(info.ttl_left_ms <= 1000);
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "A"));
    /* an ended lease is never revived by extend */
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 200, NULL));
    RS_CHECK_OK(rs_sleep(350));
    RS_CHECK_EQ(rs_store_extend(c->st, "k", RS_LOCK_EXCLUSIVE, "A", LONG_TTL), -ENOLCK);
    RS_CHECK_EQ(rs_store_inspect(c->st, "k", &info), -ENOENT);
    return 0;
}

CONTRACT(inspect_reports_the_holders, 30)
{
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(c->st, "k", &info), -ENOENT);
    uint64_t tw;
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_WRITE, "W", 5000, &tw));
    RS_CHECK_OK(rs_store_inspect(c->st, "k", &info));
    RS_CHECK_EQ(info.mode, RS_LOCK_WRITE);
    RS_CHECK_EQ(info.holders, 1);
    RS_CHECK(strcmp(info.owner, "W") == 0);
    RS_CHECK_EQ(info.token, tw);
    RS_CHECK(info.ttl_left_ms > 4000 && info.ttl_left_ms <= 5000);
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_WRITE, "W"));

    uint64_t t[3];
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_READ, "r0", 2000, &t[0]));
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_READ, "r1", 9000, &t[1]));
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_READ, "r2", 4000, &t[2]));
    RS_CHECK_OK(rs_store_inspect(c->st, "k", &info));
    RS_CHECK_EQ(info.mode, RS_LOCK_READ);
    RS_CHECK_EQ(info.holders, 3);
    RS_CHECK(strcmp(info.owner, "r0") == 0 || strcmp(info.owner, "r1") == 0 || strcmp(info.owner, "r2") == 0);
    RS_CHECK(info.ttl_left_ms > 8000 && info.ttl_left_ms <= 9000); /* the longest lease */
    RS_CHECK(info.token == t[0] || info.token == t[1] || info.token == t[2]);
    for (int i = 0; i < 3; i++) {
        char owner[8];
        snprintf(owner, sizeof owner, "r%d", i);
        RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_READ, owner));
    }
    RS_CHECK_EQ(rs_store_inspect(c->st, "k", &info), -ENOENT);
    return 0;
}

CONTRACT(force_release_ignores_the_owner, 30)
{
    uint64_t ta, tb;
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", LONG_TTL, &ta));
    RS_CHECK_OK(rs_store_force_release(c->st, "k"));
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(c->st, "k", &info), -ENOENT);
    RS_CHECK_EQ(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "A"), -ENOLCK);
    RS_CHECK_EQ(rs_store_extend(c->st, "k", RS_LOCK_EXCLUSIVE, "A", LONG_TTL), -ENOLCK);
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "B", LONG_TTL, &tb));
    RS_CHECK(tb > ta);
    RS_CHECK_OK(rs_store_force_release(c->st, "k"));
    RS_CHECK_OK(rs_store_force_release(c->st, "k")); /* free already: still fine */
    /* readers too, all of them */
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_READ, "r1", LONG_TTL, NULL));
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_READ, "r2", LONG_TTL, NULL));
    RS_CHECK_OK(rs_store_force_release(c->st, "k"));
    RS_CHECK_EQ(rs_store_inspect(c->st, "k", &info), -ENOENT);
    RS_CHECK_EQ(rs_store_release(c->st, "k", RS_LOCK_READ, "r1"), -ENOLCK);
    return 0;
}

/* ------------------------------------------------------------ concurrency */

typedef struct racer {
    contract *c;
    char owner[16];
    int rc;
    uint64_t token;
} racer;

static int race_once(void *arg)
{
    racer *r = arg;
    r->rc = rs_store_acquire(r->c->st, "race", RS_LOCK_EXCLUSIVE, r->owner, LONG_TTL, &r->token);
    return 0;
}

CONTRACT(five_concurrent_owners_one_winner, 30)
{
    racer r[5];
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < 5; i++) {
        r[i] = (racer){ .c = c, .rc = 1 };
        snprintf(r[i].owner, sizeof r[i].owner, "racer-%d", i);
        RS_CHECK_OK(rs_spawn(s, race_once, &r[i], NULL, NULL));
    }
    RS_CHECK_OK(rs_scope_close(s));
    int winners = 0, winner = -1;
    for (int i = 0; i < 5; i++) {
        if (r[i].rc == 0) {
            winners++;
            winner = i;
        } else {
            RS_CHECK_EQ(r[i].rc, -EBUSY);
        }
    }
    RS_CHECK_EQ(winners, 1);
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(c->st, "race", &info));
    RS_CHECK(strcmp(info.owner, r[winner].owner) == 0);
    RS_CHECK_EQ(info.token, r[winner].token);
    RS_CHECK_OK(rs_store_release(c->st, "race", RS_LOCK_EXCLUSIVE, r[winner].owner));
    return 0;
}

CONTRACT(same_owner_reacquires_the_same_lease, 30)
{
    static const rs_lock_mode modes[] = { RS_LOCK_EXCLUSIVE, RS_LOCK_WRITE, RS_LOCK_READ };
    for (int m = 0; m < 3; m++) {
        uint64_t t1, t2;
        RS_CHECK_OK(rs_store_acquire(c->st, "k", modes[m], "A", 1000, &t1));
        RS_CHECK_OK(rs_store_acquire(c->st, "k", modes[m], "A", 20000, &t2));
        RS_CHECK_EQ(t2, t1);
        rs_lock_info info;
        RS_CHECK_OK(rs_store_inspect(c->st, "k", &info));
        RS_CHECK_EQ(info.holders, 1);
        RS_CHECK(info.ttl_left_ms > 10000); /* refreshed */
        RS_CHECK_OK(rs_store_release(c->st, "k", modes[m], "A")); /* one release frees it */
        RS_CHECK_EQ(rs_store_inspect(c->st, "k", &info), -ENOENT);
    }
    /* after its own lease ended, the same owner gets a new grant */
    uint64_t t1, t2;
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 200, &t1));
    RS_CHECK_OK(rs_sleep(350));
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", LONG_TTL, &t2));
    RS_CHECK(t2 > t1);
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "A"));
    return 0;
}

CONTRACT(non_owner_and_taken_over_leases_are_untouched, 30)
{
    uint64_t ta, tb;
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", LONG_TTL, &ta));
    RS_CHECK_EQ(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "B"), -ENOLCK);
    RS_CHECK_EQ(rs_store_extend(c->st, "k", RS_LOCK_EXCLUSIVE, "B", LONG_TTL), -ENOLCK);
    RS_CHECK_EQ(rs_store_release(c->st, "k", RS_LOCK_READ, "A"), -ENOLCK); /* wrong class */
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(c->st, "k", &info));
    RS_CHECK(strcmp(info.owner, "A") == 0);
    RS_CHECK_EQ(info.token, ta);
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "A"));

    /* A's lease ends, B takes over: A can neither release nor extend B's */
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 200, &ta));
    RS_CHECK_OK(rs_sleep(350));
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "B", 5000, &tb));
    RS_CHECK_EQ(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "A"), -ENOLCK);
    RS_CHECK_EQ(rs_store_extend(c->st, "k", RS_LOCK_EXCLUSIVE, "A", LONG_TTL), -ENOLCK);
    RS_CHECK_OK(rs_store_inspect(c->st, "k", &info));
    RS_CHECK(strcmp(info.owner, "B") == 0);
    RS_CHECK_EQ(info.token, tb);
    RS_CHECK(info.ttl_left_ms <= 5000); /* A's extend did not touch it */
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, "B"));
    return 0;
}

CONTRACT(tokens_strictly_increase, 30)
{
    uint64_t last = 0, t;
    for (int i = 0; i < 4; i++) { /* release, then another owner */
        const char *owner = i % 2 ? "B" : "A";
        RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, owner, LONG_TTL, &t));
        RS_CHECK(t > last);
        last = t;
        RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, owner));
    }
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 200, &t)); /* after expiry */
    RS_CHECK(t > last);
    last = t;
    RS_CHECK_OK(rs_sleep(350));
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "B", LONG_TTL, &t));
    RS_CHECK(t > last);
    last = t;
    RS_CHECK_OK(rs_store_force_release(c->st, "k")); /* after force_release */
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_READ, "r1", LONG_TTL, &t));
    RS_CHECK(t > last);
    last = t;
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_READ, "r2", LONG_TTL, &t)); /* each reader's grant */
    RS_CHECK(t > last);
    RS_CHECK_OK(rs_store_force_release(c->st, "k"));
    return 0;
}

CONTRACT(read_mode_shares_and_excludes_writers, 30)
{
    uint64_t t[3];
    for (int i = 0; i < 3; i++) {
        char owner[8];
        snprintf(owner, sizeof owner, "r%d", i);
        RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_READ, owner, LONG_TTL, &t[i]));
        RS_CHECK(i == 0 || t[i] > t[i - 1]);
    }
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_WRITE, "W", LONG_TTL, NULL), -EBUSY);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "W", LONG_TTL, NULL), -EBUSY);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_WRITE, "r0", LONG_TTL, NULL), -EBUSY); /* no upgrade */
    rs_lock_info info;
    RS_CHECK_OK(rs_store_inspect(c->st, "k", &info));
    RS_CHECK_EQ(info.holders, 3);
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_READ, "r0"));
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_READ, "r1"));
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_WRITE, "W", LONG_TTL, NULL), -EBUSY);
    RS_CHECK_OK(rs_store_extend(c->st, "k", RS_LOCK_READ, "r2", LONG_TTL));
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_READ, "r2"));
    uint64_t tw;
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_WRITE, "W", LONG_TTL, &tw));
    RS_CHECK(tw > t[2]);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_READ, "r3", LONG_TTL, NULL), -EBUSY);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_READ, "W", LONG_TTL, NULL), -EBUSY); /* no downgrade */
    RS_CHECK_OK(rs_store_release(c->st, "k", RS_LOCK_WRITE, "W"));
    return 0;
}

/* ------------------------------------------------------------ arguments */

CONTRACT(bad_arguments_are_einval, 30)
{
    char key512[513], key513[514], owner256[257];
    memset(key512, 'k', 512);
    key512[512] = '\0';
    memset(key513, 'k', 513);
    key513[513] = '\0';
    memset(owner256, 'o', 256);
    owner256[256] = '\0';
    rs_lock_info info;

    RS_CHECK_EQ(rs_store_acquire(NULL, "k", RS_LOCK_EXCLUSIVE, "A", 1000, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_acquire(c->st, NULL, RS_LOCK_EXCLUSIVE, "A", 1000, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_acquire(c->st, "", RS_LOCK_EXCLUSIVE, "A", 1000, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_acquire(c->st, key513, RS_LOCK_EXCLUSIVE, "A", 1000, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 0, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", -5, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, NULL, 1000, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "", 1000, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, owner256, 1000, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", (rs_lock_mode)3, "A", 1000, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_acquire(c->st, "k", (rs_lock_mode)-1, "A", 1000, NULL), -EINVAL);

    RS_CHECK_EQ(rs_store_release(NULL, "k", RS_LOCK_EXCLUSIVE, "A"), -EINVAL);
    RS_CHECK_EQ(rs_store_release(c->st, "", RS_LOCK_EXCLUSIVE, "A"), -EINVAL);
    RS_CHECK_EQ(rs_store_release(c->st, key513, RS_LOCK_EXCLUSIVE, "A"), -EINVAL);
    RS_CHECK_EQ(rs_store_release(c->st, "k", RS_LOCK_EXCLUSIVE, NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_release(c->st, "k", (rs_lock_mode)9, "A"), -EINVAL);
    RS_CHECK_EQ(rs_store_extend(c->st, "k", RS_LOCK_EXCLUSIVE, "A", 0), -EINVAL);
    RS_CHECK_EQ(rs_store_extend(c->st, "k", RS_LOCK_EXCLUSIVE, "A", -1), -EINVAL);
    RS_CHECK_EQ(rs_store_extend(c->st, NULL, RS_LOCK_EXCLUSIVE, "A", 100), -EINVAL);
    RS_CHECK_EQ(rs_store_extend(c->st, "k", RS_LOCK_EXCLUSIVE, "", 100), -EINVAL);
    RS_CHECK_EQ(rs_store_force_release(NULL, "k"), -EINVAL);
    RS_CHECK_EQ(rs_store_force_release(c->st, ""), -EINVAL);
    RS_CHECK_EQ(rs_store_inspect(c->st, "k", NULL), -EINVAL);
    RS_CHECK_EQ(rs_store_inspect(c->st, key513, &info), -EINVAL);
    RS_CHECK_EQ(rs_store_inspect(NULL, "k", &info), -EINVAL);

    /* the limit counts the key without the prefix: 512 bytes are fine */
    uint64_t t;
    RS_CHECK_OK(rs_store_acquire(c->st, key512, RS_LOCK_EXCLUSIVE, owner256 + 1, 1000, &t));
    RS_CHECK_OK(rs_store_inspect(c->st, key512, &info));
    RS_CHECK(strcmp(info.owner, owner256 + 1) == 0);
    RS_CHECK_OK(rs_store_release(c->st, key512, RS_LOCK_EXCLUSIVE, owner256 + 1));
    return 0;
}

CONTRACT(metacharacter_keys_are_plain_keys, 30)
{
    static const char *const keys[] = {
        "it's",                          "say \"hi\"",        "'; DROP TABLE rs_locks; --",
        "\" OR 1=1 --",                  "x' OR 'x'='x",      "redis.call('FLUSHALL')",
        "]] return 1 --[[",              "KEYS[1]",           "*",
        "?",                             "[a-z]",             "%",
        "_",                             "{tag}",             "\\",
        "$where",                        "{\"$gt\": \"\"}",   "a\tb c",
        "\xc3\xa9t\xc3\xa9",             "-- comment",        "/* c */",
        "k:*:k",                         "0",                 "NULL",
    };
    size_t n = sizeof keys / sizeof keys[0];
    uint64_t tokens[sizeof keys / sizeof keys[0]];
    for (size_t i = 0; i < n; i++) {
        /* the owner is hostile too */
        RS_CHECK_OK(rs_store_acquire(c->st, keys[i], RS_LOCK_EXCLUSIVE, keys[n - 1 - i], LONG_TTL, &tokens[i]));
    }
    for (size_t i = 0; i < n; i++) {
        rs_lock_info info;
        RS_CHECK_OK(rs_store_inspect(c->st, keys[i], &info));
        RS_CHECK(strcmp(info.owner, keys[n - 1 - i]) == 0);
        RS_CHECK_EQ(info.token, tokens[i]);
        RS_CHECK_EQ(info.holders, 1);
    }
    /* a pattern-looking key matches nothing but itself */
    RS_CHECK_OK(rs_store_release(c->st, "*", RS_LOCK_EXCLUSIVE, keys[n - 1 - 8]));
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(c->st, "*", &info), -ENOENT);
    RS_CHECK_OK(rs_store_inspect(c->st, "k:*:k", &info));
    RS_CHECK_OK(rs_store_acquire(c->st, "plain", RS_LOCK_EXCLUSIVE, "A", LONG_TTL, NULL));
    RS_CHECK_OK(rs_store_release(c->st, "plain", RS_LOCK_EXCLUSIVE, "A"));
    for (size_t i = 0; i < n; i++) {
        if (i == 8)
            continue;
        RS_CHECK_OK(rs_store_release(c->st, keys[i], RS_LOCK_EXCLUSIVE, keys[n - 1 - i]));
        RS_CHECK_EQ(rs_store_inspect(c->st, keys[i], &info), -ENOENT);
    }
    return 0;
}

CONTRACT(prefix_separates_handles, 30)
{
    /* the same key under another prefix is another lock; under the same prefix, the same lock */
    rs_store *other, *same;
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%sother:", c->prefix);
    RS_CHECK_OK(rs_store_open(c->url, &(rs_store_opts){ .key_prefix = prefix }, &other));
    RS_CHECK_OK(rs_store_open(c->url, &(rs_store_opts){ .key_prefix = c->prefix }, &same));
    RS_CHECK_OK(rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", LONG_TTL, NULL));
    int busy = rs_store_acquire(same, "k", RS_LOCK_EXCLUSIVE, "B", LONG_TTL, NULL);
    int free_rc = rs_store_acquire(other, "k", RS_LOCK_EXCLUSIVE, "B", LONG_TTL, NULL);
    int rel_other = rs_store_release(other, "k", RS_LOCK_EXCLUSIVE, "B");
    int rel_same = rs_store_release(same, "k", RS_LOCK_EXCLUSIVE, "A");
    RS_CHECK_OK(rs_store_close(other));
    RS_CHECK_OK(rs_store_close(same));
    RS_CHECK_EQ(busy, -EBUSY);
    RS_CHECK_EQ(free_rc, 0);
    RS_CHECK_EQ(rel_other, 0);
    RS_CHECK_EQ(rel_same, 0); /* A's lease, released through the other handle */
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(c->st, "k", &info), -ENOENT);
    return 0;
}

CONTRACT(cancelled_task_gets_ecanceled, 30)
{
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    rs_scope_cancel(s);
    int rc = rs_store_acquire(c->st, "k", RS_LOCK_EXCLUSIVE, "A", LONG_TTL, NULL);
    RS_CHECK_OK(rs_scope_close(s));
    RS_CHECK_EQ(rc, -ECANCELED);
    rs_lock_info info;
    RS_CHECK_EQ(rs_store_inspect(c->st, "k", &info), -ENOENT);
    return 0;
}

Test(store_contract, outside_a_task_is_eperm, .timeout = 30)
{
    char buf[4096];
    const char *urls[MAX_URLS];
    size_t n = store_urls(urls, buf, sizeof buf);
    for (size_t i = 0; i < n; i++) {
        rs_store *st;
        cr_assert_eq(rs_store_open(urls[i], NULL, &st), 0, "open %s", urls[i]);
        rs_lock_info info;
        cr_expect_eq(rs_store_acquire(st, "k", RS_LOCK_EXCLUSIVE, "A", 1000, NULL), -EPERM, "%s", urls[i]);
        cr_expect_eq(rs_store_release(st, "k", RS_LOCK_EXCLUSIVE, "A"), -EPERM, "%s", urls[i]);
        cr_expect_eq(rs_store_extend(st, "k", RS_LOCK_EXCLUSIVE, "A", 1000), -EPERM, "%s", urls[i]);
        cr_expect_eq(rs_store_force_release(st, "k"), -EPERM, "%s", urls[i]);
        cr_expect_eq(rs_store_inspect(st, "k", &info), -EPERM, "%s", urls[i]);
        /* bad arguments are still bad arguments */
        cr_expect_eq(rs_store_acquire(st, "", RS_LOCK_EXCLUSIVE, "A", 1000, NULL), -EINVAL, "%s", urls[i]);
        cr_assert_eq(rs_store_close(st), 0);
    }
}
