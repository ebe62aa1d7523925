/* Smoke test: the Redis test server of scripts/services answers a plain hiredis client. */
#include <criterion/criterion.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Parses redis://HOST:PORT[/DB] into host and port. */
static void parse_redis_url(const char *url, char *host, size_t host_len, int *port)
{
    const char *prefix = "redis://";
    cr_assert(strncmp(url, prefix, strlen(prefix)) == 0, "RS_TEST_REDIS_URL is not a redis:// URL: %s", url);
    const char *hp = url + strlen(prefix);
    const char *colon = strrchr(hp, ':');
    cr_assert_not_null(colon, "RS_TEST_REDIS_URL has no port: %s", url);
    size_t n = (size_t)(colon - hp);
    cr_assert(n > 0 && n < host_len, "RS_TEST_REDIS_URL has a bad host: %s", url);
    memcpy(host, hp, n);
    host[n] = '\0';
    *port = atoi(colon + 1);
    cr_assert(*port > 0 && *port < 65536, "RS_TEST_REDIS_URL has a bad port: %s", url);
}

static redisContext *connect_from_env(void)
{
    const char *url = getenv("RS_TEST_REDIS_URL");
    cr_assert_not_null(url, "RS_TEST_REDIS_URL is not set: start the test servers with scripts/services start "
                            "and export the output of scripts/services env");
    char host[256];
    int port;
    parse_redis_url(url, host, sizeof host, &port);
    struct timeval timeout = { .tv_sec = 5 };
    redisContext *c = redisConnectWithTimeout(host, port, timeout);
    cr_assert_not_null(c, "redisConnectWithTimeout returned NULL");
    cr_assert_eq(c->err, 0, "cannot connect to %s: %s", url, c->errstr);
    cr_assert_eq(redisSetTimeout(c, timeout), REDIS_OK, "redisSetTimeout failed");
    return c;
}

Test(smoke_redis, ping, .timeout = 20)
{
    redisContext *c = connect_from_env();
    redisReply *r = redisCommand(c, "PING");
    cr_assert_not_null(r, "PING failed: %s", c->errstr);
    cr_assert_eq(r->type, REDIS_REPLY_STATUS);
    cr_assert_str_eq(r->str, "PONG");
    freeReplyObject(r);
    redisFree(c);
}

Test(smoke_redis, set_get, .timeout = 20)
{
    redisContext *c = connect_from_env();
    char key[64];
    snprintf(key, sizeof key, "rs:smoke:%ld", (long)getpid());

    redisReply *r = redisCommand(c, "SET %s %s PX %d", key, "hello", 10000);
    cr_assert_not_null(r, "SET failed: %s", c->errstr);
    cr_assert_eq(r->type, REDIS_REPLY_STATUS);
    cr_assert_str_eq(r->str, "OK");
    freeReplyObject(r);

    r = redisCommand(c, "GET %s", key);
    cr_assert_not_null(r, "GET failed: %s", c->errstr);
    cr_assert_eq(r->type, REDIS_REPLY_STRING);
    cr_assert_str_eq(r->str, "hello");
    freeReplyObject(r);

    r = redisCommand(c, "DEL %s", key);
    cr_assert_not_null(r, "DEL failed: %s", c->errstr);
    cr_assert_eq(r->type, REDIS_REPLY_INTEGER);
    cr_assert_eq(r->integer, 1);
    freeReplyObject(r);
    redisFree(c);
}
