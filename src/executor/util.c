/* Sync-socket messages, error reporting and path resolution inside the rootfs. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "executor.h"

int sync_fd = -1;

const char *errname(int err)
{
    static char buf[16];
    const char *name = strerrorname_np(err);
    if (name)
        return name;
    snprintf(buf, sizeof buf, "E%d", err);
    return buf;
}

static int vsend(const char *fmt, va_list ap)
{
    char buf[8192];
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    if (n < 0)
        return -1;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    return send(sync_fd, buf, (size_t)n, MSG_NOSIGNAL) < 0 ? -1 : 0;
}

void send_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = vsend(fmt, ap);
    va_end(ap);
    if (r < 0)
        fail("sync", fmt);
}

/* After `create` has returned nobody reads the socket any more; stderr is then the only witness. */
_Noreturn void fail_word(const char *step, const char *word, const char *detail)
{
    char buf[8192];
    snprintf(buf, sizeof buf, "error %s %s %s", step, word, detail ? detail : "");
    if (sync_fd < 0 || send(sync_fd, buf, strlen(buf), MSG_NOSIGNAL) < 0)
        dprintf(2, "vessel-executor: %s\n", buf);
    _exit(1);
}

_Noreturn void fail_err(const char *step, int err, const char *detail)
{
    fail_word(step, errname(err), detail);
}

_Noreturn void fail(const char *step, const char *detail)
{
    fail_err(step, errno, detail);
}

char *recv_msg(void)
{
    for (;;) {
        ssize_t n = recv(sync_fd, NULL, 0, MSG_PEEK | MSG_TRUNC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("sync", "recv");
        if (n == 0)
            return NULL;
        char *buf = malloc((size_t)n + 1);
        if (!buf)
            fail("sync", "malloc");
        ssize_t m = recv(sync_fd, buf, (size_t)n, 0);
        if (m < 0 && errno == EINTR) {
            free(buf);
            continue;
        }
        if (m < 0)
            fail("sync", "recv");
        buf[m] = 0;
        return buf;
    }
}

char *fdpath(int fd, char buf[32])
{
    snprintf(buf, 32, "/proc/self/fd/%d", fd);
    return buf;
}

static int resolve(int dirfd, const char *path, uint64_t flags, uint64_t how_resolve)
{
    struct open_how how = { .flags = flags | O_CLOEXEC, .resolve = how_resolve };
    return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
}

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)

/* Every prefix is resolved again from the root so that a symlink met on the way is followed the
 * way the container would see it, never out of the rootfs. O_EXCL and mkdirat never follow a
 * dangling symlink, so creating cannot escape either. */
int open_in_root(int rootfd, const char *path, int create)
{
    int fd = resolve(rootfd, path, O_PATH, IN_ROOT);
    if (fd >= 0 || errno != ENOENT || create == IN_ROOT_OPEN)
        return fd;

    char buf[PATH_MAX];
    if (strlen(path) >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(buf, path);
    int parent = resolve(rootfd, "/", O_PATH | O_DIRECTORY, IN_ROOT);
    if (parent < 0)
        return -1;
    char *p = buf;
    for (;;) {
        while (*p == '/')
            p++;
        if (!*p)
            return parent;
        char *comp = p, *end = strchrnul(p, '/');
        char saved = *end;
        *end = 0;
        const char *rest = saved ? end + 1 + strspn(end + 1, "/") : end;
        int last = !*rest;
        fd = resolve(rootfd, buf, O_PATH, IN_ROOT);
        if (fd < 0 && errno == ENOENT) {
            int r;
            if (last && create == IN_ROOT_MKFILE) {
                r = openat(parent, comp, O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (r >= 0)
                    close(r);
            } else {
                r = mkdirat(parent, comp, 0755);
            }
            if (r < 0 && errno != EEXIST) {
                int e = errno;
                close(parent);
                errno = e;
                return -1;
            }
            fd = resolve(rootfd, buf, O_PATH, IN_ROOT);
        }
        int e = errno;
        close(parent);
        if (fd < 0) {
            errno = e;
            return -1;
        }
        parent = fd;
        *end = saved;
        p = end;
    }
}

int write_proc(const char *rel, const char *value)
{
    struct statfs st;
    int procfd = open("/proc", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (procfd < 0)
        return -1;
    if (fstatfs(procfd, &st) < 0 || st.f_type != PROC_SUPER_MAGIC) {
        close(procfd);
        errno = EXDEV;
        return -1;
    }
    int fd = resolve(procfd, rel, O_WRONLY, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
    close(procfd);
    if (fd < 0)
        return -1;
    size_t len = strlen(value);
    ssize_t n = write(fd, value, len);
    int e = errno;
    close(fd);
    if (n != (ssize_t)len) {
        errno = n < 0 ? e : EIO;
        return -1;
    }
    return 0;
}
