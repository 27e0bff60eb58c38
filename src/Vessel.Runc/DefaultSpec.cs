using Vessel.Runtime.Spec;

namespace Vessel.Runc;

/// <summary>The config.json `spec` writes: the same defaults as runc's, so tools that start from
/// `runc spec` get what they expect.</summary>
public static class DefaultSpec
{
    private static readonly string[] DefaultCapabilities = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];

    public static RuntimeSpec Create(bool rootless)
    {
        var spec = new RuntimeSpec
        {
            OciVersion = SpecVersion.Current,
            Process = new ProcessSpec
            {
                Terminal = true,
                User = new UserSpec(),
                Args = ["sh"],
                Env = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                Cwd = "/",
                Capabilities = new CapabilitiesSpec
                {
                    Bounding = [.. DefaultCapabilities], Effective = [.. DefaultCapabilities],
                    Permitted = [.. DefaultCapabilities], Ambient = [.. DefaultCapabilities],
                },
                Rlimits = [new RlimitSpec { Type = "RLIMIT_NOFILE", Hard = 1024, Soft = 1024 }],
                NoNewPrivileges = true,
            },
            Root = new RootSpec { Path = "rootfs", Readonly = true },
            Hostname = "vessel",
            Mounts =
            [
                Mount("/proc", "proc", "proc"),
                Mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
                Mount("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
                Mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
                Mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
                Mount("/sys", "sysfs", "sysfs", "nosuid", "noexec", "nodev", "ro"),
                Mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", "ro"),
            ],
            Linux = new LinuxSpec
            {
                Resources = new LinuxResources { Devices = [new LinuxDeviceCgroup { Allow = false, Access = "rwm" }] },
                Namespaces = [new() { Type = "pid" }, new() { Type = "network" }, new() { Type = "ipc" }, new() { Type = "uts" }, new() { Type = "mount" }, new() { Type = "cgroup" }],
                MaskedPaths =
                [
                    "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
                    "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/sys/devices/virtual/powercap",
                ],
                ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
            },
        };
        if (rootless) MakeRootless(spec);
        return spec;
    }

    /// <summary>runc's --rootless changes: a user namespace mapping the caller, no network namespace,
    /// /sys bound from the host, no gid= options that would need mapped groups, no cgroup mount.</summary>
    private static void MakeRootless(RuntimeSpec spec)
    {
        var linux = spec.Linux!;
        linux.Resources = null;
        linux.Namespaces = [.. linux.Namespaces!.Where(n => n.Type != "network"), new NamespaceSpec { Type = "user" }];
        var uid = Vessel.Linux.Processes.EffectiveUid;
        linux.UidMappings = [new IdMapping { ContainerId = 0, HostId = uid, Size = 1 }];
        linux.GidMappings = [new IdMapping { ContainerId = 0, HostId = uid, Size = 1 }];
        spec.Mounts = spec.Mounts!
            .Where(m => m.Type != "cgroup")
            .Select(m => m.Destination == "/sys"
                ? Mount("/sys", "none", "/sys", "rbind", "nosuid", "noexec", "nodev", "ro")
                : new MountSpec { Destination = m.Destination, Type = m.Type, Source = m.Source, Options = m.Options?.Where(o => !o.StartsWith("gid=", StringComparison.Ordinal)).ToList() })
            .ToList();
    }

    private static MountSpec Mount(string destination, string type, string source, params string[] options) =>
        new() { Destination = destination, Type = type, Source = source, Options = options.Length > 0 ? [.. options] : null };
}
