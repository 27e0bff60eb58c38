using System.Diagnostics;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Cgroups;

/// <summary>Freezer state of a cgroup. <see cref="Undefined"/>: no freezer available or the cgroup does not exist.</summary>
public enum FreezerState { Undefined, Thawed, Freezing, Frozen }

/// <summary>A container's cgroup: one leaf directory per mounted hierarchy (v1/hybrid) or one directory (v2).
/// Obtain with <see cref="Open"/>; nothing is touched on disk until <see cref="Create"/>.
/// All host paths come from the <see cref="CgroupLayout"/>, so tests can point it at a fake tree in a temp dir.</summary>
public abstract class Cgroup
{
    public CgroupLayout Layout { get; }
    /// <summary>The spec's cgroupsPath, normalized ("/a/b" absolute or "a/b" relative to this process's cgroup).</summary>
    public string CgroupsPath { get; }
    /// <summary>How long <see cref="Freeze"/>/<see cref="Thaw"/> wait for the kernel to report the new state.</summary>
    public TimeSpan FreezeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    private protected Cgroup(CgroupLayout layout, string cgroupsPath)
    {
        Layout = layout;
        CgroupsPath = cgroupsPath;
    }

    /// <summary>Resolves the spec's <c>linux.cgroupsPath</c> against <paramref name="layout"/>. An absolute path is taken from
    /// the hierarchy root; a relative one is relative to this process's own cgroup in each hierarchy (like runc).
    /// The systemd form "slice:prefix:name", empty paths, "." / ".." components and the root cgroup itself are
    /// rejected with a <see cref="SpecException"/> on <c>linux.cgroupsPath</c>.</summary>
    public static Cgroup Open(CgroupLayout layout, string cgroupsPath)
    {
        ArgumentNullException.ThrowIfNull(layout);
        var p = Normalize(cgroupsPath);
        return layout.Mode == CgroupMode.V2 ? new CgroupV2(layout, p) : new CgroupV1(layout, p);
    }

    /// <summary>Controller → absolute host directory of this cgroup (v1: "cpu", "memory", "name=systemd", ...;
    /// the cgroup2 directory, on v2 or hybrid, is under the key "").</summary>
    public abstract IReadOnlyDictionary<string, string> HostPaths { get; }
    /// <summary>True if the cgroup directory exists (in the primary hierarchy on v1).</summary>
    public abstract bool Exists { get; }
    /// <summary>mkdir -p in every hierarchy (v1 cpuset: parents' cpus/mems copied down; v2: controllers enabled in ancestors).</summary>
    public abstract void Create();
    /// <summary>Translates and writes <paramref name="resources"/>. Invalid values → <see cref="SpecException"/>;
    /// a write the kernel refuses → <see cref="CgroupException"/>.</summary>
    public abstract void Apply(LinuxResources resources);
    /// <summary>Moves <paramref name="pid"/> into this cgroup in every hierarchy.</summary>
    public abstract void AddProcess(int pid);
    /// <summary>All pids in this cgroup and its descendants.</summary>
    public abstract IReadOnlyList<int> Processes();
    /// <summary>Freezes all processes; returns when the kernel reports the cgroup frozen (or throws after <see cref="FreezeTimeout"/>, having thawed it again).</summary>
    public abstract void Freeze();
    public abstract void Thaw();
    public abstract FreezerState FreezerState { get; }
    public abstract CgroupStats Stats();
    /// <summary>Removes the cgroup (and any child cgroups) in every hierarchy; retries on EBUSY; missing is fine.</summary>
    public abstract void Destroy();

    // ---- path handling ----

