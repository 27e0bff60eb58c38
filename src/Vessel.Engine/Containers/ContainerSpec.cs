using Vessel.Api;
using Vessel.Images.Oci;
using Vessel.Runtime.Plan;
using Vessel.Runtime.Seccomp;
using Vessel.Runtime.Spec;

namespace Vessel.Engine.Containers;

/// <summary>Builds a container's OCI config.json from the image config and the create request, with docker's
/// defaults (docs/containers.md). Pure: the files it needs from the rootfs (/etc/passwd, /etc/group) are
/// passed in as text.</summary>
public static class ContainerSpec
{
    public const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>docker/containerd's default capabilities (notes/runtime-contract.md).</summary>
    public static readonly string[] DefaultCapabilities =
    [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
        "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ];

    public static readonly string[] MaskedPaths =
    [
        "/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
        "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
    ];

    public static readonly string[] ReadonlyPaths = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

    /// <summary>The process's argv: entrypoint + cmd, each from the request when given, else the image's
    /// (a request Entrypoint drops the image's Cmd, as docker does).</summary>
    public static List<string> Args(ContainerCreateRequest req, ContainerConfig image)
    {
        var entrypoint = req.Entrypoint ?? image.Entrypoint?.ToList() ?? [];
        var cmd = req.Cmd is { Count: > 0 } ? req.Cmd : req.Entrypoint is not null ? [] : image.Cmd?.ToList() ?? [];
        var args = entrypoint.Concat(cmd).ToList();
        if (args.Count == 0) throw EngineException.Invalid("no command specified: the image has no Cmd or Entrypoint; give one");
        return args;
    }

    /// <summary>Image Env, then the request's (a KEY=VALUE replaces the same KEY; a bare KEY is dropped unless set),
    /// PATH defaulted, HOSTNAME set.</summary>
    public static List<string> Env(ContainerCreateRequest req, ContainerConfig image, string hostname)
    {
        var env = new List<string>();
        void Set(string kv)
        {
            var eq = kv.IndexOf('=');
            if (eq <= 0) throw EngineException.Invalid($"bad environment variable \"{kv}\": expected KEY=VALUE");
            var key = kv[..(eq + 1)];
            env.RemoveAll(e => e.StartsWith(key, StringComparison.Ordinal));
            env.Add(kv);
        }
        Set("HOSTNAME=" + hostname);
        foreach (var e in image.Env ?? []) if (e.Contains('=')) Set(e);
        if (req.Tty) Set("TERM=xterm"); // docker's, for a tty; the image or the request may say otherwise
        foreach (var e in req.Env ?? []) Set(e);
        if (!env.Any(e => e.StartsWith("PATH=", StringComparison.Ordinal))) env.Insert(0, DefaultPath);
        return env;
    }

    private static readonly Lazy<ulong> BoundingSet = new(() =>
    {
        try
        {
            string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("CapBnd:", StringComparison.Ordinal));
            return line is null ? ulong.MaxValue : Convert.ToUInt64(line["CapBnd:".Length..].Trim(), 16);
        }
        catch (IOException) { return ulong.MaxValue; }
    });

    /// <summary>docker's rules for --cap-add/--cap-drop: names with or without CAP_, any case, "ALL".</summary>
    public static List<string> Capabilities(ContainerCreateRequest req)
    {
        static string Norm(string c)
        {
            var u = c.Trim().ToUpperInvariant();
            if (u == "ALL") return u;
            u = u.StartsWith("CAP_", StringComparison.Ordinal) ? u : "CAP_" + u;
            if (Vessel.Runtime.Plan.Capabilities.Number(u) is null) throw EngineException.Invalid($"unknown capability: \"{c}\"");
            return u;
        }
        // "All" is every capability the daemon itself may hand on (its bounding set), as moby's GetAllCapabilities:
        // under a host or sandbox that withholds one (e.g. CAP_SYS_RESOURCE), --privileged must not fail with EPERM.
        var all = Vessel.Runtime.Plan.Capabilities.Names.Take(Vessel.Runtime.Plan.Capabilities.LastCap + 1)
            .Where((_, bit) => (BoundingSet.Value & (1UL << bit)) != 0).ToList();
        if (req.Privileged) return all;
        var add = (req.CapAdd ?? []).Select(Norm).ToList();
        var drop = (req.CapDrop ?? []).Select(Norm).ToList();
        var caps = add.Contains("ALL") ? all : DefaultCapabilities.Concat(add).Distinct().ToList();
        if (drop.Contains("ALL")) caps = add.Where(a => a != "ALL").Distinct().ToList();
        else caps = caps.Where(c => !drop.Contains(c)).ToList();
        return caps;
    }

