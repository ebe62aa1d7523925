/* rs_open, rs_read, rs_write, rs_fsync, rs_close on regular files. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support.h"

static char dir[] = "/tmp/rs-io-file-XXXXXX";
static char path[PATH_MAX];

static void make_dir(void)
{
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/data", dir);
}

static void remove_dir(void)
{
    unlink(path);
    rmdir(dir);
}

TestSuite(io_file, .init = make_dir, .fini = remove_dir, .timeout = 20);

static void fill_pattern(unsigned char *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = (unsigned char)((i * 131u + seed) >> 3);
}

#define BIG (1u << 20)

/* Writes all of buf at offset (looping over short writes). */
static int write_all(int fd, const unsigned char *buf, size_t n, int64_t offset)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = rs_write(fd, buf + done, n - done, offset < 0 ? -1 : offset + (int64_t)done);
        RS_CHECK(w > 0);
        done += (size_t)w;
    }
    return 0;
}

static int read_all(int fd, unsigned char *buf, size_t n, int64_t offset, size_t *got)
{
    size_t done = 0;
    for (;;) {
        ssize_t r = rs_read(fd, buf + done, n - done, offset < 0 ? -1 : offset + (int64_t)done);
        RS_CHECK(r >= 0);
        if (r == 0 || (done += (size_t)r) == n)
            break;
    }
    *got = done;
    return 0;
}

static int write_fsync_read_back(void *arg)
{
    (void)arg;
    unsigned char *out = malloc(BIG), *in = malloc(BIG);
    RS_CHECK(out && in);
    fill_pattern(out, BIG, 7);
    int fd = rs_open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC, 0600);
    RS_CHECK(fd >= 0);
    RS_CHECK_OK(write_all(fd, out, BIG, 0));
    RS_CHECK_OK(rs_fsync(fd));
    RS_CHECK_OK(rs_close(fd));

    struct stat st;
    RS_CHECK_EQ(stat(path, &st), 0);
    RS_CHECK_EQ(st.st_size, BIG);

    fd = rs_open(path, O_RDONLY | O_CLOEXEC, 0);
    RS_CHECK(fd >= 0);
    size_t got = 0;
    memset(in, 0, BIG);
    RS_CHECK_OK(read_all(fd, in, BIG, 0, &got));
    RS_CHECK_EQ(got, BIG);
    RS_CHECK(memcmp(in, out, BIG) == 0);
    RS_CHECK_OK(rs_close(fd));
    free(out);
    free(in);
    return 0;
}

Test(io_file, written_fsynced_and_read_back_through_the_ring)
{
    RS_RUN_OK(write_fsync_read_back, NULL);
}

static int current_position(void *arg)
{
    (void)arg;
    int fd = rs_open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
    RS_CHECK(fd >= 0);
    RS_CHECK_EQ(rs_write(fd, "hello ", 6, -1), 6);
    RS_CHECK_EQ(rs_write(fd, "world", 5, -1), 5);
    RS_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 11);

    /* An explicit offset neither uses nor moves the position. */
    RS_CHECK_EQ(rs_write(fd, "W", 1, 6), 1);
    RS_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 11);

    RS_CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    char buf[16] = { 0 };
    RS_CHECK_EQ(rs_read(fd, buf, 6, -1), 6);
    RS_CHECK_EQ(rs_read(fd, buf + 6, 5, -1), 5);
    RS_CHECK(memcmp(buf, "hello World", 11) == 0);
    RS_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 11);

    char one = 0;
    RS_CHECK_EQ(rs_read(fd, &one, 1, 4), 1);
    RS_CHECK_EQ(one, 'o');
    RS_CHECK_EQ(lseek(fd, 0, SEEK_CUR), 11);
    RS_CHECK_OK(rs_close(fd));
    return 0;
}

Test(io_file, offset_minus_one_uses_and_advances_the_current_position)
{
    RS_RUN_OK(current_position, NULL);
}

