/* vessel-executor SYNC_FD PLAN_FD (or monitor ..., see monitor.c): carries out a plan written by the C# runtime (docs/executor.md).
 * E (this process) joins namespaces and clones C with CLONE_PARENT; C builds the container and execs. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "executor.h"

#define SEALS (F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE)

/* CVE-2019-5736: run from a sealed memfd copy so the container can never write to our binary. */
static void ensure_sealed_copy(char **argv)
{
    struct stat st;
    char path[32];
    int exe = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    if (exe < 0)
        fail("self-clone", "/proc/self/exe");
    int seals = fcntl(exe, F_GET_SEALS);
    if (seals >= 0 && (seals & SEALS) == SEALS) {
        close(exe);
        return;
    }
    int mfd = memfd_create("vessel-executor", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (mfd < 0 || fstat(exe, &st) < 0)
        fail("self-clone", "memfd");
    for (off_t done = 0; done < st.st_size;) {
        ssize_t n = sendfile(mfd, exe, NULL, (size_t)(st.st_size - done));
        if (n <= 0)
            fail("self-clone", "sendfile");
        done += n;
    }
    if (fcntl(mfd, F_ADD_SEALS, SEALS) < 0)
        fail("self-clone", "seal");
    /* Exec a read-only reopening: a file open for writing cannot be executed (ETXTBSY). */
    int ro = open(fdpath(mfd, path), O_RDONLY | O_CLOEXEC);
    if (ro < 0)
        fail("self-clone", path);
    close(mfd);
    close(exe);
    fexecve(ro, argv, environ);
    fail("self-clone", "fexecve");
}

static int parse_fd(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    return errno || *end || end == s || v < 0 || v > 0x7fffffff ? -1 : (int)v;
}

static _Noreturn void child(struct plan *p)
{
    int rootfd = -1;
    char *go = recv_msg();
    if (!go)
        _exit(1);
    if (strncmp(go, "go", 2) != 0 || (go[2] && go[2] != ' '))
        fail_err("sync", EPROTO, go);
    const char *state = go[2] ? go + 3 : "";
    mode_t inherited_umask = umask(0);   /* modes in the plan are meant exactly */

    /* In a user namespace we still carry the host's uid 0, which it does not map: every file we
     * create would fail with EOVERFLOW. Become the namespace's root, as runc's nsexec does. */
    int userns = (p->clone_flags & CLONE_NEWUSER) != 0;
    for (size_t i = 0; i < p->n_ns; i++)
        userns |= p->ns[i].type == CLONE_NEWUSER;
    if (userns && (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0))
        fail("user", "setresuid 0");

    if (p->mode == MODE_INIT) {
        if (p->unshare_cgroup && unshare(CLONE_NEWCGROUP) < 0)
            fail("unshare", "cgroup");
        if (p->setsid && setsid() < 0)
            fail("setsid", "");
        prepare_rootfs(p, &rootfd);
        do_mounts(p, rootfd);
        do_devices(p, rootfd);
        do_symlinks(p, rootfd);
        close(rootfd);
        if (p->sync_hooks) {
            send_msg("hooks");
            char *m = recv_msg();
            if (!m || strcmp(m, "resume") != 0)
                _exit(1);
            free(m);
        }
        run_hooks(p, HOOK_CREATE_CONTAINER, state);
        enter_root(p);
        setup_console(p);
        if (p->hostname && sethostname(p->hostname, strlen(p->hostname)) < 0)
            fail("hostname", p->hostname);
        if (p->domainname && setdomainname(p->domainname, strlen(p->domainname)) < 0)
            fail("domainname", p->domainname);
        do_sysctls(p);          /* before the read-only paths: /proc/sys is usually one of them */
        do_masks_and_readonly(p);
        if (p->rootfs_readonly)
            do_rootfs_readonly();
    } else {
        setup_console(p);
    }

    do_rlimits(p);
    do_process_attrs(p);
    do_cwd(p);
    const char *path = exec_lookup(p);
    mark_fds_cloexec(p);
    do_seccomp(p, SECCOMP_EARLY);
    do_credentials(p, inherited_umask);
    if (p->mode == MODE_INIT) {
        send_msg("created");
        wait_fifo(p);
        run_hooks(p, HOOK_START_CONTAINER, state);
    }
    do_seccomp(p, SECCOMP_LATE);
    do_exec(p, path);
}

int main(int argc, char **argv)
{
    struct plan p;
    char buf[32];
    if (argc > 1 && strcmp(argv[1], "monitor") == 0)
        return monitor_main(argc, argv);   /* runs from disk: only its children need the sealed copy */
    if (argc != 3 || (sync_fd = parse_fd(argv[1])) < 0 || parse_fd(argv[2]) < 0) {
        dprintf(2, "usage: vessel-executor SYNC_FD PLAN_FD\n");
        return 2;
    }
    int plan_fd = parse_fd(argv[2]);
    ensure_sealed_copy(argv);
    if (fcntl(sync_fd, F_SETFD, FD_CLOEXEC) < 0 || fcntl(plan_fd, F_SETFD, FD_CLOEXEC) < 0)
        fail("setup", "fcntl");
    if (prctl(PR_SET_DUMPABLE, 0) < 0)
        fail("setup", "dumpable");
    plan_read(plan_fd, &p);
    close(plan_fd);

    /* Our own fds must lie above the preserved ones, or close_range would let them leak. */
    int low = 3 + (int)(p.preserve_fds > 0x10000 ? 0x10000 : p.preserve_fds);
    if (sync_fd < low || plan_fd < low || (p.console_fd >= 0 && p.console_fd < low) ||
        (p.fifo_fd >= 0 && p.fifo_fd < low) || p.preserve_fds > 0x10000)
        fail_err("plan", EINVAL, "39");

    /* Written here, before any user namespace is joined: only the runtime's namespace may lower it. */
    if (p.have_oom) {
        snprintf(buf, sizeof buf, "%d", p.oom_score_adj);
        if (write_proc("self/oom_score_adj", buf) < 0)
            fail("oom_score_adj", buf);
    }

    /* All paths are opened first: once the mount namespace is joined they would resolve in the container. */
    int *nsfd = calloc(p.n_ns + 1, sizeof *nsfd);
    if (!nsfd)
        fail("setns", "calloc");
    for (size_t i = 0; i < p.n_ns; i++)
        if ((nsfd[i] = open(p.ns[i].path, O_RDONLY | O_CLOEXEC)) < 0)
            fail("setns", p.ns[i].path);
    for (size_t i = 0; i < p.n_ns; i++) {
        if (setns(nsfd[i], (int)p.ns[i].type) < 0)
            fail("setns", p.ns[i].path);
        close(nsfd[i]);
    }

    pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)(CLONE_PARENT | p.clone_flags | SIGCHLD), NULL, NULL, NULL, 0);
    if (pid < 0)
        fail("clone", "");
    if (pid == 0)
        child(&p);
    snprintf(buf, sizeof buf, "pid %d", pid);
    if (send(sync_fd, buf, strlen(buf), MSG_NOSIGNAL) < 0) {
        kill(pid, SIGKILL);
        fail("sync", "pid");
    }
    return 0;
}
