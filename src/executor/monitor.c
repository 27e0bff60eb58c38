/* vessel-executor monitor DIR LOGMAX LOGFILES SYNC_FD PLAN_FD [OPTIONS] (docs/containers.md).
 * The per-container supervisor: a child subreaper that spawns the normal mode with pipes as its stdio,
 * so that the container's init (cloned with CLONE_PARENT) becomes our child. It copies the pipes (and the
 * pty master, for a tty) into DIR/container.log as JSON lines (docker's json-file format, size rotation),
 * serves them live on DIR/attach.sock (attach.c) and, when the init exits, drains them, writes
 * DIR/exit.json atomically and exits. No policy: only these mechanics.
 * OPTIONS, comma-separated: console=FD (the socket the container's pty master arrives on: -t),
 * stdin (clients' stdin reaches the container: a pipe as its fd 0 without a tty, the master with one). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "executor.h"

#define LINE_MAX_BYTES 16384

struct stream { const char *name; int id, fd; size_t len; char buf[LINE_MAX_BYTES]; };

static int dir_fd = -1, log_fd = -1, log_files = 1;
static long long log_max, log_size;
static char out[LINE_MAX_BYTES * 6 + 160];    /* one JSON line: every byte may become \u00XX */

static void now_rfc3339(char *buf, size_t size, const struct timespec *ts)
{
    struct tm tm;
    gmtime_r(&ts->tv_sec, &tm);
    size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, size - n, ".%09ldZ", ts->tv_nsec);
}

static void log_name(int i, char *buf, size_t size)
{
    if (i == 0)
        snprintf(buf, size, "container.log");
    else
        snprintf(buf, size, "container.log.%d", i);
}

static void open_log(int truncate)
{
    struct stat st;
    log_fd = openat(dir_fd, "container.log", O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | (truncate ? O_TRUNC : 0), 0640);
    log_size = log_fd >= 0 && fstat(log_fd, &st) == 0 ? st.st_size : 0;
}

/* container.log → .1 → … → .(LOGFILES-1); the oldest falls off. */
static void rotate(void)
{
    char from[32], to[32];
    close(log_fd);
    for (int i = log_files - 1; i >= 1; i--) {
        log_name(i - 1, from, sizeof from);
        log_name(i, to, sizeof to);
        renameat(dir_fd, from, dir_fd, to);
    }
    open_log(1);
}

/* Length of the valid UTF-8 sequence at s (of at most n bytes), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) len = 2;
    else if (s[0] >= 0xe0 && s[0] <= 0xef) { len = 3; if (s[0] == 0xe0) lo = 0xa0; if (s[0] == 0xed) hi = 0x9f; }
    else if (s[0] >= 0xf0 && s[0] <= 0xf4) { len = 4; if (s[0] == 0xf0) lo = 0x90; if (s[0] == 0xf4) hi = 0x8f; }
    else return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if (s[i] < 0x80 || s[i] > 0xbf)
            return 0;
    return len;
}

static void write_entry(const char *stream, const unsigned char *data, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    struct timespec ts;
    char when[48];
    size_t o = 0;
    clock_gettime(CLOCK_REALTIME, &ts);
    now_rfc3339(when, sizeof when, &ts);
    o += (size_t)snprintf(out, sizeof out, "{\"log\":\"");
    for (size_t i = 0; i < n;) {
        unsigned char c = data[i];
        if (c >= 0x80) {
            size_t l = utf8_len(data + i, n - i);
            if (l == 0) { memcpy(out + o, "\\ufffd", 6); o += 6; i++; continue; }
            memcpy(out + o, data + i, l); o += l; i += l;
            continue;
        }
        i++;
        if (c == '"' || c == '\\') { out[o++] = '\\'; out[o++] = (char)c; }
        else if (c == '\n') { out[o++] = '\\'; out[o++] = 'n'; }
        else if (c == '\r') { out[o++] = '\\'; out[o++] = 'r'; }
        else if (c == '\t') { out[o++] = '\\'; out[o++] = 't'; }
        else if (c < 0x20) { memcpy(out + o, "\\u00", 4); o += 4; out[o++] = hex[c >> 4]; out[o++] = hex[c & 15]; }
        else out[o++] = (char)c;
    }
    o += (size_t)snprintf(out + o, sizeof out - o, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", stream, when);
    if (log_max > 0 && log_size > 0 && log_size + (long long)o > log_max)
        rotate();
    for (size_t done = 0; log_fd >= 0 && done < o;) {
        ssize_t w = write(log_fd, out + done, o - done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    log_size += (long long)o;
}

/* Reads what is there; writes every complete line, and a partial one when the buffer is full.
 * Returns 0 at end of file (or error), 1 otherwise. */
