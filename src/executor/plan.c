/* The plan parser. Everything is bounds-checked here once, so the steps can trust the structures. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "executor.h"

struct cur { uint8_t *p; size_t n; int ok; };

static _Noreturn void bad(unsigned type)
{
    char buf[16];
    snprintf(buf, sizeof buf, "%u", type);
    fail_err("plan", EINVAL, buf);
}

static uint32_t u32(struct cur *c)
{
    uint32_t v = 0;
    if (c->n < 4) {
        c->ok = 0;
        return 0;
    }
    memcpy(&v, c->p, 4);
    c->p += 4, c->n -= 4;
    return le32toh(v);
}

static uint64_t u64(struct cur *c)
{
    uint64_t v = 0;
    if (c->n < 8) {
        c->ok = 0;
        return 0;
    }
    memcpy(&v, c->p, 8);
    c->p += 8, c->n -= 8;
    return le64toh(v);
}

static char *str(struct cur *c)
{
    uint8_t *z = c->ok ? memchr(c->p, 0, c->n) : NULL;
    if (!z) {
        c->ok = 0;
        return NULL;
    }
    char *s = (char *)c->p;
    c->n -= (size_t)(z - c->p) + 1;
    c->p = z + 1;
    return s;
}

/* Strings that end up in argv/env arrays: count checked against the bytes left (each takes >= 1). */
static char **strs(struct cur *c, uint32_t count)
{
    if (!c->ok || count > c->n)
        return c->ok = 0, NULL;
    char **v = calloc((size_t)count + 1, sizeof *v);
    if (!v)
        fail("plan", "calloc");
    for (uint32_t i = 0; i < count && c->ok; i++)
        v[i] = str(c);
    return v;
}

static void *push(void *list, size_t *n, size_t size)
{
    char *l = realloc(*(void **)list, (*n + 1) * size);
    if (!l)
        fail("plan", "realloc");
    *(void **)list = l;
    memset(l + *n * size, 0, size);
    return l + (*n)++ * size;
}
#define PUSH(p, field) ((__typeof__((p)->field))push(&(p)->field, &(p)->n_##field, sizeof *(p)->field))

