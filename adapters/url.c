/* Store URL parser; the accepted grammar is in url.h. */
#define _GNU_SOURCE
#include "adapters/url.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Output cursor into the rs__url's single buffer; decoded text never grows,
 * so the buffer needs the input length plus one NUL per component. */
typedef struct sink {
    char *cur;
} sink;

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes [s, e) into the sink. NULL for a bad or NUL escape. */
static char *decode(sink *k, const char *s, const char *e)
{
    char *start = k->cur;
    while (s < e) {
        if (*s != '%') {
            *k->cur++ = *s++;
            continue;
        }
        if (e - s < 3)
            return NULL;
        int hi = hexval(s[1]), lo = hexval(s[2]);
        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
            return NULL;
        *k->cur++ = (char)(hi * 16 + lo);
        s += 3;
    }
    *k->cur++ = '\0';
    return start;
}

static bool scheme_char(char c)
{
    return isalnum((unsigned char)c) || c == '+' || c == '-' || c == '.';
}

static bool host_char(char c)
{
    return isalnum((unsigned char)c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%';
}

/* Everything printable except the fragment marker; spaces and controls are
 * never part of a store URL. Bytes >= 0x80 (UTF-8 passwords) are allowed. */
static bool text_ok(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c <= 0x20 || c == 0x7f || c == '#')
            return false;
    }
    return true;
}

static int parse_port(const char *s, const char *e, int *port)
{
    if (s == e || e - s > 5)
        return -EINVAL;
    int v = 0;
    for (; s < e; s++) {
        if (!isdigit((unsigned char)*s))
            return -EINVAL;
        v = v * 10 + (*s - '0');
    }
    if (v < 1 || v > 65535)
        return -EINVAL;
    *port = v;
    return 0;
}

/* "[addr]" or "[addr%25zone]": the address must be a valid IPv6 literal. */
static int parse_ipv6(sink *k, const char *s, const char *e, rs__url *u)
{
    const char *zone = memmem(s, (size_t)(e - s), "%25", 3);
    const char *addr_end = zone ? zone : e;
    char addr[INET6_ADDRSTRLEN + 1];
    size_t n = (size_t)(addr_end - s);
    if (n == 0 || n >= sizeof addr)
        return -EINVAL;
    memcpy(addr, s, n);
    addr[n] = '\0';
    struct in6_addr bin;
    if (inet_pton(AF_INET6, addr, &bin) != 1)
        return -EINVAL;
    if (zone && zone + 3 == e)
        return -EINVAL; /* "%25" with no zone name */
    u->host = decode(k, s, e);
    u->host_is_ipv6 = true;
    return u->host ? 0 : -EINVAL;
}

static int parse_authority(sink *k, const char *s, const char *e, rs__url *u)
{
    const char *at = memrchr(s, '@', (size_t)(e - s));
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        const char *user_end = colon ? colon : at;
        if (user_end > s && !(u->user = decode(k, s, user_end)))
            return -EINVAL;
        if (colon && !(u->password = decode(k, colon + 1, at)))
            return -EINVAL;
        s = at + 1;
    }
    const char *host_end;
    if (s < e && *s == '[') {
        const char *rb = memchr(s, ']', (size_t)(e - s));
        if (!rb || parse_ipv6(k, s + 1, rb, u) != 0)
            return -EINVAL;
        host_end = rb + 1;
        if (host_end < e && *host_end != ':')
            return -EINVAL;
    } else {
        host_end = s;
        while (host_end < e && *host_end != ':') {
            if (!host_char(*host_end))
                return -EINVAL;
            host_end++;
        }
        if (host_end == s || !(u->host = decode(k, s, host_end)))
            return -EINVAL;
    }
    if (host_end < e)
        return parse_port(host_end + 1, e, &u->port);
    return 0;
}

static size_t count_params(const char *s)
{
    size_t n = 1;
    for (; *s; s++)
        n += *s == '&';
    return n;
}

static int parse_query(sink *k, const char *s, rs__url *u)
{
    u->params = calloc(count_params(s), sizeof *u->params);
    if (!u->params)
        return -ENOMEM;
    while (*s) {
        const char *amp = strchrnul(s, '&');
        if (amp > s) {
            const char *eq = memchr(s, '=', (size_t)(amp - s));
            const char *key_end = eq ? eq : amp;
            if (key_end == s)
                return -EINVAL;
            rs__url_param *p = &u->params[u->nparams++];
            p->key = decode(k, s, key_end);
            p->value = eq ? decode(k, eq + 1, amp) : decode(k, amp, amp);
            if (!p->key || !p->value)
                return -EINVAL;
        }
        s = *amp ? amp + 1 : amp;
    }
    return 0;
}

static int parse(const char *text, rs__url *u, sink *k)
{
    const char *p = text;
    if (!isalpha((unsigned char)*p))
        return -EINVAL;
    while (scheme_char(*p))
        p++;
    if (*p != ':')
        return -EINVAL;
    u->scheme = k->cur;
    for (const char *c = text; c < p; c++)
        *k->cur++ = (char)tolower((unsigned char)*c);
    *k->cur++ = '\0';
    p++;

    const char *q = strchr(p, '?');
    u->has_query = q != NULL;
    const char *rest_end = q ? q : p + strlen(p);
    if (rest_end - p >= 2 && p[0] == '/' && p[1] == '/') {
        u->has_authority = true;
        p += 2;
        const char *auth_end = memchr(p, '/', (size_t)(rest_end - p));
        if (!auth_end)
            auth_end = rest_end;
        int rc = parse_authority(k, p, auth_end, u);
        if (rc)
            return rc;
        p = auth_end < rest_end ? auth_end + 1 : auth_end;
    }
    if (p < rest_end && !(u->path = decode(k, p, rest_end)))
        return -EINVAL;
    return q ? parse_query(k, q + 1, u) : 0;
}

int rs__url_parse(const char *text, rs__url *u)
{
    if (!u)
        return -EINVAL;
    memset(u, 0, sizeof *u);
    if (!text || !text_ok(text))
        return -EINVAL;
    size_t len = strlen(text);
    /* Decoded text is never longer than its source; each component and each
     * query key and value adds one NUL, and there are at most len of those. */
    u->buf_ = malloc(2 * len + 16);
    if (!u->buf_)
        return -ENOMEM;
    sink k = { u->buf_ };
    int rc = parse(text, u, &k);
    if (rc) {
        rs__url_free(u);
        return rc;
    }
    return 0;
}

void rs__url_free(rs__url *u)
{
    if (!u)
        return;
    free(u->params);
    free(u->buf_);
    memset(u, 0, sizeof *u);
}

const char *rs__url_query(const rs__url *u, const char *key)
{
    for (size_t i = 0; u && key && i < u->nparams; i++)
        if (strcmp(u->params[i].key, key) == 0)
            return u->params[i].value;
    return NULL;
}
