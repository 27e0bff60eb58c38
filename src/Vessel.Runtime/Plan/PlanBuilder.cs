using Vessel.Runtime.Seccomp;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Plan;

/// <summary>Where the executor finds the fds the runtime hands it (see docs/executor.md): stdio,
/// then the preserved fds, then ours.</summary>
public sealed record ExecutorFds(int Preserved, bool Console, bool Fifo)
{
    public int Sync => 3 + Preserved;
    public int Plan => 4 + Preserved;
    public int ConsoleFd => 5 + Preserved;
    public int FifoFd => Console ? 6 + Preserved : 5 + Preserved;
}

/// <summary>The host side of a container's cgroup, for turning a "cgroup" mount into bind mounts.</summary>
/// <param name="Hierarchies">name under /sys/fs/cgroup in the container → the container's cgroup dir on the host.</param>
public sealed record CgroupView(bool Unified, IReadOnlyList<(string Name, string HostDir)> Hierarchies);

/// <summary>Everything the runtime must do itself around the executor for this container.</summary>
public sealed record PlannedContainer(byte[] Plan, bool NewUserNamespace, IReadOnlyList<IdMapping> UidMappings,
    IReadOnlyList<IdMapping> GidMappings, bool RuntimeHooks);

/// <summary>Turns a validated config.json into the executor's plan. All policy lives here; the C side
/// only carries it out. Every problem is a <see cref="SpecException"/> naming the field.</summary>
public static class PlanBuilder
{
    private const string DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