    /// <summary>uid[:gid] or name[:group] → numeric ids, looked up in the image's passwd/group text. A user without
    /// a group gets the primary group from passwd (0 when the uid is numeric and not listed).</summary>
    public static (uint Uid, uint Gid, List<uint> Groups) ResolveUser(string? user, string? passwd, string? group)
    {
        if (string.IsNullOrEmpty(user)) user = "0";
        var parts = user.Split(':', 2);
        var pw = ParseDb(passwd);
        var gr = ParseDb(group);
        uint uid, gid = 0;
        string? name = null;
        if (uint.TryParse(parts[0], out uid))
        {
            var entry = pw.FirstOrDefault(f => f.Length > 3 && f[2] == parts[0]);
            if (entry is not null && uint.TryParse(entry[3], out var g)) { gid = g; name = entry[0]; }
        }
        else
        {
            var entry = pw.FirstOrDefault(f => f.Length > 3 && f[0] == parts[0])
                ?? throw EngineException.Invalid($"unable to find user {parts[0]}: no matching entries in passwd file");
            if (!uint.TryParse(entry[2], out uid) || !uint.TryParse(entry[3], out gid))
                throw EngineException.Invalid($"bad passwd entry for user {parts[0]}");
            name = entry[0];
        }
        if (parts.Length == 2)
        {
            if (!uint.TryParse(parts[1], out gid))
            {
                var g = gr.FirstOrDefault(f => f.Length > 2 && f[0] == parts[1])
                    ?? throw EngineException.Invalid($"unable to find group {parts[1]}: no matching entries in group file");
                if (!uint.TryParse(g[2], out gid)) throw EngineException.Invalid($"bad group entry for group {parts[1]}");
            }
        }
        // Supplementary groups: every group listing the user by name (docker's behaviour).
        var groups = name is null ? [] : gr
            .Where(f => f.Length > 3 && f[3].Split(',').Contains(name) && uint.TryParse(f[2], out _))
            .Select(f => uint.Parse(f[2])).Where(g => g != gid).Distinct().ToList();
        return (uid, gid, groups);
    }

