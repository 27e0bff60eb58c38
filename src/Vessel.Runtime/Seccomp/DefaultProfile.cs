using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Seccomp;

/// <summary>
/// Vessel's default seccomp profile: an allow-list modelled on moby's default profile (the one Docker
/// uses), for x86_64 hosts (architectures x86_64, x86 and x32, as moby lists on amd64).
/// <para>Default action: SCMP_ACT_ERRNO with EPERM, as moby. containers/common instead defaults to
/// ENOSYS so that a syscall newer than the profile makes libc fall back to an older one instead of
/// failing. Vessel gets that without ENOSYS-for-everything: <see cref="SeccompCompiler"/> returns
/// ENOSYS (like runc's patchbpf) for syscall numbers above the newest syscall the profile names, and
/// clone3 gets ENOSYS explicitly below. Syscalls the kernel has but the container may not use (mount
/// without CAP_SYS_ADMIN, kexec_load, keyctl, ...) then fail with EPERM, "not permitted", which is what
/// they mean: ENOSYS would tell programs the kernel lacks the feature and send some of them down
/// surprising fallback paths.</para>
/// <para>Capability-dependent parts follow moby: e.g. CAP_SYS_ADMIN unlocks mount, umount2, setns,
/// unshare, clone with namespace flags and clone3; without it clone is only allowed when no CLONE_NEW*
/// flag is set and clone3 returns ENOSYS (its flags are in memory, which seccomp can't inspect, so libc
/// falls back to clone). CAP_SYS_PTRACE unlocks kcmp, pidfd_getfd and process_madvise (ptrace and
/// process_vm_* are allowed regardless: since Linux 4.8 ptrace can't be used to bypass seccomp).</para>
/// </summary>
public static class DefaultProfile
{
    private const uint Eperm = 1;
    private const uint Enosys = 38;
    private const ulong AfAlg = 38, AfVsock = 40;

    // CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWCGROUP
    private const ulong CloneNamespaceFlags = 0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x02000000;