    /// <summary>The plan for `create`: a new container init.</summary>
    public static PlannedContainer ForInit(RuntimeSpec spec, string bundle, ExecutorFds fds, CgroupView cgroups,
        bool noPivot, Action<string>? warn = null)
    {
        Validate(spec, bundle);
        var linux = spec.Linux ?? new LinuxSpec();
        var process = spec.Process!;
        var w = new PlanWriter();
        w.Begin().U32((uint)PlanMode.Init).End(PlanRecord.Mode);

        ulong clone = 0;
        bool newUser = false, newCgroup = false, newNet = false, newUts = false;
        foreach (var ns in OrderedNamespaces(linux))
        {
            var flag = Namespaces.Flag(ns.Type)!.Value;
            if (!string.IsNullOrEmpty(ns.Path))
                w.Begin().U32((uint)flag).Str(ns.Path).End(PlanRecord.JoinNamespace);
            else if (flag == Namespaces.NewCgroup) newCgroup = true;
            else clone |= flag;
            if (string.IsNullOrEmpty(ns.Path) && flag == Namespaces.NewUser) newUser = true;
            if (flag == Namespaces.NewNet) newNet = true;
            if (flag == Namespaces.NewUts) newUts = true;
        }
        _ = newNet;
        _ = newUts;
        w.Begin().U64(clone).End(PlanRecord.CloneFlags);
        if (newCgroup) w.Record(PlanRecord.UnshareCgroup);
        w.Record(PlanRecord.Setsid);

        var rootfs = RootfsPath(spec, bundle);
        w.Begin().Str(rootfs).End(PlanRecord.Rootfs);
        w.Begin().U64(RootfsPropagation(linux.RootfsPropagation)).End(PlanRecord.RootfsPropagation);
        if (noPivot) w.Record(PlanRecord.NoPivot);

        var devTmpfs = false;
        var devPts = false;
        var mounts = spec.Mounts ?? [];
        for (var i = 0; i < mounts.Count; i++)
        {
            var m = mounts[i];
            var field = $"mounts[{i}]";
            var destination = ContainerPath(m.Destination, $"{field}.destination", warn);
            var options = MountOptions.Parse(m.Options, $"{field}.options");
            if (m.UidMappings is { Count: > 0 } || m.GidMappings is { Count: > 0 })
                throw new SpecException($"{field}.uidMappings", "id-mapped mounts are not supported");
            var type = m.Type ?? "";
            if (type == "bind" || options.Bind)
            {
                var source = m.Source ?? throw new SpecException($"{field}.source", "a bind mount needs a source");
                if (!Path.IsPathRooted(source)) source = Path.Combine(bundle, source);
                MountKind kind;
                if (Directory.Exists(source)) kind = MountKind.BindDirectory;
                else if (File.Exists(source) || new FileInfo(source).Exists) kind = MountKind.BindFile;
                else throw new SpecException($"{field}.source", $"bind mount source {source} does not exist");
                var flags = MountOptions.MS_BIND | (options.Recursive ? MountOptions.MS_REC : 0) | options.Flags;
                Mount(w, flags, options.Propagation, kind, source, destination, "bind", "");
            }
            else if (type == "cgroup")
                CgroupMount(w, destination, options, cgroups, newCgroup);
            else
            {
                if (type.Length == 0) throw new SpecException($"{field}.type", "a mount needs a type (or the bind option)");
                // tmpcopyup: only meaningful for a tmpfs (runc ignores it elsewhere too).
                var extra = options.CopyUp && type == "tmpfs" ? MountExtra.CopyUp : 0;
                Mount(w, options.Flags, options.Propagation, MountKind.Normal, m.Source ?? type, destination, type, options.Data, extra);
                if (destination == "/dev" && type == "tmpfs") devTmpfs = true;
                if (destination == "/dev/pts" && type == "devpts") devPts = true;
            }
        }

        Devices(w, linux, devTmpfs);
        if (devTmpfs)
        {
            Symlink(w, "/proc/self/fd", "/dev/fd");
            Symlink(w, "/proc/self/fd/0", "/dev/stdin");
            Symlink(w, "/proc/self/fd/1", "/dev/stdout");
            Symlink(w, "/proc/self/fd/2", "/dev/stderr");
            if (File.Exists("/proc/kcore")) Symlink(w, "/proc/kcore", "/dev/core");
            if (devPts) Symlink(w, "pts/ptmx", "/dev/ptmx");
        }

        foreach (var p in linux.MaskedPaths ?? []) w.Begin().Str(p).End(PlanRecord.Mask);
        foreach (var p in linux.ReadonlyPaths ?? []) w.Begin().Str(p).End(PlanRecord.ReadonlyPath);
        if (spec.Root!.Readonly) w.Record(PlanRecord.RootfsReadonly);
        if (!string.IsNullOrEmpty(spec.Hostname)) w.Begin().Str(spec.Hostname).End(PlanRecord.Hostname);
        if (!string.IsNullOrEmpty(spec.Domainname)) w.Begin().Str(spec.Domainname).End(PlanRecord.Domainname);
        foreach (var (key, value) in linux.Sysctl ?? []) w.Begin().Str(key).Str(value).End(PlanRecord.Sysctl);
        if (linux.Personality is { } personality)
            w.Begin().U32(personality.Domain == "LINUX32" ? 0x0008u : 0u).End(PlanRecord.Personality);

        var hooks = spec.Hooks;
        var runtimeHooks = (hooks?.Prestart?.Count ?? 0) + (hooks?.CreateRuntime?.Count ?? 0) > 0;
        if (runtimeHooks) w.Record(PlanRecord.SyncHooks);
        ContainerHooks(w, hooks?.CreateContainer, HookPhase.CreateContainer);
        ContainerHooks(w, hooks?.StartContainer, HookPhase.StartContainer);

        ProcessRecords(w, process, linux.Seccomp, fds, warn);
        if (fds.Fifo) w.Begin().U32((uint)fds.FifoFd).End(PlanRecord.FifoFd);

        return new PlannedContainer(w.ToArray(), newUser, linux.UidMappings ?? [], linux.GidMappings ?? [], runtimeHooks);
    }

    /// <summary>The plan for `exec`: join the namespaces of a running init and run <paramref name="process"/>.</summary>
    public static byte[] ForExec(RuntimeSpec container, ProcessSpec process, int initPid, ExecutorFds fds, Action<string>? warn = null)
    {
        ValidateProcess(process, "process");
        var w = new PlanWriter();
        w.Begin().U32((uint)PlanMode.Exec).End(PlanRecord.Mode);
        foreach (var ns in OrderedNamespaces(container.Linux ?? new LinuxSpec()))
        {
            var (_, flag, procName) = Array.Find(Namespaces.All, n => n.Type == ns.Type);
            w.Begin().U32((uint)flag).Str($"/proc/{initPid}/ns/{procName}").End(PlanRecord.JoinNamespace);
        }
        w.Begin().U64(0).End(PlanRecord.CloneFlags);
        ProcessRecords(w, process, container.Linux?.Seccomp, fds, warn);
        return w.ToArray();
    }