    internal static string Normalize(string? cgroupsPath)
    {
        const string field = "linux.cgroupsPath";
        if (string.IsNullOrWhiteSpace(cgroupsPath))
            throw new SpecException(field, "is empty; the runtime must choose a path (e.g. /vessel/<id>)");
        var p = cgroupsPath.Trim();
        if (!p.StartsWith('/') && p.Split(':').Length == 3)
            throw new SpecException(field, $"\"{p}\" is in the systemd form slice:prefix:name, but the systemd cgroup driver is not supported; use a path such as /vessel/<id>");
        bool absolute = p.StartsWith('/');
        var parts = p.Split('/', StringSplitOptions.RemoveEmptyEntries);
        foreach (var part in parts)
            if (part is "." or "..")
                throw new SpecException(field, $"\"{p}\" must not contain \".\" or \"..\" components");
        if (parts.Length == 0)
            throw new SpecException(field, "must not be the root cgroup");
        return (absolute ? "/" : "") + string.Join('/', parts);
    }

    /// <summary>Host directory of <paramref name="cgroupsPath"/> in hierarchy <paramref name="h"/>, given this process's
    /// cgroup <paramref name="own"/> in it (for relative paths).</summary>
    internal static string HostDir(CgroupHierarchy h, string? own, string cgroupsPath)
    {
        string inHierarchy = cgroupsPath.StartsWith('/') ? cgroupsPath : JoinCg(own ?? "/", cgroupsPath);
        string root = h.Root.TrimEnd('/');
        string rel = root.Length > 0 && (inHierarchy == root || inHierarchy.StartsWith(root + "/", StringComparison.Ordinal))
            ? inHierarchy[root.Length..]
            : inHierarchy;
        rel = rel.Trim('/');
        return rel.Length == 0 ? h.MountPoint : Path.Combine(h.MountPoint, rel);
    }

    static string JoinCg(string a, string b) => "/" + string.Join('/', (a + "/" + b).Split('/', StringSplitOptions.RemoveEmptyEntries));

    // ---- helpers shared by v1 and v2 ----

    private protected static List<int> ReadPids(string file)
    {
        var list = new List<int>();
        var text = CgroupFs.TryRead(file);
        if (text is null) return list;
        foreach (var line in text.Split('\n'))
            if (int.TryParse(line.Trim(), out var pid)) list.Add(pid);
        return list;
    }

    private protected static IReadOnlyList<int> ReadPidsRecursive(string dir)
    {
        var set = new SortedSet<int>();
        if (!Directory.Exists(dir)) return [];
        foreach (var pid in ReadPids(Path.Combine(dir, "cgroup.procs"))) set.Add(pid);
        try
        {
            foreach (var sub in Directory.EnumerateDirectories(dir, "*", SearchOption.AllDirectories))
                foreach (var pid in ReadPids(Path.Combine(sub, "cgroup.procs"))) set.Add(pid);
        }
        catch (DirectoryNotFoundException) { } // raced with removal
        return [.. set];
    }

    /// <summary>Removes <paramref name="dir"/>, its child cgroups (deepest first, retrying on EBUSY) and then
    /// the ancestors that are left empty, so `/vessel/ID` leaves no `/vessel` behind. rmdir refuses a cgroup that
    /// still has children or processes, and the hierarchy's root, so another container's parent is never taken.
    /// (A create racing with this prune retries; see ContainerRuntime.)</summary>
    private protected static void RemoveTree(string dir)
    {
        RemoveSubtree(dir);
        for (var parent = Path.GetDirectoryName(dir); parent is not null && File.Exists(Path.Combine(parent, "cgroup.procs")); parent = Path.GetDirectoryName(parent))
            if (CgroupFs.Rmdir(parent) != 0) break;
    }

