/* Initial frames for rs__ctx_switch (x86-64). */
#include "runtime/context.h"

#include <stdint.h>

void rs__ctx_entry(void);

void *rs__ctx_make(void *top, void (*entry)(void *), void *arg)
{
    /* After rs__ctx_switch pops the seven saved words, rsp must be 16-byte
     * aligned at rs__ctx_entry's call (SysV: rsp % 16 == 0 before call). */
    uintptr_t after_pops = ((uintptr_t)top & ~(uintptr_t)15) - 16;
    void **frame = (void **)(after_pops - 7 * sizeof(void *));
    frame[0] = 0;                 /* r15 */
    frame[1] = 0;                 /* r14 */
    frame[2] = (void *)entry;     /* r13 */
    frame[3] = arg;               /* r12 */
    frame[4] = 0;                 /* rbx */
    frame[5] = 0;                 /* rbp: ends frame-pointer walks */
    frame[6] = (void *)rs__ctx_entry;
    return frame;
}