    private static void ProcessRecords(PlanWriter w, ProcessSpec process, LinuxSeccomp? seccomp, ExecutorFds fds, Action<string>? warn)
    {
        foreach (var (r, i) in (process.Rlimits ?? []).Select((r, i) => (r, i)))
            w.Begin().U32((uint)Rlimits.Number(r.Type)!.Value).U32(0).U64(r.Soft).U64(r.Hard).End(PlanRecord.Rlimit);
        if (process.OomScoreAdj is { } oom) w.Begin().I32(oom).End(PlanRecord.OomScoreAdj);

        var caps = process.Capabilities;
        void TooNew(string name) => warn?.Invoke($"capability {name} is unknown to this kernel; ignored");
        var field = "process.capabilities";
        var permitted = Capabilities.Mask(caps?.Permitted, $"{field}.permitted", TooNew);
        var inheritable = Capabilities.Mask(caps?.Inheritable, $"{field}.inheritable", TooNew);
        var ambient = Capabilities.Mask(caps?.Ambient, $"{field}.ambient", TooNew);
        // The kernel raises an ambient capability only if it is permitted and inheritable; runc skips the rest with a warning.
        var unraisable = ambient & ~(permitted & inheritable);
        if (unraisable != 0)
            warn?.Invoke($"not raising ambient capabilities {string.Join(',', Capabilities.ToNames(unraisable))}: not in both the permitted and inheritable sets");
        w.Begin()
            .U64(Capabilities.Mask(caps?.Bounding, $"{field}.bounding", TooNew))
            .U64(Capabilities.Mask(caps?.Effective, $"{field}.effective", TooNew))
            .U64(permitted)
            .U64(inheritable)
            .U64(ambient & ~unraisable)
            .End(PlanRecord.Capabilities);
        if (process.NoNewPrivileges) w.Record(PlanRecord.NoNewPrivileges);

        if (seccomp is not null)
        {
            var program = SeccompCompiler.Compile(seccomp);
            if (program is not null)
                w.Begin().U32(program.Flags).U32((uint)(process.NoNewPrivileges ? SeccompTiming.Late : SeccompTiming.Early))
                    .Bytes(program.Filter).End(PlanRecord.Seccomp);
        }

        var user = process.User;
        var gids = user.AdditionalGids ?? [];
        w.Begin().U32(user.Uid).U32(user.Gid).I32(user.Umask is { } u ? (int)u : -1).U32((uint)gids.Count);
        foreach (var g in gids) w.U32(g);
        w.End(PlanRecord.User);

        w.Begin().Str(process.Cwd).End(PlanRecord.Cwd);
        var env = process.Env ?? [];
        if (!env.Any(e => e.StartsWith("PATH=", StringComparison.Ordinal))) env = [.. env, DefaultPath];
        foreach (var e in env) w.Begin().Str(e).End(PlanRecord.Env);
        foreach (var a in process.Args!) w.Begin().Str(a).End(PlanRecord.Arg);
        if (fds.Preserved > 0) w.Begin().U32((uint)fds.Preserved).End(PlanRecord.PreserveFds);
        if (fds.Console) w.Begin().U32((uint)fds.ConsoleFd).End(PlanRecord.ConsoleFd);
    }

    /// <summary>User namespace first (joining it first changes what the others may do), then the rest in spec order.</summary>
    private static IEnumerable<NamespaceSpec> OrderedNamespaces(LinuxSpec linux) =>
        (linux.Namespaces ?? []).OrderBy(n => n.Type == "user" ? 0 : 1);

    private static void Mount(PlanWriter w, ulong flags, ulong propagation, MountKind kind, string source, string destination, string type, string data, uint extra = 0) =>
        w.Begin().U64(flags).U64(propagation).U32((uint)kind).U32(extra).Str(source).Str(destination).Str(type).Str(data).End(PlanRecord.Mount);

