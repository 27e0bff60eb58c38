/* The container's file system: rootfs, mounts, devices, symlinks, pivot_root, masks, sysctls. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include "executor.h"

/* A bind remount inside a user namespace may not clear flags the source mount has locked
 * (nosuid, nodev, noexec, ro, atime); retry with them kept, as runc does. */
static int remount(const char *target, unsigned long flags)
{
    struct statvfs sv;
    if (mount(NULL, target, NULL, flags, NULL) == 0)
        return 0;
    if (errno != EPERM || statvfs(target, &sv) < 0) {
        errno = EPERM;
        return -1;
    }
    unsigned long locked = 0;
    if (sv.f_flag & ST_RDONLY) locked |= MS_RDONLY;
    if (sv.f_flag & ST_NOSUID) locked |= MS_NOSUID;
    if (sv.f_flag & ST_NODEV) locked |= MS_NODEV;
    if (sv.f_flag & ST_NOEXEC) locked |= MS_NOEXEC;
    if (!(flags & (MS_NOATIME | MS_RELATIME | MS_STRICTATIME)))
        locked |= sv.f_flag & (ST_NOATIME | ST_RELATIME | ST_NODIRATIME);
    if ((locked & ~flags) == 0) {
        errno = EPERM;
        return -1;
    }
    return mount(NULL, target, NULL, flags | locked, NULL);
}

/* pivot_root and MS_MOVE refuse a new root whose parent mount is shared (possible only when
 * R_ROOTFS_PROPAGATION asks for shared): make that parent private, as runc does. */
static void parent_mount_private(const char *rootfs)
{
    char real[PATH_MAX], best[PATH_MAX] = "", *line = NULL;
    size_t cap = 0, bestlen = 0;
    int shared = 0;
    if (!realpath(rootfs, real))
        fail("mount", rootfs);
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        fail("mount", "/proc/self/mountinfo");
    while (getline(&line, &cap, f) > 0) {
        char mp[PATH_MAX], opt[PATH_MAX];
        int pos = 0;
        if (sscanf(line, "%*s %*s %*s %*s %4095s %*s%n", mp, &pos) != 1)
            continue;
        char *o = mp, *w = mp;          /* undo mountinfo's \ooo escapes */
        while (*o) {
            if (o[0] == '\\' && o[1] >= '0' && o[1] <= '3' && o[2] && o[3]) {
                *w++ = (char)(((o[1] - '0') << 6) | ((o[2] - '0') << 3) | (o[3] - '0'));
                o += 4;
            } else {
                *w++ = *o++;
            }
        }
        *w = 0;
        size_t n = strlen(mp);
        int prefix = strcmp(mp, "/") == 0 ||
                     (strncmp(real, mp, n) == 0 && (real[n] == '/' || real[n] == 0));
        if (!prefix || n < bestlen)   /* equal: a later line is a mount stacked on top */
            continue;
        strcpy(best, mp);
        bestlen = n;
        shared = 0;
        for (char *s = line + pos; sscanf(s, " %4095s%n", opt, &pos) == 1 && strcmp(opt, "-"); s += pos)
            if (strncmp(opt, "shared:", 7) == 0)
                shared = 1;
    }
    free(line);
    fclose(f);
    if (shared && mount(NULL, best, NULL, MS_PRIVATE, NULL) < 0)
        fail("mount", best);
}

void prepare_rootfs(struct plan *p, int *rootfd)
{
    uint64_t prop = p->have_propagation ? p->propagation : MS_SLAVE | MS_REC;
    if (prop && mount(NULL, "/", NULL, prop, NULL) < 0)
        fail("mount", "/");
    parent_mount_private(p->rootfs);
    if (mount(p->rootfs, p->rootfs, NULL, MS_BIND | MS_REC, NULL) < 0)
        fail("mount", p->rootfs);
    *rootfd = open(p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*rootfd < 0)
        fail("mount", p->rootfs);
}

