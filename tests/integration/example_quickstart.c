/* The quickstart example: the program of the top-level README. It prints
 * "counter = 8000, scope: success" and exits 0; and the README shows exactly
 * the code of examples/quickstart.c (after the file's opening comment), so
 * the first program a reader copies is the one that is built and tested. */
#include "integration/example_process.h"

#include <stdlib.h>

#ifndef RS_EXAMPLE_QUICKSTART
#error "RS_EXAMPLE_QUICKSTART: the path of the built example (tests/CMakeLists.txt)"
#endif
#ifndef RS_SOURCE_DIR
#error "RS_SOURCE_DIR: the project's source tree (tests/CMakeLists.txt)"
#endif

TestSuite(example_quickstart, .timeout = 60);

Test(example_quickstart, prints_8000_and_success)
{
    example_proc p;
    start(&p, RS_EXAMPLE_QUICKSTART, (char *[]){ "quickstart", NULL });
    int status = wait_exit(&p);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status %#x; stderr:\n%s", status, p.err_text);
    cr_expect_str_eq(p.out_text, "counter = 8000, scope: success\n");
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "r");
    cr_assert(f, "cannot open %s: %s", path, strerror(errno));
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    cr_assert(n < sizeof buf - 1, "%s is larger than expected", path);
    buf[n] = '\0';
    fclose(f);
    return strdup(buf);
}

Test(example_quickstart, the_readme_shows_this_program)
{
    char *readme = read_text(RS_SOURCE_DIR "/README.md");
    char *program = read_text(RS_SOURCE_DIR "/examples/quickstart.c");
    /* The README's first C block. */
    char *block = strstr(readme, "```c\n");
    cr_assert(block, "README.md has no C block");
    block += strlen("```c\n");
    char *end = strstr(block, "```\n");
    cr_assert(end, "README.md's C block does not end");
    *end = '\0';
    /* The program without its opening comment. */
    char *code = program;
    if (strncmp(code, "/*", 2) == 0) {
        code = strstr(code, "*/\n");
        cr_assert(code);
        code += strlen("*/\n");
    }
    cr_expect_str_eq(block, code, "README.md's first program differs from examples/quickstart.c");
    free(readme);
    free(program);
}
