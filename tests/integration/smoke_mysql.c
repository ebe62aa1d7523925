/* Smoke test: the MariaDB test server of scripts/services answers a plain Connector/C client. */
#include <criterion/criterion.h>
#include <mysql.h>
#include <stdlib.h>
#include <string.h>

struct mysql_url {
    char user[64];
    char password[64];
    char host[256];
    unsigned port;
    char database[64];
};

/* Copies [begin, end) into dst; false when it does not fit or is empty. */
static bool copy_part(char *dst, size_t dst_len, const char *begin, const char *end)
{
    size_t n = (size_t)(end - begin);
    if (n == 0 || n >= dst_len)
        return false;
    memcpy(dst, begin, n);
    dst[n] = '\0';
    return true;
}

/* Parses mysql://USER:PASSWORD@HOST:PORT/DATABASE (no escapes: the test URLs have none). */
static bool parse_mysql_url(const char *url, struct mysql_url *out)
{
    const char *prefix = "mysql://";
    if (strncmp(url, prefix, strlen(prefix)) != 0)
        return false;
    const char *user = url + strlen(prefix);
    const char *at = strchr(user, '@');
    const char *colon = at ? memchr(user, ':', (size_t)(at - user)) : NULL;
    if (!at || !colon)
        return false;
    const char *host = at + 1;
    const char *slash = strchr(host, '/');
    const char *port = slash ? memchr(host, ':', (size_t)(slash - host)) : NULL;
    if (!slash || !port)
        return false;
    char *end;
    unsigned long p = strtoul(port + 1, &end, 10);
    if (end != slash || p == 0 || p > 65535)
        return false;
    out->port = (unsigned)p;
    return copy_part(out->user, sizeof out->user, user, colon) &&
           copy_part(out->password, sizeof out->password, colon + 1, at) &&
           copy_part(out->host, sizeof out->host, host, port) &&
           copy_part(out->database, sizeof out->database, slash + 1, slash + 1 + strlen(slash + 1));
}

static MYSQL *connect_from_env(void)
{
    const char *url = getenv("RS_TEST_MYSQL_URL");
    cr_assert_not_null(url, "RS_TEST_MYSQL_URL is not set: start the test servers with scripts/services start "
                            "and export the output of scripts/services env");
    struct mysql_url u;
    cr_assert(parse_mysql_url(url, &u), "RS_TEST_MYSQL_URL is not mysql://USER:PASSWORD@HOST:PORT/DB: %s", url);

    MYSQL *db = mysql_init(NULL);
    cr_assert_not_null(db, "mysql_init failed");
    unsigned timeout = 5;
    mysql_optionsv(db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_optionsv(db, MYSQL_OPT_READ_TIMEOUT, &timeout);
    mysql_optionsv(db, MYSQL_OPT_WRITE_TIMEOUT, &timeout);
    MYSQL *ok = mysql_real_connect(db, u.host, u.user, u.password, u.database, u.port, NULL, 0);
    cr_assert_not_null(ok, "cannot connect to %s: %s", url, mysql_error(db));
    return db;
}

static void query_ok(MYSQL *db, const char *sql)
{
    cr_assert_eq(mysql_query(db, sql), 0, "%s: %s", sql, mysql_error(db));
}

/* Runs a query that returns one row with one column and returns that value (caller frees). */
static char *query_value(MYSQL *db, const char *sql)
{
    query_ok(db, sql);
    MYSQL_RES *res = mysql_store_result(db);
    cr_assert_not_null(res, "%s: no result: %s", sql, mysql_error(db));
    cr_assert_eq(mysql_num_rows(res), 1, "%s: expected one row", sql);
    MYSQL_ROW row = mysql_fetch_row(res);
    cr_assert_not_null(row[0], "%s: NULL value", sql);
    char *value = strdup(row[0]);
    mysql_free_result(res);
    return value;
}

Test(smoke_mysql, select_one, .timeout = 20)
{
    MYSQL *db = connect_from_env();
    char *v = query_value(db, "SELECT 1");
    cr_assert_str_eq(v, "1");
    free(v);
    v = query_value(db, "SELECT DATABASE()");
    cr_assert_str_eq(v, "ringscope");
    free(v);
    mysql_close(db);
}

Test(smoke_mysql, table_round_trip, .timeout = 20)
{
    MYSQL *db = connect_from_env();
    query_ok(db, "CREATE TEMPORARY TABLE smoke (k VARCHAR(64) PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB");
    query_ok(db, "INSERT INTO smoke (k, v) VALUES ('key', 42)");
    cr_assert_eq(mysql_affected_rows(db), 1);
    char *v = query_value(db, "SELECT v + 1 FROM smoke WHERE k = 'key'");
    cr_assert_str_eq(v, "43");
    free(v);
    mysql_close(db);
}