static int pump(struct stream *s, int flush)
{
    ssize_t n;
    do
        n = read(s->fd, s->buf + s->len, sizeof s->buf - s->len);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        attach_broadcast(s->id, s->buf + s->len, (size_t)n);
        s->len += (size_t)n;
    }
    size_t start = 0;
    for (size_t i = 0; i < s->len; i++)
        if (s->buf[i] == '\n') {
            write_entry(s->name, (unsigned char *)s->buf + start, i + 1 - start);
            start = i + 1;
        }
    if (start < s->len && (s->len - start == sizeof s->buf || n <= 0 || flush)) {
        write_entry(s->name, (unsigned char *)s->buf + start, s->len - start);
        start = s->len;
    }
    memmove(s->buf, s->buf + start, s->len - start);
    s->len -= start;
    return n > 0 || (n < 0 && errno == EAGAIN);
}

static void write_exit(int status, pid_t pid)
{
    struct timespec ts;
    char when[48], buf[256];
    clock_gettime(CLOCK_REALTIME, &ts);
    now_rfc3339(when, sizeof when, &ts);
    int sig = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    int code = WIFSIGNALED(status) ? 128 + sig : WEXITSTATUS(status);
    int n = snprintf(buf, sizeof buf, "{\"exitCode\":%d,\"signal\":%d,\"pid\":%d,\"finishedAt\":\"%s\"}\n", code, sig, (int)pid, when);
    int fd = openat(dir_fd, "exit.json.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0 || write(fd, buf, (size_t)n) != n || fsync(fd) < 0 || close(fd) < 0 ||
        renameat(dir_fd, "exit.json.tmp", dir_fd, "exit.json") < 0)
        dprintf(2, "vessel-executor monitor: writing exit.json: %s\n", strerror(errno));
}