static void record(struct plan *p, unsigned type, struct cur *c)
{
    switch (type) {
    case R_MODE: p->mode = u32(c); break;
    case R_CLONE_FLAGS: p->clone_flags = u64(c); break;
    case R_UNSHARE_CGROUP: p->unshare_cgroup = 1; break;
    case R_JOIN_NS: { struct ns *n = PUSH(p, ns); n->type = u32(c); n->path = str(c); break; }
    case R_ROOTFS: p->rootfs = str(c); break;
    case R_ROOTFS_PROPAGATION: p->have_propagation = 1; p->propagation = u64(c); break;
    case R_ROOTFS_READONLY: p->rootfs_readonly = 1; break;
    case R_NO_PIVOT: p->no_pivot = 1; break;
    case R_MOUNT: {
        struct mnt *m = PUSH(p, mounts);
        m->flags = u64(c);
        m->propagation = u64(c);
        m->kind = u32(c);
        m->extra = u32(c);
        if ((m->extra & ~(uint32_t)MOUNT_X_COPYUP) || m->kind > MOUNT_BIND_FILE ||
            ((m->extra & MOUNT_X_COPYUP) && m->kind != MOUNT_NORMAL))
            c->ok = 0;
        m->source = str(c), m->dest = str(c), m->fstype = str(c), m->data = str(c);
        break;
    }
    case R_DEVICE: {
        struct dev *d = PUSH(p, devices);
        d->type = u32(c), d->major = u32(c), d->minor = u32(c);
        d->mode = u32(c), d->uid = u32(c), d->gid = u32(c);
        d->path = str(c);
        break;
    }
    case R_SYMLINK: { struct pair *s = PUSH(p, symlinks); s->a = str(c); s->b = str(c); break; }
    case R_MASK: *PUSH(p, masks) = str(c); break;
    case R_READONLY_PATH: *PUSH(p, readonly) = str(c); break;
    case R_HOSTNAME: p->hostname = str(c); break;
    case R_DOMAINNAME: p->domainname = str(c); break;
    case R_SYSCTL: { struct pair *s = PUSH(p, sysctls); s->a = str(c); s->b = str(c); break; }
    case R_RLIMIT: {
        struct rlim *r = PUSH(p, rlimits);
        r->resource = u32(c);
        if (u32(c) != 0)
            c->ok = 0;
        r->soft = u64(c), r->hard = u64(c);
        break;
    }
    case R_OOM_SCORE_ADJ: p->have_oom = 1; p->oom_score_adj = (int32_t)u32(c); break;
    case R_CAPS:
        p->have_caps = 1;
        p->cap_bnd = u64(c), p->cap_eff = u64(c), p->cap_prm = u64(c);
        p->cap_inh = u64(c), p->cap_amb = u64(c);
        break;
    case R_NO_NEW_PRIVS: p->no_new_privs = 1; break;
    case R_SECCOMP: {
        struct filter *f = PUSH(p, seccomp);
        f->flags = u32(c), f->when = u32(c);
        if (!c->ok || c->n == 0 || c->n % 8 || c->n / 8 > 0xffff || f->when > SECCOMP_LATE) {
            c->ok = 0;
            break;
        }
        f->prog.len = (unsigned short)(c->n / 8);
        f->prog.filter = (struct sock_filter *)c->p;  /* 8-aligned: header and records are */
        c->p += c->n, c->n = 0;
        break;
    }
    case R_USER:
        p->have_user = 1;
        p->uid = u32(c), p->gid = u32(c), p->umask = (int32_t)u32(c);
        p->n_gids = u32(c);
        if (!c->ok || p->n_gids > c->n / 4) {
            c->ok = 0;
            break;
        }
        p->gids = calloc(p->n_gids + 1, sizeof *p->gids);
        if (!p->gids)
            fail("plan", "calloc");
        for (uint32_t i = 0; i < p->n_gids; i++)
            p->gids[i] = u32(c);
        break;
    case R_CWD: p->cwd = str(c); break;
    case R_ENV: *PUSH(p, env) = str(c); break;
    case R_ARG: *PUSH(p, argv) = str(c); break;
    case R_PRESERVE_FDS: p->preserve_fds = u32(c); break;
    case R_CONSOLE_FD: p->console_fd = (int)u32(c); break;
    case R_FIFO_FD: p->fifo_fd = (int)u32(c); break;
    case R_HOOK: {
        struct hook *h = PUSH(p, hooks);
        h->phase = u32(c), h->timeout = u32(c);
        uint32_t argc = u32(c), envc = u32(c);
        h->path = str(c);
        h->argv = strs(c, argc);
        h->env = strs(c, envc);
        if (c->ok && argc == 0) {       /* as Go's exec.Cmd does: no Args means argv = {Path} */
            h->argv = realloc(h->argv, 2 * sizeof *h->argv);
            if (!h->argv)
                fail("plan", "realloc");
            h->argv[0] = (char *)h->path, h->argv[1] = NULL;
        }
        break;
    }
    case R_SYNC_HOOKS: p->sync_hooks = 1; break;
    case R_PARENT_DEATH_SIGNAL: p->have_pdeathsig = 1; p->pdeathsig = u32(c); break;
    case R_PERSONALITY: p->have_personality = 1; p->personality = u32(c); break;
    case R_SETSID: p->setsid = 1; break;
    default: c->ok = 0;
    }
    if (!c->ok || c->n != 0)
        bad(type);
}

void plan_read(int fd, struct plan *p)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        fail("plan", "fstat");
    if (st.st_size < 8 || (uint64_t)st.st_size > PLAN_MAX_BYTES)
        bad(0);
    size_t size = (size_t)st.st_size, got = 0;
    uint8_t *buf = malloc(size);
    if (!buf)
        fail("plan", "malloc");
    while (got < size) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            fail("plan", "pread");
        if (n == 0)
            bad(0);
        got += (size_t)n;
    }
    if (memcmp(buf, PLAN_MAGIC, 8) != 0)
        bad(0);

    memset(p, 0, sizeof *p);
    p->console_fd = p->fifo_fd = -1;
    p->umask = -1;
    for (size_t off = 8; off < size;) {
        if (size - off < 8)
            bad(0);
        uint16_t type, zero;
        uint32_t len;
        memcpy(&type, buf + off, 2), memcpy(&zero, buf + off + 2, 2), memcpy(&len, buf + off + 4, 4);
        type = le16toh(type), zero = le16toh(zero), len = le32toh(len);
        off += 8;
        if (zero != 0 || len > size - off)
            bad(type);
        struct cur c = { buf + off, len, 1 };
        record(p, type, &c);
        size_t padded = ((size_t)len + 7) & ~(size_t)7;
        off += padded < size - off ? padded : size - off;
    }

    /* NULL-terminate argv and env for execve. */
    *PUSH(p, argv) = NULL, p->n_argv--;
    *PUSH(p, env) = NULL, p->n_env--;
    if (p->mode != MODE_INIT && p->mode != MODE_EXEC)
        bad(R_MODE);
    if (p->n_argv == 0 || !p->argv[0][0])
        bad(R_ARG);
    if (p->mode == MODE_INIT && (!p->rootfs || p->rootfs[0] != '/'))
        bad(R_ROOTFS);
}