    /// <summary>Allowed whatever the capabilities. Names of other architectures (or newer than the
    /// syscall tables) are harmless: the compiler skips what an ABI doesn't have.</summary>
    private static readonly string[] Allowed =
    [
        "accept", "accept4", "access", "adjtimex", "alarm", "bind", "brk", "cachestat", "capget", "capset",
        "chdir", "chmod", "chown", "chown32", "clock_adjtime", "clock_adjtime64", "clock_getres",
        "clock_getres_time64", "clock_gettime", "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64",
        "close", "close_range", "connect", "copy_file_range", "creat", "dup", "dup2", "dup3", "epoll_create",
        "epoll_create1", "epoll_ctl", "epoll_ctl_old", "epoll_pwait", "epoll_pwait2", "epoll_wait",
        "epoll_wait_old", "eventfd", "eventfd2", "execve", "execveat", "exit", "exit_group", "faccessat",
        "faccessat2", "fadvise64", "fadvise64_64", "fallocate", "fanotify_mark", "fchdir", "fchmod", "fchmodat",
        "fchmodat2", "fchown", "fchown32", "fchownat", "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr",
        "flock", "fork", "fremovexattr", "fsetxattr", "fstat", "fstat64", "fstatat64", "fstatfs", "fstatfs64",
        "fsync", "ftruncate", "ftruncate64", "futex", "futex_requeue", "futex_time64", "futex_wait", "futex_waitv",
        "futex_wake", "futimesat", "getcpu", "getcwd", "getdents", "getdents64", "getegid", "getegid32", "geteuid",
        "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpeername", "getpgid",
        "getpgrp", "getpid", "getppid", "getpriority", "getrandom", "getresgid", "getresgid32", "getresuid",
        "getresuid32", "getrlimit", "get_robust_list", "getrusage", "getsid", "getsockname", "getsockopt",
        "get_thread_area", "gettid", "gettimeofday", "getuid", "getuid32", "getxattr", "getxattrat",
        "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch", "io_cancel", "ioctl",
        "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64", "ioprio_get", "ioprio_set",
        "io_setup", "io_submit", "ipc", "kill", "landlock_add_rule", "landlock_create_ruleset",
        "landlock_restrict_self", "lchown", "lchown32", "lgetxattr", "link", "linkat", "listen", "listmount",
        "listxattr", "listxattrat", "llistxattr", "_llseek", "lremovexattr", "lseek", "lsetxattr", "lstat",
        "lstat64", "madvise", "map_shadow_stack", "membarrier", "memfd_create", "memfd_secret", "mincore", "mkdir",
        "mkdirat", "mknod", "mknodat", "mlock", "mlock2", "mlockall", "mmap", "mmap2", "mprotect", "mq_getsetattr",
        "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64", "mq_timedsend",
        "mq_timedsend_time64", "mq_unlink", "mremap", "mseal", "msgctl", "msgget", "msgrcv", "msgsnd", "msync",
        "munlock", "munlockall", "munmap", "name_to_handle_at", "nanosleep", "newfstatat", "_newselect", "open",
        "openat", "openat2", "pause", "pidfd_open", "pidfd_send_signal", "pipe", "pipe2", "pkey_alloc",
        "pkey_free", "pkey_mprotect", "poll", "ppoll", "ppoll_time64", "prctl", "pread64", "preadv", "preadv2",
        "prlimit64", "process_mrelease", "pselect6", "pselect6_time64", "pwrite64", "pwritev", "pwritev2", "read",
        "readahead", "readlink", "readlinkat", "readv", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64",
        "recvmsg", "remap_file_pages", "removexattr", "removexattrat", "rename", "renameat", "renameat2",
        "restart_syscall", "rmdir", "rseq", "rt_sigaction", "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo",
        "rt_sigreturn", "rt_sigsuspend", "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo",
        "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_get_priority_max",
        "sched_get_priority_min", "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
        "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler", "sched_yield", "seccomp",
        "select", "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "send", "sendfile",
        "sendfile64", "sendmmsg", "sendmsg", "sendto", "setfsgid", "setfsgid32", "setfsuid", "setfsuid32",
        "setgid", "setgid32", "setgroups", "setgroups32", "setitimer", "setpgid", "setpriority", "setregid",
        "setregid32", "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
        "setrlimit", "set_robust_list", "setsid", "setsockopt", "set_thread_area", "set_tid_address", "setuid",
        "setuid32", "setxattr", "setxattrat", "shmat", "shmctl", "shmdt", "shmget", "shutdown", "sigaltstack",
        "signalfd", "signalfd4", "sigprocmask", "sigreturn", "socketcall", "socketpair", "splice", "stat",
        "stat64", "statfs", "statfs64", "statmount", "statx", "symlink", "symlinkat", "sync", "sync_file_range",
        "syncfs", "sysinfo", "tee", "tgkill", "time", "timer_create", "timer_delete", "timer_getoverrun",
        "timer_gettime", "timer_gettime64", "timer_settime", "timer_settime64", "timerfd_create",
        "timerfd_gettime", "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "times", "tkill",
        "truncate", "truncate64", "ugetrlimit", "umask", "uname", "unlink", "unlinkat", "uretprobe", "utime",
        "utimensat", "utimensat_time64", "utimes", "vfork", "vmsplice", "wait4", "waitid", "waitpid", "write",
        "writev",
        // Since Linux 4.8 a tracer can't bypass seccomp, so moby allows these on such kernels.
        "process_vm_readv", "process_vm_writev", "ptrace",
        // x86-specific (moby: arch_prctl on amd64/x32, modify_ldt on amd64/x32/x86).
        "arch_prctl", "modify_ldt",
    ];

