/* Initial frames for rs__ctx_switch (x86-64); see context_x86_64.S. */
#include "runtime/context.h"

#include <stdint.h>

void rs__ctx_entry(void);

void *rs__ctx_make(void *top, void (*entry)(void *), void *arg)
{
    /* rs__ctx_entry calls entry with rsp = frame + 4 words: the frame must
     * be 16-byte aligned for the call to see an aligned stack. */
    void **frame = (void **)((((uintptr_t)top) & ~(uintptr_t)15) - 6 * sizeof(void *));
    frame[0] = (void *)rs__ctx_entry; /* resume address */
    frame[1] = 0;                     /* rbp: ends frame-pointer walks */
    frame[2] = (void *)entry;
    frame[3] = arg;
    return frame;
}