    /// <summary>Bits of a mount record's second u32 (R_MOUNT, see src/executor/plan.h).</summary>
    private static class MountExtra
    {
        public const uint CopyUp = 1;
    }

    private static void Symlink(PlanWriter w, string target, string link) => w.Begin().Str(target).Str(link).End(PlanRecord.Symlink);

    /// <summary>A "cgroup" mount shows the container its own cgroup: on v2 (or with a cgroup namespace) a
    /// cgroup2 mount; on v1 a tmpfs with the container's directory of every hierarchy bound into it.</summary>
    private static void CgroupMount(PlanWriter w, string destination, MountOptions options, CgroupView cgroups, bool newCgroupNs)
    {
        var readOnly = options.Flags & MountOptions.MS_RDONLY;
        var baseFlags = options.Flags & (MountOptions.MS_NOSUID | MountOptions.MS_NODEV | MountOptions.MS_NOEXEC);
        if (cgroups.Unified)
        {
            if (newCgroupNs)
                Mount(w, options.Flags, 0, MountKind.Normal, "cgroup", destination, "cgroup2", "");
            else if (cgroups.Hierarchies.Count > 0)
                Mount(w, MountOptions.MS_BIND | options.Flags, 0, MountKind.BindDirectory, cgroups.Hierarchies[0].HostDir, destination, "bind", "");
            return;
        }
        Mount(w, baseFlags, 0, MountKind.Normal, "tmpfs", destination, "tmpfs", "mode=755");
        foreach (var (name, hostDir) in cgroups.Hierarchies)
            Mount(w, MountOptions.MS_BIND | baseFlags | readOnly, 0, MountKind.BindDirectory, hostDir, $"{destination}/{name}", "bind", "");
        // Read-only: remount the tmpfs in place. (Not a bind kind: the executor would bind the *host's*
        // /sys/fs/cgroup over the container's view, and in a user namespace that bind fails with EINVAL.)
        if (readOnly != 0)
            Mount(w, MountOptions.MS_REMOUNT | MountOptions.MS_BIND | baseFlags | readOnly, 0, MountKind.Normal, "none", destination, "", "");
    }

    private static readonly (string Path, uint Major, uint Minor)[] DefaultDevices =
        [("/dev/null", 1, 3), ("/dev/zero", 1, 5), ("/dev/full", 1, 7), ("/dev/random", 1, 8), ("/dev/urandom", 1, 9), ("/dev/tty", 5, 0)];

    private static void Devices(PlanWriter w, LinuxSpec linux, bool defaults)
    {
        const uint S_IFCHR = 0x2000, S_IFBLK = 0x6000, S_IFIFO = 0x1000;
        var specDevices = linux.Devices ?? [];
        if (defaults)
            foreach (var (path, major, minor) in DefaultDevices)
                if (!specDevices.Any(d => d.Path == path))
                    w.Begin().U32(S_IFCHR).U32(major).U32(minor).U32(0x1b6 /* 0666 */).U32(0).U32(0).Str(path).End(PlanRecord.Device);
        foreach (var d in specDevices)
        {
            var type = d.Type switch { "c" or "u" => S_IFCHR, "b" => S_IFBLK, _ => S_IFIFO };
            w.Begin().U32(type).U32((uint)d.Major).U32((uint)d.Minor).U32((d.FileMode ?? 0x1b6 /* 0666 */) & 0xfff)
                .U32(d.Uid ?? 0).U32(d.Gid ?? 0).Str(d.Path).End(PlanRecord.Device);
        }
    }

    private static void ContainerHooks(PlanWriter w, List<HookSpec>? hooks, HookPhase phase)
    {
        foreach (var h in hooks ?? [])
        {
            var args = h.Args is { Count: > 0 } ? h.Args : [h.Path];
            var env = h.Env ?? [];
            w.Begin().U32((uint)phase).U32((uint)(h.Timeout ?? 0)).U32((uint)args.Count).U32((uint)env.Count).Str(h.Path);
            foreach (var a in args) w.Str(a);
            foreach (var e in env) w.Str(e);
            w.End(PlanRecord.Hook);
        }
    }

