/* Internal declarations of vessel-executor. The plan format is in plan.h, the contract in docs/executor.md. */
#ifndef VESSEL_EXECUTOR_H
#define VESSEL_EXECUTOR_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/filter.h>
#include "plan.h"

struct mnt { uint64_t flags, propagation; uint32_t kind, extra; const char *source, *dest, *fstype, *data; };
struct dev { uint32_t type, major, minor, mode, uid, gid; const char *path; };
struct pair { const char *a, *b; };        /* symlink: target, link; sysctl: key, value */
struct rlim { uint32_t resource; uint64_t soft, hard; };
struct filter { uint32_t flags, when; struct sock_fprog prog; };
struct hook { uint32_t phase, timeout; const char *path; char **argv, **env; };
struct ns { uint32_t type; const char *path; };

/* Each list points into the plan buffer, which lives until exec. */
#define LIST(T, name) T *name; size_t n_##name
struct plan {
    uint32_t mode;
    uint64_t clone_flags;
    int unshare_cgroup, rootfs_readonly, no_pivot, no_new_privs, sync_hooks, setsid;
    const char *rootfs, *hostname, *domainname, *cwd;
    int have_propagation;
    uint64_t propagation;
    int have_oom; int32_t oom_score_adj;
    int have_caps; uint64_t cap_bnd, cap_eff, cap_prm, cap_inh, cap_amb;
    int have_user; uint32_t uid, gid; int32_t umask; uint32_t n_gids; uint32_t *gids;
    uint32_t preserve_fds;
    int console_fd, fifo_fd;
    int have_pdeathsig; uint32_t pdeathsig;
    int have_personality; uint32_t personality;
    LIST(struct ns, ns);
    LIST(struct mnt, mounts);
    LIST(struct dev, devices);
    LIST(struct pair, symlinks);
    LIST(const char *, masks);
    LIST(const char *, readonly);
    LIST(struct pair, sysctls);
    LIST(struct rlim, rlimits);
    LIST(struct filter, seccomp);
    LIST(struct hook, hooks);
    LIST(char *, env);      /* NULL-terminated */
    LIST(char *, argv);     /* NULL-terminated */
};

/* util.c */
extern int sync_fd;
_Noreturn void fail(const char *step, const char *detail);            /* uses errno */
_Noreturn void fail_err(const char *step, int err, const char *detail);
_Noreturn void fail_word(const char *step, const char *word, const char *detail); /* word: ERRNO field */
void send_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *recv_msg(void);                       /* NUL-terminated, malloc'd; NULL on EOF */
const char *errname(int err);
enum { IN_ROOT_OPEN, IN_ROOT_MKDIR, IN_ROOT_MKFILE };
int open_in_root(int rootfd, const char *path, int create); /* O_PATH fd or -1 with errno */
char *fdpath(int fd, char buf[32]);
int write_proc(const char *rel, const char *value);          /* relative to a verified procfs /proc */

/* monitor.c */
int monitor_main(int argc, char **argv);

/* attach.c: the monitor's DIR/attach.sock */
struct pollfd;
int attach_init(int dir_fd, int console_fd, int stdin_w, int open_stdin);
int attach_master(void);
int attach_blocked(void);
int attach_fill(struct pollfd *p);
void attach_handle(struct pollfd *p, int n);
void attach_broadcast(int stream, const char *data, size_t n);
void attach_finish(int timeout_ms);

/* plan.c */
void plan_read(int fd, struct plan *p);

/* mounts.c */
void prepare_rootfs(struct plan *p, int *rootfd);
void do_mounts(struct plan *p, int rootfd);
void do_devices(struct plan *p, int rootfd);
void do_symlinks(struct plan *p, int rootfd);
void enter_root(struct plan *p);
void do_masks_and_readonly(struct plan *p);
void do_rootfs_readonly(void);
void do_sysctls(struct plan *p);

/* console.c */
void setup_console(struct plan *p);

/* process.c */
void do_rlimits(struct plan *p);
void do_process_attrs(struct plan *p);
void do_cwd(struct plan *p);
const char *exec_lookup(struct plan *p);
void do_seccomp(struct plan *p, uint32_t when);
void mark_fds_cloexec(struct plan *p);
void do_credentials(struct plan *p, mode_t inherited_umask);
void run_hooks(struct plan *p, uint32_t phase, const char *state);
void wait_fifo(struct plan *p);
_Noreturn void do_exec(struct plan *p, const char *path);

#endif