    private static void RemoveSubtree(string dir)
    {
        if (!Directory.Exists(dir)) return;
        string[] children;
        try { children = Directory.GetDirectories(dir); }
        catch (DirectoryNotFoundException) { return; }
        foreach (var child in children) RemoveSubtree(child);
        int delayMs = 10;
        for (int attempt = 0; ; attempt++)
        {
            int err = CgroupFs.Rmdir(dir);
            if (err == 0 || err == CgroupFs.ENOENT) return;
            if ((err != CgroupFs.EBUSY && err != CgroupFs.EAGAIN && err != CgroupFs.ENOTEMPTY) || attempt >= 6)
                throw new CgroupException($"rmdir {dir}: {CgroupFs.Describe(err)}", dir, err);
            Thread.Sleep(delayMs);
            delayMs *= 2;
        }
    }

    /// <summary>Polls <paramref name="done"/> until true or the timeout; returns whether it became true.</summary>
    private protected bool WaitFor(Func<bool> done, Action? everyTenth = null)
    {
        var sw = Stopwatch.StartNew();
        for (int i = 1; ; i++)
        {
            if (done()) return true;
            if (sw.Elapsed > FreezeTimeout) return false;
            if (i % 10 == 0) everyTenth?.Invoke();
            Thread.Sleep(i < 10 ? 1 : 10);
        }
    }

    /// <summary>"key value" lines → dictionary (unparsable values skipped).</summary>
    internal static Dictionary<string, ulong> ParseFlatKeyed(string? text)
    {
        var d = new Dictionary<string, ulong>(StringComparer.Ordinal);
        if (text is null) return d;
        foreach (var line in text.Split('\n'))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 2 && CgroupFs.ParseUInt64(f[1]) is { } v) d[f[0]] = v;
        }
        return d;
    }

    /// <summary>"0-3,7" → [0,1,2,3,7].</summary>
    internal static List<ushort>? ParseCpuList(string? text)
    {
        text = text?.Trim();
        if (string.IsNullOrEmpty(text)) return null;
        var list = new List<ushort>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var r = part.Split('-');
            if (!ushort.TryParse(r[0], out var lo)) return null;
            ushort hi = lo;
            if (r.Length == 2 && !ushort.TryParse(r[1], out hi)) return null;
            for (int i = lo; i <= hi; i++) list.Add((ushort)i);
        }
        return list;
    }

    private protected static ulong Get(Dictionary<string, ulong> d, string key) => d.TryGetValue(key, out var v) ? v : 0;

    /// <summary>cgroup v2 conversion of cpu.shares (2..262144) to cpu.weight (1..10000), as runc does.</summary>
    public static ulong ConvertSharesToWeight(ulong shares)
    {
        if (shares == 0) return 0;
        shares = Math.Clamp(shares, 2UL, 262144UL);
        return 1 + ((shares - 2) * 9999) / 262142;
    }

    /// <summary>cgroup v2 conversion of blkio.weight (10..1000) to io.weight (1..10000), as runc does.</summary>
    public static ulong ConvertBlkioWeightToIoWeight(ulong weight)
    {
        if (weight == 0) return 0;
        weight = Math.Clamp(weight, 10UL, 1000UL);
        return 1 + (weight - 10) * 9999 / 990;
    }

    /// <summary>Spec memory.swap (memory+swap) to cgroup v2 memory.swap.max (swap only): null = leave alone,
    /// -1 = "max". Throws <see cref="SpecException"/> on inconsistent values.</summary>
    public static long? ConvertSwapToV2(long? swap, long? limit)
    {
        const string field = "linux.resources.memory.swap";
        // Like v1: an unlimited memory limit with swap unset means "both unlimited".
        if (limit == -1 && swap is null or 0) return -1;
        if (swap is null or 0) return null;
        if (swap == -1) return -1;
        if (swap < -1) throw new SpecException(field, $"invalid value {swap}");
        if (limit is null or 0 or -1) throw new SpecException(field, "a swap limit requires a memory limit (linux.resources.memory.limit)");
        if (limit < -1) throw new SpecException("linux.resources.memory.limit", $"invalid value {limit}");
        if (swap < limit) throw new SpecException(field, $"memory+swap ({swap}) must be >= the memory limit ({limit})");
        return swap - limit;
    }
}
