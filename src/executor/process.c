/* The container process: rlimits, cwd, exec lookup, seccomp, credentials, hooks, fifo, exec. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/close_range.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "executor.h"

void do_rlimits(struct plan *p)
{
    char num[16];
    for (size_t i = 0; i < p->n_rlimits; i++) {
        struct rlimit rl = { .rlim_cur = p->rlimits[i].soft, .rlim_max = p->rlimits[i].hard };
        if (setrlimit((__rlimit_resource_t)p->rlimits[i].resource, &rl) < 0) {
            snprintf(num, sizeof num, "%u", p->rlimits[i].resource);
            fail("rlimit", num);
        }
    }
}

void do_process_attrs(struct plan *p)
{
    if (p->have_pdeathsig && prctl(PR_SET_PDEATHSIG, (unsigned long)p->pdeathsig) < 0)
        fail("pdeathsig", "");
    if (p->have_personality && personality(p->personality) < 0)
        fail("personality", "");
}

/* CVE-2024-21626: a cwd reached through a leaked host fd would not be under our root. */
void do_cwd(struct plan *p)
{
    char buf[PATH_MAX];
    const char *cwd = p->cwd ? p->cwd : "/";
    if (chdir(cwd) < 0)
        fail("cwd", cwd);
    if (!getcwd(buf, sizeof buf))
        fail("cwd", cwd);
    if (buf[0] != '/')
        fail_err("cwd", ENOENT, cwd);
}

static int check_exec(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return errno == ENOTDIR ? ENOENT : errno;
    return S_ISREG(st.st_mode) && (st.st_mode & 0111) ? 0 : EACCES;
}

/* As execvp would search, so that "not found" and "not executable" become create-time errors. */
const char *exec_lookup(struct plan *p)
{
    const char *name = p->argv[0], *path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    int err;
    if (strchr(name, '/')) {
        if ((err = check_exec(name)))
            fail_err("exec-lookup", err, name);
        return name;
    }
    for (size_t i = 0; i < p->n_env; i++)
        if (!strncmp(p->env[i], "PATH=", 5)) {
            path = p->env[i] + 5;
            break;
        }
    int seen_eacces = 0;
    for (const char *d = path;; d++) {
        const char *end = strchrnul(d, ':');
        int dlen = (int)(end - d);
        char *full;
        if (asprintf(&full, "%.*s%s%s", dlen, d, dlen ? "/" : "", name) < 0)
            fail("exec-lookup", name);
        if ((err = check_exec(full)) == 0)
            return full;
        seen_eacces |= err == EACCES;
        free(full);
        if (!*end)
            break;
        d = end;
    }
    fail_err("exec-lookup", seen_eacces ? EACCES : ENOENT, name);
}

void do_seccomp(struct plan *p, uint32_t when)
{
    for (size_t i = 0; i < p->n_seccomp; i++)
        if (p->seccomp[i].when == when &&
            syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->seccomp[i].flags, &p->seccomp[i].prog) < 0)
            fail("seccomp", when == SECCOMP_EARLY ? "early" : "late");
}

/* CVE-2024-21626: no fd of ours may reach the container. Only marks them close-on-exec, so the sync socket and
 * the fifo keep working until execve; done before the early seccomp filter, which may not allow close_range. */
