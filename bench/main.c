/* ringscope-bench: placeholder entry point until the suites land. */
#include <stdio.h>

int main(void)
{
    fprintf(stderr, "ringscope-bench: no suites built yet\n");
    return 0;
}
