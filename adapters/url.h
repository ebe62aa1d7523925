/* A small URL parser for store URLs (PRIVATE), shared by every backend.
 *
 *   scheme:[//[user[:password]@]host[:port]][/path][?query]
 *
 * scheme    letter, then letters, digits, '+', '-', '.'; returned lower case.
 * authority present when "//" follows the scheme; then a host is required
 *           ("redis://" alone is malformed). host is a name, an IPv4 address
 *           or an IPv6 address in brackets (returned without them, zone
 *           included: "[fe80::1%25eth0]" -> "fe80::1%eth0"). port: 1..65535,
 *           digits only; "host:" is malformed. userinfo ends at the LAST '@'
 *           of the authority and splits at its first ':'; an empty user is
 *           NULL, a present but empty password is "".
 * path      after the authority's '/', or everything after "scheme:" when
 *           there is no authority; without the leading '/'; NULL when empty.
 * query     '&'-separated key[=value] pairs (empty pairs skipped, an empty
 *           key is malformed, a missing value is "").
 * Every component is percent-decoded ('+' stays '+'); a bad escape, an
 * escaped NUL, a space or control character, or a fragment ('#') makes the
 * URL malformed. Strings point into one allocation owned by the rs__url. */
#ifndef RS_ADAPTERS_URL_H
#define RS_ADAPTERS_URL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct rs__url_param {
    char *key, *value;
} rs__url_param;

typedef struct rs__url {
    char *scheme;          /* lower case; never NULL after a successful parse */
    bool has_authority;    /* "//" followed the scheme */
    char *user;            /* NULL when absent or empty */
    char *password;        /* NULL when absent */
    char *host;            /* NULL without authority */
    bool host_is_ipv6;     /* host came in brackets */
    int port;              /* 0 when absent */
    char *path;            /* NULL when absent or empty */
    bool has_query;        /* a '?' was present, even with nothing after it */
    rs__url_param *params; /* the query, in order */
    size_t nparams;
    char *buf_;            /* the allocation behind every string */
} rs__url;

/* 0, -EINVAL (NULL or malformed), -ENOMEM. On failure *u holds nothing to free. */
int rs__url_parse(const char *text, rs__url *u);
void rs__url_free(rs__url *u);

/* The value of the first query parameter named key, or NULL. */
const char *rs__url_query(const rs__url *u, const char *key);

#endif
