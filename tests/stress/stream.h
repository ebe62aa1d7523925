/* The byte streams the I/O stress tests send and check. */
#ifndef RS_TESTS_STRESS_STREAM_H
#define RS_TESTS_STRESS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Byte p of a test stream: not periodic over any short distance, so a lost,
 * repeated or misplaced chunk shows. */
static inline uint8_t stream_byte(uint64_t p)
{
    return (uint8_t)((p * 0x9E3779B97F4A7C15ull) >> 56);
}

/* Bytes pos .. pos + len - 1 of the stream into buf. */
static inline void fill_stream(uint8_t *buf, size_t len, uint64_t pos)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = stream_byte(pos + i);
}

/* Whether buf holds bytes pos .. pos + len - 1 of the stream. */
static inline bool matches_stream(const uint8_t *buf, size_t len, uint64_t pos)
{
    for (size_t i = 0; i < len; i++)
        if (buf[i] != stream_byte(pos + i))
            return false;
    return true;
}

#endif