void mark_fds_cloexec(struct plan *p)
{
    if (syscall(SYS_close_range, 3 + p->preserve_fds, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
        fail("close_range", "");
}

void do_credentials(struct plan *p, mode_t inherited_umask)
{
    if (p->have_caps)
        for (int cap = 0; prctl(PR_CAPBSET_READ, cap) >= 0; cap++)
            if (!(p->cap_bnd >> cap & 1) && prctl(PR_CAPBSET_DROP, cap) < 0)
                fail("capabilities", "bounding");
    if (p->have_user) {
        /* KEEPCAPS: setresuid to non-root would otherwise empty the permitted set before capset. */
        if (prctl(PR_SET_KEEPCAPS, 1) < 0)
            fail("user", "keepcaps");
        /* A user namespace with setgroups "deny" refuses even an empty list; nothing to clear then. */
        if (setgroups(p->n_gids, (gid_t *)p->gids) < 0 && !(errno == EPERM && p->n_gids == 0))
            fail("user", "setgroups");
        if (setresgid(p->gid, p->gid, p->gid) < 0)
            fail("user", "setresgid");
        if (setresuid(p->uid, p->uid, p->uid) < 0)
            fail("user", "setresuid");
        if (prctl(PR_SET_KEEPCAPS, 0) < 0)
            fail("user", "keepcaps");
    }
    if (p->have_caps) {
        struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
        struct __user_cap_data_struct data[2];
        for (int i = 0; i < 2; i++) {
            data[i].effective = (uint32_t)(p->cap_eff >> (32 * i));
            data[i].permitted = (uint32_t)(p->cap_prm >> (32 * i));
            data[i].inheritable = (uint32_t)(p->cap_inh >> (32 * i));
        }
        if (syscall(SYS_capset, &hdr, data) < 0)
            fail("capabilities", "capset");
        if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
            fail("capabilities", "ambient");
        for (int cap = 0; cap < 64; cap++)
            if ((p->cap_amb >> cap & 1) && prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
                fail("capabilities", "ambient");
    }
    /* Changing credentials cleared the parent death signal. */
    if (p->have_user && p->have_pdeathsig && prctl(PR_SET_PDEATHSIG, (unsigned long)p->pdeathsig) < 0)
        fail("pdeathsig", "");
    if (p->no_new_privs && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        fail("no_new_privs", "");
    umask(p->have_user && p->umask >= 0 ? (mode_t)p->umask : inherited_umask);
}

/* The state goes in a memfd rather than a pipe so that a hook that never reads stdin cannot block us. */
static void run_hook(const struct hook *h, const char *state)
{
    int mfd = memfd_create("vessel-state", MFD_CLOEXEC), ep[2], err, status;
    size_t len = strlen(state);
    if (mfd < 0 || write(mfd, state, len) != (ssize_t)len || lseek(mfd, 0, SEEK_SET) < 0)
        fail("hook", h->path);
    if (pipe2(ep, O_CLOEXEC) < 0)
        fail("hook", h->path);
    pid_t pid = fork();
    if (pid < 0)
        fail("hook", h->path);
    if (pid == 0) {
        if (dup2(mfd, 0) >= 0)
            execve(h->path, h->argv, h->env);
        err = errno;
        (void)!write(ep[1], &err, sizeof err);
        _exit(127);
    }
    close(ep[1]);
    close(mfd);
    ssize_t n;
    while ((n = read(ep[0], &err, sizeof err)) < 0 && errno == EINTR)
        ;
    close(ep[0]);
    if (n == sizeof err) {
        waitpid(pid, NULL, 0);
        fail_err("hook", err, h->path);
    }
    if (h->timeout) {
        int pidfd = (int)syscall(SYS_pidfd_open, pid, 0), r;
        if (pidfd < 0)
            fail("hook", h->path);
        struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
        int ms = h->timeout > INT_MAX / 1000 ? INT_MAX : (int)h->timeout * 1000;
        while ((r = poll(&pfd, 1, ms)) < 0 && errno == EINTR)
            ;
        close(pidfd);
        if (r == 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
            fail_err("hook", ETIMEDOUT, h->path);
        }
    }
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            fail("hook", h->path);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_word("hook", "EXIT", h->path);
}

void run_hooks(struct plan *p, uint32_t phase, const char *state)
{
    for (size_t i = 0; i < p->n_hooks; i++)
        if (p->hooks[i].phase == phase)
            run_hook(&p->hooks[i], state);
}

/* Blocks until `vessel-runc start` opens the fifo for reading. The write end stays open (close-on-exec): the
 * runtime sees end-of-file only once execve has happened (or the process died), so its poststart hooks run after
 * the startContainer hooks and the exec, as the runtime-spec orders them. */
void wait_fifo(struct plan *p)
{
    char path[32];
    int fd;
    if (p->fifo_fd < 0)
        return;
    while ((fd = open(fdpath(p->fifo_fd, path), O_WRONLY | O_CLOEXEC)) < 0)
        if (errno != EINTR)
            fail("exec-fifo", path);
    if (write(fd, "0", 1) != 1)
        fail("exec-fifo", path);
    close(p->fifo_fd);
}

_Noreturn void do_exec(struct plan *p, const char *path)
{
    char buf[PATH_MAX + 64];
    execve(path, p->argv, p->env);
    int err = errno;
    snprintf(buf, sizeof buf, "error exec %s %s", errname(err), p->argv[0]);
    (void)!send(sync_fd, buf, strlen(buf), MSG_NOSIGNAL);
    dprintf(2, "vessel-executor: exec %s: %s\n", p->argv[0], strerror(err));
    _exit(err == ENOENT ? 127 : 126);
}
