/* Address-sanitizer support for switching stacks: ASan must be told when
 * execution moves to another stack (fiber annotations), and a pooled stack
 * must be unpoisoned before reuse (frames of a finished task that never
 * returned leave poisoned red zones behind). Empty without ASan. */
#ifndef RS_RUNTIME_SANITIZER_H
#define RS_RUNTIME_SANITIZER_H

#if defined(__SANITIZE_ADDRESS__)
#define RS_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RS_ASAN 1
#endif
#endif

#ifdef RS_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#endif