/* The fd taken before a mount names the covered directory; only a fresh lookup sees the new mount. */
static int reopen(int rootfd, int fd, const char *path)
{
    close(fd);
    fd = open_in_root(rootfd, path, IN_ROOT_OPEN);
    if (fd < 0)
        fail("mount", path);
    return fd;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w, len -= (size_t)w;
    }
    return 0;
}

/* Copies the tree under directory fd SRC into directory fd DST: files, directories, symlinks, device
 * nodes and fifos with their modes and owners (sockets are skipped). Never follows a symlink. */
static int copy_tree(int src, int dst)
{
    int dfd = fcntl(src, F_DUPFD_CLOEXEC, 0);
    DIR *dir = dfd < 0 ? NULL : fdopendir(dfd);
    if (!dir) {
        if (dfd >= 0) close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dir))) {
        const char *n = e->d_name;
        struct stat st;
        if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0)
            continue;
        if (fstatat(src, n, &st, AT_SYMLINK_NOFOLLOW) < 0) { rc = -1; break; }
        mode_t perm = st.st_mode & 07777;
        if (S_ISDIR(st.st_mode)) {
            int s2 = -1, d2 = -1;
            rc = (mkdirat(dst, n, 0700) < 0 ||
                  (s2 = openat(src, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
                  (d2 = openat(dst, n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 ||
                  copy_tree(s2, d2) < 0 || fchown(d2, st.st_uid, st.st_gid) < 0 || fchmod(d2, perm) < 0) ? -1 : 0;
            if (s2 >= 0) close(s2);
            if (d2 >= 0) close(d2);
        } else if (S_ISREG(st.st_mode)) {
            int in = openat(src, n, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), out = -1;
            if (in < 0 || (out = openat(dst, n, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
                rc = -1;
            } else {
                char buf[65536];
                ssize_t r;
                while ((r = read(in, buf, sizeof buf)) > 0)
                    if (write_all(out, buf, (size_t)r) < 0) { r = -1; break; }
                rc = (r < 0 || fchown(out, st.st_uid, st.st_gid) < 0 || fchmod(out, perm) < 0) ? -1 : 0;
            }
            if (in >= 0) close(in);
            if (out >= 0) close(out);
        } else if (S_ISLNK(st.st_mode)) {
            char target[PATH_MAX];
            ssize_t len = readlinkat(src, n, target, sizeof target - 1);
            if (len < 0) { rc = -1; break; }
            target[len] = 0;
            rc = (symlinkat(target, dst, n) < 0 || fchownat(dst, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0) ? -1 : 0;
        } else if (S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) || S_ISFIFO(st.st_mode)) {
            rc = (mknodat(dst, n, st.st_mode, st.st_rdev) < 0 ||
                  fchownat(dst, n, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0 ||
                  fchmodat(dst, n, perm, 0) < 0) ? -1 : 0;
        }
    }
    int saved = errno;
    closedir(dir);
    errno = saved;
    return rc;
}

/* tmpcopyup: the fd opened before the mount still names the covered directory; copy it into the new
 * mount and give the mount's root the directory's mode and owner (as runc does). */
static void copy_up(int rootfd, int covered, const struct mnt *m)
{
    struct stat st;
    int src = openat(covered, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int top = open_in_root(rootfd, m->dest, IN_ROOT_OPEN);
    int dst = top < 0 ? -1 : openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (src < 0 || dst < 0 || fstat(src, &st) < 0 || copy_tree(src, dst) < 0 ||
        fchown(dst, st.st_uid, st.st_gid) < 0 || fchmod(dst, st.st_mode & 07777) < 0)
        fail("tmpcopyup", m->dest);
    close(src);
    close(dst);
    close(top);
}

static void mount_one(int rootfd, const struct mnt *m)
{
    char target[32];
    int bind = m->kind != MOUNT_NORMAL || (m->flags & MS_BIND);
    int fd = open_in_root(rootfd, m->dest, m->kind == MOUNT_BIND_FILE ? IN_ROOT_MKFILE : IN_ROOT_MKDIR);
    if (fd < 0)
        fail("mount", m->dest);
    if (m->kind == MOUNT_NORMAL && (m->flags & MS_REMOUNT) && (m->flags & MS_BIND)) {
        /* change the per-mount flags of what is already mounted at dest (no new mount) */
        if (remount(fdpath(fd, target), m->flags & ~(unsigned long)MS_REC) < 0)
            fail("mount", m->dest);
        close(fd);
        return;
    }
    if (bind) {
        if (mount(m->source, fdpath(fd, target), NULL, MS_BIND | (m->flags & MS_REC), NULL) < 0)
            fail("mount", m->dest);
        unsigned long rest = m->flags & ~(unsigned long)(MS_BIND | MS_REC | MS_REMOUNT);
        if (rest) {
            fd = reopen(rootfd, fd, m->dest);
            if (remount(fdpath(fd, target), MS_REMOUNT | MS_BIND | rest) < 0)
                fail("mount", m->dest);
        }
    } else if (mount(m->source, fdpath(fd, target), m->fstype, m->flags, m->data) < 0) {
        fail("mount", m->dest);
    } else if (m->extra & MOUNT_X_COPYUP) {
        copy_up(rootfd, fd, m);
    }
    if (m->propagation) {
        fd = reopen(rootfd, fd, m->dest);
        if (mount(NULL, fdpath(fd, target), NULL, m->propagation, NULL) < 0)
            fail("mount", m->dest);
    }
    close(fd);
}

void do_mounts(struct plan *p, int rootfd)
{
    for (size_t i = 0; i < p->n_mounts; i++)
        mount_one(rootfd, &p->mounts[i]);
}

/* Opens the parent directory of PATH inside the root (creating it) and points *base at the last name. */
static int open_parent(int rootfd, const char *step, const char *path, char *buf, const char **base)
{
    size_t len = strlen(path);
    if (len >= PATH_MAX)
        fail_err(step, ENAMETOOLONG, path);
    memcpy(buf, path, len + 1);
    while (len > 1 && buf[len - 1] == '/')
        buf[--len] = 0;
    char *slash = strrchr(buf, '/');
    *base = slash ? slash + 1 : buf;
    if (!**base || !strcmp(*base, ".") || !strcmp(*base, ".."))
        fail_err(step, EINVAL, path);
    if (slash)
        *slash = 0;
    int fd = open_in_root(rootfd, slash && slash != buf ? buf : "/", IN_ROOT_MKDIR);
    if (fd < 0)
        fail(step, path);
    return fd;
}

void do_devices(struct plan *p, int rootfd)
{
    char buf[PATH_MAX], target[32];
    const char *base;
    for (size_t i = 0; i < p->n_devices; i++) {
        const struct dev *d = &p->devices[i];
        int dirfd = open_parent(rootfd, "device", d->path, buf, &base);
        if (mknodat(dirfd, base, d->type | (d->mode & 07777), makedev(d->major, d->minor)) == 0) {
            if (fchownat(dirfd, base, d->uid, d->gid, AT_SYMLINK_NOFOLLOW) < 0)
                fail("device", d->path);
        } else if (errno == EPERM) {    /* user namespace: borrow the host's node */
            int fd = open_in_root(rootfd, d->path, IN_ROOT_MKFILE);
            if (fd < 0 || mount(d->path, fdpath(fd, target), NULL, MS_BIND, NULL) < 0)
                fail("device", d->path);
            close(fd);
        } else if (errno != EEXIST) {
            fail("device", d->path);
        }
        close(dirfd);
    }
}

void do_symlinks(struct plan *p, int rootfd)
{
    char buf[PATH_MAX];
    const char *base;
    for (size_t i = 0; i < p->n_symlinks; i++) {
        int dirfd = open_parent(rootfd, "symlink", p->symlinks[i].b, buf, &base);
        if (symlinkat(p->symlinks[i].a, dirfd, base) < 0 && errno != EEXIST)
            fail("symlink", p->symlinks[i].b);
        close(dirfd);
    }
}

void enter_root(struct plan *p)
{
    if (chdir(p->rootfs) < 0)
        fail("pivot_root", p->rootfs);
    if (p->no_pivot) {
        if (mount(p->rootfs, "/", NULL, MS_MOVE, NULL) < 0)
            fail("pivot_root", p->rootfs);
        if (chroot(".") < 0)
            fail("chroot", p->rootfs);
    } else {
        /* pivot_root(".", ".") stacks the old root on top of the new one; detach it from there
         * without letting the unmount propagate back to the host. */
        int oldroot = open("/", O_DIRECTORY | O_RDONLY | O_CLOEXEC);
        if (oldroot < 0)
            fail("pivot_root", "/");
        if (syscall(SYS_pivot_root, ".", ".") < 0)
            fail("pivot_root", p->rootfs);
        if (fchdir(oldroot) < 0)
            fail("pivot_root", "old root");
        if (mount(NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
            fail("pivot_root", "old root");
        if (umount2(".", MNT_DETACH) < 0)
            fail("pivot_root", "old root");
        close(oldroot);
    }
    if (chdir("/") < 0)
        fail("pivot_root", "/");
}

/* CVE-2025-31133: the /dev/null we bind over masked files must really be the null device. */
static int open_devnull(int rootfd)
{
    struct stat st;
    int fd = open_in_root(rootfd, "/dev/null", IN_ROOT_OPEN);
    if (fd < 0 || fstat(fd, &st) < 0)
        fail("mask", "/dev/null");
    if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3))
        fail_err("mask", ENODEV, "/dev/null");
    return fd;
}

void do_masks_and_readonly(struct plan *p)
{
    char target[32], src[32];
    struct stat st;
    int devnull = -1;
    int rootfd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (rootfd < 0)
        fail("mask", "/");
    for (size_t i = 0; i < p->n_masks; i++) {
        const char *path = p->masks[i];
        int fd = open_in_root(rootfd, path, IN_ROOT_OPEN);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0 || fstat(fd, &st) < 0)
            fail("mask", path);
        if (S_ISDIR(st.st_mode)) {
            if (mount("tmpfs", fdpath(fd, target), "tmpfs", MS_RDONLY, NULL) < 0)
                fail("mask", path);
        } else {
            if (devnull < 0)
                devnull = open_devnull(rootfd);
            if (mount(fdpath(devnull, src), fdpath(fd, target), NULL, MS_BIND, NULL) < 0)
                fail("mask", path);
        }
        close(fd);
    }
    if (devnull >= 0)
        close(devnull);
    for (size_t i = 0; i < p->n_readonly; i++) {
        const char *path = p->readonly[i];
        int fd = open_in_root(rootfd, path, IN_ROOT_OPEN);
        if (fd < 0 && errno == ENOENT)
            continue;
        if (fd < 0 || mount(fdpath(fd, src), fdpath(fd, target), NULL, MS_BIND | MS_REC, NULL) < 0)
            fail("readonly", path);
        close(fd);
        if ((fd = open_in_root(rootfd, path, IN_ROOT_OPEN)) < 0 ||
            remount(fdpath(fd, target), MS_BIND | MS_REMOUNT | MS_RDONLY) < 0)
            fail("readonly", path);
        close(fd);
    }
    close(rootfd);
}

void do_rootfs_readonly(void)
{
    if (remount("/", MS_BIND | MS_REMOUNT | MS_RDONLY) < 0)
        fail("mount", "/");
}

void do_sysctls(struct plan *p)
{
    char rel[PATH_MAX];
    for (size_t i = 0; i < p->n_sysctls; i++) {
        const char *key = p->sysctls[i].a;
        if (snprintf(rel, sizeof rel, "sys/%s", key) >= (int)sizeof rel)
            fail_err("sysctl", ENAMETOOLONG, key);
        for (char *c = rel + 4; *c; c++)
            if (*c == '.')
                *c = '/';
        if (write_proc(rel, p->sysctls[i].b) < 0)
            fail("sysctl", key);
    }
}