    private static ulong RootfsPropagation(string? value) => value switch
    {
        null or "" => MountOptions.MS_SLAVE | MountOptions.MS_REC,
        _ => MountOptions.Parse([value], "linux.rootfsPropagation").Propagation,
    };

    /// <summary>The rootfs as an absolute host path (root.path is relative to the bundle unless absolute).</summary>
    public static string RootfsPath(RuntimeSpec spec, string bundle)
    {
        var path = spec.Root?.Path ?? "";
        return Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(bundle, path));
    }

    private static string ContainerPath(string path, string field, Action<string>? warn)
    {
        if (string.IsNullOrEmpty(path)) throw new SpecException(field, "must not be empty");
        if (!path.StartsWith('/'))
        {
            warn?.Invoke($"{field}: {path} is relative; taken relative to the container's root");
            path = "/" + path;
        }
        return path;
    }

    /// <summary>Checks config.json as a whole before anything is created. Throws the first problem found.</summary>
    public static void Validate(RuntimeSpec spec, string bundle)
    {
        if (string.IsNullOrEmpty(spec.OciVersion)) throw new SpecException("ociVersion", "missing");
        if (!spec.OciVersion.StartsWith("1.", StringComparison.Ordinal))
            throw new SpecException("ociVersion", $"{spec.OciVersion} is not a version this runtime supports (1.x)");
        if (spec.Root is null || string.IsNullOrEmpty(spec.Root.Path)) throw new SpecException("root.path", "missing");
        var rootfs = RootfsPath(spec, bundle);
        if (!Directory.Exists(rootfs)) throw new SpecException("root.path", $"rootfs {rootfs} does not exist");
        if (spec.Process is null) throw new SpecException("process", "missing");
        ValidateProcess(spec.Process, "process");

        var linux = spec.Linux ?? throw new SpecException("linux", "missing (this runtime runs Linux containers)");
        var seen = new HashSet<string>();
        foreach (var (ns, i) in (linux.Namespaces ?? []).Select((n, i) => (n, i)))
        {
            if (Namespaces.Flag(ns.Type) is null) throw new SpecException($"linux.namespaces[{i}].type", $"unknown namespace type \"{ns.Type}\"");
            if (ns.Type == "time") throw new SpecException($"linux.namespaces[{i}].type", "time namespaces are not supported");
            if (!seen.Add(ns.Type)) throw new SpecException($"linux.namespaces[{i}].type", $"namespace \"{ns.Type}\" is listed twice");
            if (!string.IsNullOrEmpty(ns.Path) && !File.Exists(ns.Path))
                throw new SpecException($"linux.namespaces[{i}].path", $"{ns.Path} does not exist");
        }
        bool Private(string type) => linux.Namespaces?.Any(n => n.Type == type && string.IsNullOrEmpty(n.Path)) == true;
        bool Has(string type) => linux.Namespaces?.Any(n => n.Type == type) == true;
        if (!Has("mount")) throw new SpecException("linux.namespaces", "a mount namespace is required");
        if (!string.IsNullOrEmpty(spec.Hostname) && !Has("uts"))
            throw new SpecException("hostname", "setting the hostname needs a private UTS namespace (add {\"type\":\"uts\"} to linux.namespaces)");
        if (!string.IsNullOrEmpty(spec.Domainname) && !Has("uts"))
            throw new SpecException("domainname", "setting the domainname needs a private UTS namespace");
        if (Private("user") && (linux.UidMappings is not { Count: > 0 } || linux.GidMappings is not { Count: > 0 }))
            throw new SpecException("linux.uidMappings", "a new user namespace needs uidMappings and gidMappings");
        if (!Has("user") && (linux.UidMappings is { Count: > 0 } || linux.GidMappings is { Count: > 0 }))
            throw new SpecException("linux.uidMappings", "id mappings are given but there is no user namespace");
        foreach (var (key, _) in linux.Sysctl ?? [])
            ValidateSysctl(key, Has("ipc"), Has("network"), Has("uts"));
        foreach (var (d, i) in (linux.Devices ?? []).Select((d, i) => (d, i)))
        {
            if (d.Type is not ("c" or "b" or "u" or "p")) throw new SpecException($"linux.devices[{i}].type", $"\"{d.Type}\" is not one of c, b, u, p");
            if (!d.Path.StartsWith('/')) throw new SpecException($"linux.devices[{i}].path", "must be absolute");
        }
        if (linux.CgroupsPath is { } cg && cg.Count(c => c == ':') == 2 && !cg.StartsWith('/'))
            throw new SpecException("linux.cgroupsPath", $"\"{cg}\" is a systemd cgroup path (slice:prefix:name); the systemd cgroup driver is not supported, give a cgroup path such as /vessel/{cg.Split(':')[2]}");
        if (linux.IntelRdt is { ValueKind: not System.Text.Json.JsonValueKind.Null }) throw new SpecException("linux.intelRdt", "Intel RDT is not supported");
        if (linux.TimeOffsets is { ValueKind: not System.Text.Json.JsonValueKind.Null }) throw new SpecException("linux.timeOffsets", "time namespaces are not supported");
        if (linux.Personality is { Domain: not ("LINUX" or "LINUX32") } p)
            throw new SpecException("linux.personality.domain", $"\"{p.Domain}\" is not LINUX or LINUX32");
        if (!string.IsNullOrEmpty(linux.RootfsPropagation) && MountOptions.Parse([linux.RootfsPropagation], "linux.rootfsPropagation").Propagation == 0)
            throw new SpecException("linux.rootfsPropagation", $"\"{linux.RootfsPropagation}\" is not a propagation mode");
    }

    private static void ValidateProcess(ProcessSpec process, string field)
    {
        if (process.Args is not { Count: > 0 } || string.IsNullOrEmpty(process.Args[0]))
            throw new SpecException($"{field}.args", "missing: the container needs a command to run");
        if (!process.Cwd.StartsWith('/')) throw new SpecException($"{field}.cwd", $"\"{process.Cwd}\" must be an absolute path");
        foreach (var (r, i) in (process.Rlimits ?? []).Select((r, i) => (r, i)))
        {
            if (Rlimits.Number(r.Type) is null) throw new SpecException($"{field}.rlimits[{i}].type", $"unknown rlimit \"{r.Type}\"");
            if (r.Soft > r.Hard) throw new SpecException($"{field}.rlimits[{i}]", "soft limit is above the hard limit");
        }
        foreach (var (e, i) in (process.Env ?? []).Select((e, i) => (e, i)))
            if (!e.Contains('=')) throw new SpecException($"{field}.env[{i}]", $"\"{e}\" is not KEY=VALUE");
        if (!string.IsNullOrEmpty(process.ApparmorProfile) && !AppArmorEnabled())
            throw new SpecException($"{field}.apparmorProfile", "AppArmor is not enabled on this host");
        if (process.IoPriority is not null) throw new SpecException($"{field}.ioPriority", "I/O priorities are not supported");
        if (process.Scheduler is not null) throw new SpecException($"{field}.scheduler", "scheduler policies are not supported");
    }

    private static bool AppArmorEnabled()
    {
        try { return File.ReadAllText("/sys/module/apparmor/parameters/enabled").Trim() == "Y"; }
        catch (IOException) { return false; }
    }

    /// <summary>Only namespaced sysctls may be set, and only with the namespace they belong to (as runc).</summary>
    private static void ValidateSysctl(string key, bool ipc, bool net, bool uts)
    {
        var field = $"linux.sysctl[\"{key}\"]";
        if (key is "kernel.msgmax" or "kernel.msgmnb" or "kernel.msgmni" or "kernel.sem" or "kernel.shmall" or "kernel.shmmax" or "kernel.shmmni" or "kernel.shm_rmid_forced"
            || key.StartsWith("fs.mqueue.", StringComparison.Ordinal))
        {
            if (!ipc) throw new SpecException(field, "needs an IPC namespace");
            return;
        }
        if (key.StartsWith("net.", StringComparison.Ordinal))
        {
            if (!net) throw new SpecException(field, "needs a network namespace");
            return;
        }
        if (key is "kernel.hostname" or "kernel.domainname")
        {
            if (!uts) throw new SpecException(field, "needs a UTS namespace");
            return;
        }
        throw new SpecException(field, "is not a namespaced sysctl and cannot be set for a container");
    }
}