    private static List<string[]> ParseDb(string? text) =>
        (text ?? "").Split('\n').Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => l.Split(':')).ToList();

    /// <param name="dir">The container directory: hosts and hostname live there and are bind-mounted in.</param>
    /// <param name="networkMode">"host": no network namespace; "container:ID": the other container's (its path is
    /// filled in at each start); anything else: a namespace of its own, configured by the network service.</param>
    public static RuntimeSpec Build(string id, ContainerCreateRequest req, ContainerConfig image, string hostname, string dir,
        string? passwd, string? group, string? networkMode = null)
    {
        var caps = Capabilities(req);
        var (uid, gid, groups) = ResolveUser(req.User ?? image.User, passwd, group);
        var cwd = !string.IsNullOrEmpty(req.WorkingDir) ? req.WorkingDir : !string.IsNullOrEmpty(image.WorkingDir) ? image.WorkingDir : "/";
        if (!cwd.StartsWith('/')) throw EngineException.Invalid($"the working directory '{cwd}' is invalid: it needs to be an absolute path");
        var resources = Resources(req);
        resources.Devices = [new LinuxDeviceCgroup { Allow = false, Access = "rwm" }];
        var sysfsOptions = req.Privileged ? new[] { "nosuid", "noexec", "nodev" } : ["nosuid", "noexec", "nodev", "ro"];
        var spec = new RuntimeSpec
        {
            OciVersion = SpecVersion.Current,
            Process = new ProcessSpec
            {
                Terminal = req.Tty,
                User = new UserSpec { Uid = uid, Gid = gid, AdditionalGids = groups.Count > 0 ? groups : null },
                Args = Args(req, image),
                Env = Env(req, image, hostname),
                Cwd = cwd,
                Capabilities = new CapabilitiesSpec { Bounding = [.. caps], Effective = [.. caps], Permitted = [.. caps] },
                Rlimits = [new RlimitSpec { Type = "RLIMIT_NOFILE", Hard = 1024, Soft = 1024 }],
                OomScoreAdj = 0,
            },
            Root = new RootSpec { Path = Path.Combine(dir, "rootfs"), Readonly = req.ReadOnly },
            Hostname = hostname,
            Mounts =
            [
                Mount("/proc", "proc", "proc", "nosuid", "noexec", "nodev"),
                Mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755", "size=65536k"),
                Mount("/dev/pts", "devpts", "devpts", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"),
                Mount("/sys", "sysfs", "sysfs", sysfsOptions),
                Mount("/sys/fs/cgroup", "cgroup", "cgroup", "nosuid", "noexec", "nodev", "relatime", req.Privileged ? "rw" : "ro"),
                Mount("/dev/mqueue", "mqueue", "mqueue", "nosuid", "noexec", "nodev"),
                Mount("/dev/shm", "tmpfs", "shm", "nosuid", "noexec", "nodev", "mode=1777", "size=65536k"),
                Mount("/etc/hostname", "bind", Path.Combine(dir, "hostname"), "rbind", "rprivate"),
                Mount("/etc/hosts", "bind", Path.Combine(dir, "hosts"), "rbind", "rprivate"),
                Mount("/etc/resolv.conf", "bind", Path.Combine(dir, "resolv.conf"), "rbind", "rprivate"),
            ],
            Annotations = req.Labels is { Count: > 0 } ? new Dictionary<string, string>(req.Labels) : null,
            Linux = new LinuxSpec
            {
                CgroupsPath = "/vessel/" + id,
                Resources = resources,
                Namespaces = [.. new NamespaceSpec?[] { new() { Type = "pid" }, networkMode == "host" ? null : new() { Type = "network" }, new() { Type = "ipc" },
                    new() { Type = "uts" }, new() { Type = "mount" }, new() { Type = "cgroup" } }.OfType<NamespaceSpec>()],
                MaskedPaths = req.Privileged ? null : [.. MaskedPaths],
                ReadonlyPaths = req.Privileged ? null : [.. ReadonlyPaths],
                Seccomp = req.Privileged ? null : DefaultProfile.Create(caps),
            },
        };
        return spec;
    }

    /// <summary>The cgroup limits of a request (memory, memory+swap, pids, cpus, cpu shares), checked as docker checks them.
    /// Also what `update` applies to a running container.</summary>
    public static LinuxResources Resources(ContainerCreateRequest req)
    {
        var resources = new LinuxResources();
        if (req.Memory is long mem && mem > 0)
        {
            if (mem < 6 * 1024 * 1024) throw EngineException.Invalid("minimum memory limit allowed is 6MB");
            resources.Memory = new LinuxMemory { Limit = mem };
        }
        if (req.MemorySwap is long swap && swap != 0)
        {
            if (req.Memory is not (long m and > 0)) throw EngineException.Invalid("you should always set the memory limit when using the memoryswap limit");
            if (swap > 0 && swap < m) throw EngineException.Invalid("minimum memoryswap limit should be larger than memory limit, see usage");
            resources.Memory!.Swap = swap;
        }
        if (req.PidsLimit is long pids && pids > 0) resources.Pids = new LinuxPids { Limit = pids };
        if (req.Cpus is double cpus && cpus != 0)
        {
            if (cpus < 0 || cpus > Environment.ProcessorCount)
                throw EngineException.Invalid($"range of CPUs is from 0.01 to {Environment.ProcessorCount}.00, as there are only {Environment.ProcessorCount} CPUs available");
            resources.Cpu = new LinuxCpu { Period = 100_000, Quota = (long)Math.Round(cpus * 100_000) };
        }
        if (req.CpuShares is long shares && shares != 0)
        {
            if (shares < 2) throw EngineException.Invalid("minimum cpu shares is 2");
            (resources.Cpu ??= new LinuxCpu()).Shares = (ulong)shares;
        }
        return resources;
    }

    /// <summary>/etc/hosts of a container without networking: loopback and its own name.</summary>
    public static string Hosts(string hostname) =>
        $"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{hostname}\n";

    private static MountSpec Mount(string destination, string type, string source, params string[] options) =>
        new() { Destination = destination, Type = type, Source = source, Options = options.Length > 0 ? [.. options] : null };
}