/* The init: our child that is not the normal-mode executor. Read once the executor has exited. */
static pid_t find_init(void)
{
    char path[64], buf[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/children", (int)getpid());
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = 0;
    return (pid_t)atoi(buf);
}

int monitor_main(int argc, char **argv)
{
    /* The third is the pty master, once it has arrived (a tty's output is logged as stdout, as docker does). */
    static struct stream streams[3] = { { .name = "stdout", .id = 1 }, { .name = "stderr", .id = 2 }, { .name = "stdout", .id = 1, .fd = -1 } };
    int outp[2], errp[2], inp[2] = { -1, -1 }, sync, plan, console = -1, open_stdin = 0;
    char *end;
    if ((argc != 7 && argc != 8) || (sync = atoi(argv[5])) < 3 || (plan = atoi(argv[6])) < 3) {
        dprintf(2, "usage: vessel-executor monitor DIR LOGMAX LOGFILES SYNC_FD PLAN_FD [console=FD,stdin]\n");
        return 2;
    }
    for (char *opt = argc == 8 ? strtok(argv[7], ",") : NULL; opt; opt = strtok(NULL, ","))
        if (!strncmp(opt, "console=", 8) && (console = atoi(opt + 8)) >= 3)
            continue;
        else if (!strcmp(opt, "stdin"))
            open_stdin = 1;
        else
            fail_err("monitor", EINVAL, opt);
    sync_fd = sync;
    log_max = strtoll(argv[3], &end, 10);
    log_files = atoi(argv[4]);
    if (*end || log_max < 0 || log_files < 1)
        fail_err("monitor", EINVAL, "LOGMAX LOGFILES");
    if ((dir_fd = open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        fail("monitor", argv[2]);
    open_log(0);
    if (log_fd < 0)
        fail("monitor", "container.log");
    setsid();   /* no terminal signals of whoever started us */
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
        fail("monitor", "subreaper");
    sigset_t chld, old;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    signal(SIGPIPE, SIG_IGN);
    if (sigprocmask(SIG_BLOCK, &chld, &old) < 0 || pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0 ||
        (open_stdin && console < 0 && pipe2(inp, O_CLOEXEC) < 0))
        fail("monitor", "pipe");
    if (console >= 0 && fcntl(console, F_SETFD, FD_CLOEXEC) < 0)
        fail("monitor", "console");
    int listen_fd = attach_init(dir_fd, console, inp[1], open_stdin);
    if (listen_fd < 0)
        fail("monitor", "attach.sock");
    int sigfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
    if (sigfd < 0)
        fail("monitor", "signalfd");

    pid_t exec_pid = fork();
    if (exec_pid < 0)
        fail("monitor", "fork");
    if (exec_pid == 0) {
        char *args[] = { "vessel-executor", argv[5], argv[6], NULL };
        sigprocmask(SIG_SETMASK, &old, NULL);
        signal(SIGPIPE, SIG_DFL);
        if (dup2(outp[1], 1) < 0 || dup2(errp[1], 2) < 0 || (inp[0] >= 0 && dup2(inp[0], 0) < 0))
            fail("monitor", "dup2");
        execv("/proc/self/exe", args);
        fail("monitor", "exec /proc/self/exe");
    }
    /* The sync socket, the plan, the fifo and preserved fds were the executor's: drop our copies. */
    close(outp[1]);
    close(errp[1]);
    if (inp[0] >= 0)
        close(inp[0]);
    sync_fd = -1;
    int keep[] = { dir_fd, log_fd, outp[0], errp[0], sigfd, listen_fd, console, inp[1] };
    for (int fd = 3; fd < 1024; fd++) {
        int mine = 0;
        for (size_t k = 0; k < sizeof keep / sizeof keep[0]; k++)
            mine |= keep[k] == fd;
        if (!mine)
            close(fd);
    }
    syscall(SYS_close_range, 1024U, ~0U, 0U);
    streams[0].fd = outp[0];
    streams[1].fd = errp[0];

    pid_t init = 0, early = 0;
    int early_status = 0, status = 0, init_done = 0, open_pipes = 2, master_added = 0;
    while (!init_done) {
        struct pollfd p[4 + 40];
        if (!master_added && attach_master() >= 0) {
            streams[2].fd = attach_master();
            open_pipes++;
            master_added = 1;
        }
        /* A client that has not taken its output yet holds the container's output back. */
        int blocked = attach_blocked();
        p[0] = (struct pollfd){ sigfd, POLLIN, 0 };
        for (int i = 0; i < 3; i++)
            p[i + 1] = (struct pollfd){ blocked ? -1 : streams[i].fd, POLLIN, 0 };
        int na = attach_fill(p + 4);
        if (poll(p, (nfds_t)(4 + na), -1) < 0 && errno != EINTR)
            break;
        attach_handle(p + 4, na);
        if (!master_added && attach_master() >= 0)
            continue;           /* the master just arrived: poll it too (everything else is still readable) */
        for (int i = 0; i < 3; i++)
            if (p[i + 1].fd >= 0 && (p[i + 1].revents & (POLLIN | POLLHUP | POLLERR)) && !pump(&streams[i], 0)) {
                if (i < 2)
                    close(streams[i].fd);   /* the master stays open for attach.c until we exit */
                streams[i].fd = -1;     /* poll ignores negative fds */
                open_pipes--;
            }
        struct signalfd_siginfo si;
        while (read(sigfd, &si, sizeof si) > 0) {
        }
        for (;;) {
            int st;
            pid_t pid = waitpid(-1, &st, WNOHANG | __WALL);
            if (pid < 0 && errno == ECHILD && exec_pid < 0 && !init)
                goto done;          /* the executor failed and nothing else lives: no container */
            if (pid <= 0)
                break;
            if (pid == exec_pid) {
                exec_pid = -1;
                if (st == 0)
                    init = find_init();
                if (!init && early)
                    init = early, status = early_status, init_done = 1;
            } else if (pid == init || (exec_pid < 0 && !init)) {
                init = pid;
                status = st;
                init_done = 1;
            } else if (!init && !early) {
                early = pid;
                early_status = st;
            }
        }
    }
    /* Everything in the container's pid namespace died with its init: read the pipes to their end. */
    if (!master_added && attach_master() >= 0) {
        streams[2].fd = attach_master();
        open_pipes++;
    }
    while (open_pipes > 0) {
        attach_finish(2000);    /* clients take what they have first, so the pipes can be read on */
        struct pollfd p[3] = { { streams[0].fd, POLLIN, 0 }, { streams[1].fd, POLLIN, 0 }, { streams[2].fd, POLLIN, 0 } };
        if (poll(p, 3, 2000) <= 0)
            break;
        for (int i = 0; i < 3; i++)
            if (streams[i].fd >= 0 && p[i].revents && !pump(&streams[i], 0)) {
                if (i < 2)
                    close(streams[i].fd);
                streams[i].fd = -1;
                open_pipes--;
            }
    }
    for (int i = 0; i < 3; i++)
        if (streams[i].len)
            pump(&streams[i], 1);
    attach_finish(2000);
    unlinkat(dir_fd, "attach.sock", 0);
    write_exit(status, init);
    return 0;
done:
    return 1;
}
