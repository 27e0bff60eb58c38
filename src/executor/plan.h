/* The plan: the flat, already-validated description of one container process that the C# runtime
 * writes and the executor carries out. docs/executor.md is the contract; Vessel.Runtime/Plan/PlanRecord.cs
 * must list the same numbers.
 *
 * Layout: 8-byte header "VSLPLAN1", then records until the end of the file:
 *   u16 type | u16 zero | u32 length | length bytes of payload | zero padding to a multiple of 8.
 * Integers are little-endian. A "string" is NUL-terminated inside the payload; a record's strings
 * follow its fixed-size integers in the order documented beside the type. */
#ifndef VESSEL_PLAN_H
#define VESSEL_PLAN_H

#include <stdint.h>

#define PLAN_MAGIC "VSLPLAN1"
#define PLAN_MAX_BYTES (16u << 20)

enum plan_record {
    /* what to do */
    R_MODE = 1,             /* u32: MODE_INIT (create a container) or MODE_EXEC (join a running one) */
    R_CLONE_FLAGS = 2,      /* u64: CLONE_NEW* flags for the clone() of the child (never CLONE_NEWCGROUP) */
    R_UNSHARE_CGROUP = 3,   /* no payload: unshare(CLONE_NEWCGROUP) after the parent placed us in the cgroup */
    R_JOIN_NS = 4,          /* u32 nstype (CLONE_NEW*), string path; joined in record order before clone() */

    /* file system (MODE_INIT only) */
    R_ROOTFS = 10,          /* string: absolute host path of the rootfs */
    R_ROOTFS_PROPAGATION = 11, /* u64 mount flags applied to "/" recursively first (MS_SLAVE|MS_REC by default) */
    R_ROOTFS_READONLY = 12, /* no payload: remount the new root read-only at the end */
    R_NO_PIVOT = 13,        /* no payload: MS_MOVE + chroot instead of pivot_root */
    R_MOUNT = 14,           /* u64 flags, u64 propagation flags, u32 kind (MOUNT_*), u32 extra (MOUNT_X_*),
                               strings: source, destination (absolute, inside the rootfs), fstype, data */
    R_DEVICE = 15,          /* u32 type (S_IFCHR/S_IFBLK/S_IFIFO), u32 major, u32 minor, u32 mode (permission bits),
                               u32 uid, u32 gid, string path (absolute, inside the rootfs). Falls back to a bind
                               mount of the same host path when mknod is refused (user namespaces). */
    R_SYMLINK = 16,         /* strings: target, link path (inside the rootfs); an existing entry is left alone */
    R_MASK = 17,            /* string: path inside the container to mask (/dev/null over files, empty ro tmpfs over dirs) */
    R_READONLY_PATH = 18,   /* string: path inside the container to bind read-only onto itself */
    R_HOSTNAME = 19,        /* string */
    R_DOMAINNAME = 20,      /* string */
    R_SYSCTL = 21,          /* strings: key (dotted, e.g. net.ipv4.ip_forward), value */

    /* process */
    R_RLIMIT = 30,          /* u32 resource, u32 zero, u64 soft, u64 hard */
    R_OOM_SCORE_ADJ = 31,   /* i32 */
    R_CAPS = 32,            /* u64 bounding, effective, permitted, inheritable, ambient (bit n = capability n) */
    R_NO_NEW_PRIVS = 33,    /* no payload */
    R_SECCOMP = 34,         /* u32 seccomp flags (SECCOMP_FILTER_FLAG_*), u32 when (SECCOMP_EARLY/LATE),
                               then struct sock_filter[] (8 bytes each) */
    R_USER = 35,            /* u32 uid, u32 gid, i32 umask (-1: leave), u32 count, u32 additional gids[count] */
    R_CWD = 36,             /* string, absolute inside the container */
    R_ENV = 37,             /* string "KEY=VALUE", one record each, in order */
    R_ARG = 38,             /* string, one record each, argv[0] first */
    R_PRESERVE_FDS = 39,    /* u32 n: fds 3 .. 3+n-1 stay open across exec (LISTEN_FDS, --preserve-fds) */
    R_CONSOLE_FD = 40,      /* u32 fd of a connected console socket: make a pty, send its master, use its slave */
    R_FIFO_FD = 41,         /* u32 fd of the exec fifo (opened O_PATH by the runtime): block on it before exec */
    R_HOOK = 42,            /* u32 phase (HOOK_*), u32 timeout seconds (0 = none), u32 argc, u32 envc,
                               strings: path, argv[argc], env[envc]. State JSON arrives with "go". */
    R_SYNC_HOOKS = 43,      /* no payload: stop after the mounts, before pivot_root, send "hooks", wait for "resume" */
    R_PARENT_DEATH_SIGNAL = 44, /* u32 signal */
    R_PERSONALITY = 45,     /* u32 persona for personality(2) */
    R_SETSID = 46,          /* no payload: setsid() even without a terminal (every container init does) */
};

enum { MODE_INIT = 1, MODE_EXEC = 2 };
enum { MOUNT_NORMAL = 0, MOUNT_BIND_DIR = 1, MOUNT_BIND_FILE = 2 };
/* MOUNT_NORMAL with MS_REMOUNT|MS_BIND: only change the per-mount flags of what is mounted at the destination. */
/* MOUNT_X_COPYUP (runc's tmpcopyup, MOUNT_NORMAL only): the new mount starts with a copy of the directory it covers. */
enum { MOUNT_X_COPYUP = 1 };
enum { SECCOMP_EARLY = 0, SECCOMP_LATE = 1 };
enum { HOOK_CREATE_CONTAINER = 1, HOOK_START_CONTAINER = 2 };

#endif
