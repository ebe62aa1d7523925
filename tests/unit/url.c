/* The store URL parser (adapters/url.h): components, decoding, malformed input. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "adapters/url.h"

static rs__url parse_ok(const char *text)
{
    rs__url u;
    int rc = rs__url_parse(text, &u);
    cr_assert_eq(rc, 0, "rs__url_parse(\"%s\") returned %d", text, rc);
    return u;
}

Test(url, memory_has_no_authority, .timeout = 5)
{
    rs__url u = parse_ok("memory:");
    cr_assert_str_eq(u.scheme, "memory");
    cr_assert(!u.has_authority);
    cr_assert_null(u.host);
    cr_assert_null(u.path);
    cr_assert_eq(u.nparams, 0);
    rs__url_free(&u);
}

Test(url, redis_full_form, .timeout = 5)
{
    rs__url u = parse_ok("redis://:s3cret@cache.local:6380/2");
    cr_assert_str_eq(u.scheme, "redis");
    cr_assert_null(u.user);
    cr_assert_str_eq(u.password, "s3cret");
    cr_assert_str_eq(u.host, "cache.local");
    cr_assert_eq(u.port, 6380);
    cr_assert_str_eq(u.path, "2");
    rs__url_free(&u);
}

Test(url, host_only_leaves_defaults, .timeout = 5)
{
    rs__url u = parse_ok("redis://127.0.0.1");
    cr_assert_str_eq(u.host, "127.0.0.1");
    cr_assert_eq(u.port, 0);
    cr_assert_null(u.user);
    cr_assert_null(u.password);
    cr_assert_null(u.path);
    rs__url_free(&u);

    u = parse_ok("redis://h/");
    cr_assert_str_eq(u.host, "h");
    cr_assert_null(u.path);
    rs__url_free(&u);
}

Test(url, user_password_database_and_query, .timeout = 5)
{
    rs__url u = parse_ok("postgresql://app:pw@db.example:5432/locks?sslmode=disable&connect_timeout=3&flag");
    cr_assert_str_eq(u.scheme, "postgresql");
    cr_assert_str_eq(u.user, "app");
    cr_assert_str_eq(u.password, "pw");
    cr_assert_str_eq(u.host, "db.example");
    cr_assert_eq(u.port, 5432);
    cr_assert_str_eq(u.path, "locks");
    cr_assert_eq(u.nparams, 3);
    cr_assert_str_eq(rs__url_query(&u, "sslmode"), "disable");
    cr_assert_str_eq(rs__url_query(&u, "connect_timeout"), "3");
    cr_assert_str_eq(rs__url_query(&u, "flag"), "");
    cr_assert_null(rs__url_query(&u, "absent"));
    rs__url_free(&u);
}

Test(url, scheme_is_case_insensitive, .timeout = 5)
{
    rs__url u = parse_ok("MongoDB://H:27017/db");
    cr_assert_str_eq(u.scheme, "mongodb");
    cr_assert_str_eq(u.host, "H");
    rs__url_free(&u);
}

Test(url, percent_decoding_everywhere, .timeout = 5)
{
    rs__url u = parse_ok("mysql://us%40er:p%3Aa%2Fss%25@host:3306/my%20db?k%3D=v%26w");
    cr_assert_str_eq(u.user, "us@er");
    cr_assert_str_eq(u.password, "p:a/ss%");
    cr_assert_str_eq(u.path, "my db");
    cr_assert_eq(u.nparams, 1);
    cr_assert_str_eq(u.params[0].key, "k=");
    cr_assert_str_eq(u.params[0].value, "v&w");
    rs__url_free(&u);
}

Test(url, password_may_hold_an_unescaped_at, .timeout = 5)
{
    rs__url u = parse_ok("redis://user:p@ss@host:1");
    cr_assert_str_eq(u.user, "user");
    cr_assert_str_eq(u.password, "p@ss");
    cr_assert_str_eq(u.host, "host");
    rs__url_free(&u);
}

Test(url, empty_password_is_present, .timeout = 5)
{
    rs__url u = parse_ok("mysql://root:@h/db");
    cr_assert_str_eq(u.user, "root");
    cr_assert_str_eq(u.password, "");
    rs__url_free(&u);
}

Test(url, ipv6_in_brackets, .timeout = 5)
{
    rs__url u = parse_ok("redis://[::1]:6379/0");
    cr_assert_str_eq(u.host, "::1");
    cr_assert(u.host_is_ipv6);
    cr_assert_eq(u.port, 6379);
    rs__url_free(&u);

    u = parse_ok("redis://[fe80::1%25eth0]");
    cr_assert_str_eq(u.host, "fe80::1%eth0");
    cr_assert_eq(u.port, 0);
    rs__url_free(&u);

    u = parse_ok("postgresql://u@[2001:db8::7]/x");
    cr_assert_str_eq(u.user, "u");
    cr_assert_str_eq(u.host, "2001:db8::7");
    rs__url_free(&u);
}

Test(url, escaped_host_for_socket_paths, .timeout = 5)
{
    rs__url u = parse_ok("postgresql://%2Fvar%2Frun%2Fpostgresql/db");
    cr_assert_str_eq(u.host, "/var/run/postgresql");
    cr_assert_str_eq(u.path, "db");
    rs__url_free(&u);
}

Test(url, malformed_urls_are_einval, .timeout = 5)
{
    static const char *const bad[] = {
        "",                          /* no scheme */
        "redis",                     /* no colon */
        "://host",                   /* empty scheme */
        "1redis://h",                /* scheme must start with a letter */
        "re dis://h",                /* space */
        "redis://",                  /* authority without host */
        "redis:///0",                /* empty host */
        "redis://:pw@",              /* userinfo, no host */
        "redis://:pw@:6379",         /* port, no host */
        "redis://h:",                /* empty port */
        "redis://h:0",               /* port out of range */
        "redis://h:65536",           /* port out of range */
        "redis://h:123456",          /* too many digits */
        "redis://h:12a",             /* not a number */
        "redis://h:-1",              /* not a number */
        "redis://[::1",              /* unclosed bracket */
        "redis://[::1]x",            /* garbage after bracket */
        "redis://[zz::1]",           /* not an IPv6 address */
        "redis://[]",                /* empty brackets */
        "redis://[fe80::1%25]",      /* empty zone */
        "redis://ho st",             /* space in host */
        "redis://h,k:1",             /* host lists are not supported */
        "redis://h/%zz",             /* bad escape */
        "redis://h/%4",              /* truncated escape */
        "redis://h/a%00b",           /* escaped NUL */
        "redis://h/db#frag",         /* fragment */
        "redis://h/db\n",            /* control character */
        "redis://h?=v",              /* empty query key */
        "redis://us%zzer@h",         /* bad escape in user */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rs__url u;
        int rc = rs__url_parse(bad[i], &u);
        cr_expect_eq(rc, -EINVAL, "\"%s\" gave %d, expected -EINVAL", bad[i], rc);
        if (rc == 0)
            rs__url_free(&u);
    }
}

Test(url, null_arguments_are_einval, .timeout = 5)
{
    rs__url u;
    cr_assert_eq(rs__url_parse(NULL, &u), -EINVAL);
    cr_assert_eq(rs__url_parse("memory:", NULL), -EINVAL);
    rs__url_free(NULL); /* harmless */
    cr_assert_null(rs__url_query(NULL, "x"));
}

Test(url, free_twice_is_harmless, .timeout = 5)
{
    rs__url u = parse_ok("redis://h:1/2?a=b");
    rs__url_free(&u);
    rs__url_free(&u);
}