static int short_read_and_eof(void *arg)
{
    (void)arg;
    int fd = rs_open(path, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
    RS_CHECK(fd >= 0);
    RS_CHECK_EQ(rs_write(fd, "0123456789", 10, 0), 10);
    char buf[100];
    RS_CHECK_EQ(rs_read(fd, buf, sizeof buf, 0), 10);   /* short read: a count */
    RS_CHECK_EQ(rs_read(fd, buf, sizeof buf, 7), 3);
    RS_CHECK_EQ(rs_read(fd, buf, sizeof buf, 10), 0);   /* at the end: EOF is 0 */
    RS_CHECK_EQ(rs_read(fd, buf, sizeof buf, 1000), 0); /* past the end too */
    RS_CHECK_EQ(lseek(fd, 0, SEEK_END), 10);
    RS_CHECK_EQ(rs_read(fd, buf, sizeof buf, -1), 0);
    RS_CHECK_EQ(rs_read(fd, NULL, 0, 0), 0);             /* empty request */
    RS_CHECK_EQ(rs_write(fd, NULL, 0, 0), 0);
    RS_CHECK_OK(rs_close(fd));
    return 0;
}

Test(io_file, short_reads_are_counts_and_eof_is_zero)
{
    RS_RUN_OK(short_read_and_eof, NULL);
}

static int errors(void *arg)
{
    (void)arg;
    char buf[8];
    char missing[PATH_MAX];
    snprintf(missing, sizeof missing, "%s/missing/file", dir);
    RS_CHECK_EQ(rs_open(missing, O_RDONLY, 0), -ENOENT);
    RS_CHECK_EQ(rs_open(NULL, O_RDONLY, 0), -EINVAL);
    RS_CHECK_EQ(rs_open(dir, O_WRONLY, 0), -EISDIR);

    int fd = rs_open(path, O_CREAT | O_TRUNC | O_RDONLY | O_CLOEXEC, 0600);
    RS_CHECK(fd >= 0);
    RS_CHECK_EQ(rs_write(fd, "x", 1, 0), -EBADF); /* opened read-only */
    RS_CHECK_EQ(rs_read(fd, NULL, 1, 0), -EINVAL);
    RS_CHECK_EQ(rs_write(fd, NULL, 1, 0), -EINVAL);
    RS_CHECK_EQ(rs_read(fd, buf, sizeof buf, -2), -EINVAL);
    RS_CHECK_EQ(rs_write(fd, buf, sizeof buf, -5), -EINVAL);
    RS_CHECK_OK(rs_close(fd));

    /* The descriptor is gone now. */
    RS_CHECK_EQ(rs_read(fd, buf, sizeof buf, 0), -EBADF);
    RS_CHECK_EQ(rs_fsync(fd), -EBADF);
    RS_CHECK_EQ(rs_close(fd), -EBADF);
    RS_CHECK_EQ(rs_read(-1, buf, sizeof buf, 0), -EBADF);
    RS_CHECK_EQ(rs_write(-1, buf, sizeof buf, 0), -EBADF);
    RS_CHECK_EQ(rs_fsync(-1), -EBADF);
    RS_CHECK_EQ(rs_close(-1), -EBADF);
    return 0;
}

Test(io_file, errors_are_negative_errno)
{
    RS_RUN_OK(errors, NULL);
}

Test(io_file, outside_a_task_every_call_is_eperm)
{
    char buf[4];
    int fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    cr_assert(fd >= 0);
    cr_expect_eq(rs_read(fd, buf, sizeof buf, -1), -EPERM);
    cr_expect_eq(rs_write(fd, buf, sizeof buf, -1), -EPERM);
    cr_expect_eq(rs_recv(fd, buf, sizeof buf, 0), -EPERM);
    cr_expect_eq(rs_send(fd, buf, sizeof buf, 0), -EPERM);
    cr_expect_eq(rs_accept(fd, NULL, NULL, 0), -EPERM);
    cr_expect_eq(rs_connect(fd, NULL, 0), -EPERM);
    cr_expect_eq(rs_poll(fd, POLLIN, 10), -EPERM);
    cr_expect_eq(rs_open("/dev/null", O_RDONLY, 0), -EPERM);
    cr_expect_eq(rs_fsync(fd), -EPERM);
    cr_expect_eq(rs_close(fd), -EPERM);
    cr_expect_eq(rs_tcp_listen("127.0.0.1", 0, 1), -EPERM);
    cr_expect_eq(rs_tcp_connect("127.0.0.1", 9, 10), -EPERM);
    cr_expect_eq(fcntl(fd, F_GETFD), FD_CLOEXEC, "rs_close outside a task must not close");
    close(fd);
}

/* Many files at once: each task's operations go through the one ring and
 * suspend only that task. */
typedef struct file_job {
    int index;
} file_job;

static int one_file(void *arg)
{
    file_job *job = arg;
    char name[PATH_MAX + 16];
    snprintf(name, sizeof name, "%s.%d", path, job->index);
    unsigned char out[4096], in[4096];
    fill_pattern(out, sizeof out, (unsigned)job->index);
    int fd = rs_open(name, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0600);
    RS_CHECK(fd >= 0);
    RS_CHECK_OK(write_all(fd, out, sizeof out, -1));
    RS_CHECK_OK(rs_fsync(fd));
    size_t got = 0;
    RS_CHECK_OK(read_all(fd, in, sizeof in, 0, &got));
    RS_CHECK_EQ(got, sizeof in);
    RS_CHECK(memcmp(in, out, sizeof in) == 0);
    RS_CHECK_OK(rs_close(fd));
    RS_CHECK_EQ(unlink(name), 0);
    return 0;
}

static int many_files(void *arg)
{
    (void)arg;
    enum { N = 32 };
    static file_job jobs[N];
    rs_scope *s;
    RS_CHECK_OK(rs_scope_open(NULL, &s));
    for (int i = 0; i < N; i++) {
        jobs[i].index = i;
        RS_CHECK_OK(rs_spawn(s, one_file, &jobs[i], NULL, NULL));
    }
    RS_CHECK_OK(rs_scope_close(s));
    return 0;
}

Test(io_file, concurrent_tasks_share_the_ring)
{
    RS_RUN_OK(many_files, NULL);
}