    /// <summary>Syscalls a capability unlocks (moby's "includes: caps").</summary>
    private static readonly (string Capability, string[] Names)[] ByCapability =
    [
        ("CAP_DAC_READ_SEARCH", ["open_by_handle_at"]),
        ("CAP_SYS_ADMIN",
        [
            "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie",
            "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount", "mount_setattr", "move_mount",
            "open_tree", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns",
            "syslog", "umount", "umount2", "unshare",
        ]),
        ("CAP_SYS_BOOT", ["reboot"]),
        ("CAP_SYS_CHROOT", ["chroot"]),
        ("CAP_SYS_MODULE", ["delete_module", "init_module", "finit_module"]),
        ("CAP_SYS_PACCT", ["acct"]),
        ("CAP_SYS_PTRACE", ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]),
        ("CAP_SYS_RAWIO", ["iopl", "ioperm"]),
        ("CAP_SYS_TIME", ["settimeofday", "stime", "clock_settime", "clock_settime64"]),
        ("CAP_SYS_TTY_CONFIG", ["vhangup"]),
        ("CAP_SYS_NICE", ["get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"]),
        ("CAP_SYSLOG", ["syslog"]),
        ("CAP_BPF", ["bpf"]),
        ("CAP_PERFMON", ["perf_event_open"]),
    ];

    /// <summary>The profile for a container whose bounding set is <paramref name="capabilities"/>
    /// (names like <c>CAP_SYS_ADMIN</c>; case and the <c>CAP_</c> prefix don't matter).</summary>
    public static LinuxSeccomp Create(IReadOnlyCollection<string> capabilities)
    {
        ArgumentNullException.ThrowIfNull(capabilities);
        var caps = new HashSet<string>(StringComparer.Ordinal);
        foreach (var cap in capabilities)
        {
            var upper = cap.Trim().ToUpperInvariant();
            caps.Add(upper.StartsWith("CAP_", StringComparison.Ordinal) ? upper : "CAP_" + upper);
        }

        var syscalls = new List<LinuxSyscall> { Allow(Allowed) };

        // socket(2): every address family but AF_ALG (kernel crypto API, a recurring source of exploits)
        // and AF_VSOCK (talks to the hypervisor/host). Families are ints: the "<= 0xffffffff" keeps a value
        // with high bits set, which the kernel would truncate to AF_ALG, from passing "> AF_VSOCK".
        // On i386, socketcall(2) reaches socket() without these checks (moby has the same hole).
        syscalls.Add(Allow(["socket"], Arg(0, "SCMP_CMP_LT", AfAlg)));
        syscalls.Add(Allow(["socket"], Arg(0, "SCMP_CMP_EQ", AfAlg + 1)));
        syscalls.Add(Allow(["socket"], Arg(0, "SCMP_CMP_GT", AfVsock), Arg(0, "SCMP_CMP_LE", 0xffffffff)));

        // personality(2): PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (query).
        ulong[] personas = [0x0, 0x0008, 0x20000, 0x20008, 0xffffffff];
        foreach (ulong persona in personas)
            syscalls.Add(Allow(["personality"], Arg(0, "SCMP_CMP_EQ", persona)));

        foreach (var (capability, names) in ByCapability)
            if (caps.Contains(capability))
                syscalls.Add(Allow(names));

        if (!caps.Contains("CAP_SYS_ADMIN"))
        {
            // clone without any CLONE_NEW* flag (flags are argument 0 on x86).
            syscalls.Add(Allow(["clone"], new LinuxSeccompArg { Index = 0, Value = CloneNamespaceFlags, ValueTwo = 0, Op = "SCMP_CMP_MASKED_EQ" }));
            // clone3 takes its flags in memory, out of seccomp's reach: make libc fall back to clone.
            syscalls.Add(new LinuxSyscall { Names = ["clone3"], Action = "SCMP_ACT_ERRNO", ErrnoRet = Enosys });
        }

        return new LinuxSeccomp
        {
            DefaultAction = "SCMP_ACT_ERRNO",
            DefaultErrnoRet = Eperm,
            Architectures = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            Syscalls = syscalls,
        };
    }

    private static LinuxSyscall Allow(string[] names, params LinuxSeccompArg[] args) => new()
    {
        Names = [.. names],
        Action = "SCMP_ACT_ALLOW",
        Args = args.Length == 0 ? null : [.. args],
    };

    private static LinuxSeccompArg Arg(uint index, string op, ulong value) => new() { Index = index, Value = value, Op = op };
}
