using System.Text;

namespace Vessel.Runtime.Cgroups;

/// <summary>How the host mounts cgroups.</summary>
public enum CgroupMode
{
    /// <summary>Only v1 hierarchies (one mount per controller or controller group).</summary>
    V1,
    /// <summary>v1 hierarchies for the controllers plus a cgroup2 mount (usually /sys/fs/cgroup/unified).
    /// The controllers are driven through v1; the cgroup2 tree is joined for membership and for any
    /// controller that is only available there (e.g. hugetlb on some kernels).</summary>
    Hybrid,
    /// <summary>cgroup2 only (usually at /sys/fs/cgroup).</summary>
    V2,
}

/// <summary>One mounted cgroup hierarchy.</summary>
/// <param name="MountPoint">Absolute host directory where it is mounted.</param>
/// <param name="Root">The cgroup of the hierarchy shown at <paramref name="MountPoint"/> (mountinfo field 4, "/" normally).</param>
/// <param name="Controllers">v1: the controllers from the super options, plus <c>name=X</c> for named hierarchies. Empty for cgroup2.</param>
/// <param name="IsUnified">True for the cgroup2 hierarchy.</param>
public sealed record CgroupHierarchy(string MountPoint, string Root, IReadOnlyList<string> Controllers, bool IsUnified);

/// <summary>The host's cgroup layout: which hierarchies are mounted where, what the cgroup2 root offers,
/// and which cgroups this process is in (relative cgroupsPath values are resolved against them).</summary>
public sealed class CgroupLayout
{
    static readonly string[] V1Known =
    [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "hugetlb",
        "net_cls", "net_prio", "perf_event", "rdma", "misc",
    ];

    public CgroupMode Mode { get; }
    /// <summary>All distinct hierarchies, v1 first, then the cgroup2 one if mounted.</summary>
    public IReadOnlyList<CgroupHierarchy> Hierarchies { get; }
    /// <summary>v1 controller (or <c>name=X</c>) → its hierarchy. Co-mounted controllers share one entry.</summary>
    public IReadOnlyDictionary<string, CgroupHierarchy> V1 { get; }
    /// <summary>The cgroup2 hierarchy, if mounted.</summary>
    public CgroupHierarchy? Unified { get; }
    /// <summary>Controllers listed in the cgroup2 root's cgroup.controllers (empty if none or unknown).</summary>
    public IReadOnlyList<string> UnifiedControllers { get; }
    /// <summary>This process's cgroups (from /proc/self/cgroup): controller → path; "" is the cgroup2 entry.</summary>
    public IReadOnlyDictionary<string, string> OwnCgroups { get; }

    public CgroupLayout(CgroupMode mode, IReadOnlyList<CgroupHierarchy> hierarchies, IReadOnlyList<string>? unifiedControllers = null,
        IReadOnlyDictionary<string, string>? ownCgroups = null)
    {
        Mode = mode;
        Hierarchies = hierarchies;
        var v1 = new Dictionary<string, CgroupHierarchy>(StringComparer.Ordinal);
        foreach (var h in hierarchies)
        {
            if (h.IsUnified) Unified ??= h;
            else foreach (var c in h.Controllers) v1.TryAdd(c, h);
        }
        V1 = v1;
        UnifiedControllers = unifiedControllers ?? [];
        OwnCgroups = ownCgroups ?? new Dictionary<string, string>();
        if (mode == CgroupMode.V2 && Unified is null) throw new ArgumentException("a v2 layout needs a cgroup2 hierarchy", nameof(hierarchies));
        if (mode != CgroupMode.V2 && v1.Count == 0) throw new ArgumentException("a v1/hybrid layout needs v1 hierarchies", nameof(hierarchies));
    }

    /// <summary>Reads /proc/self/mountinfo, /proc/self/cgroup and the cgroup2 root's cgroup.controllers.</summary>
    public static CgroupLayout Detect()
    {
        var mountinfo = File.ReadAllText("/proc/self/mountinfo");
        string? self = File.Exists("/proc/self/cgroup") ? File.ReadAllText("/proc/self/cgroup") : null;
        var layout = Parse(mountinfo, self);
        if (layout.Unified is { } u)
        {
            var f = Path.Combine(u.MountPoint, "cgroup.controllers");
            if (File.Exists(f)) layout = Parse(mountinfo, self, File.ReadAllText(f));
        }
        return layout;
    }

    /// <summary>Pure parse of mountinfo text (plus, optionally, /proc/self/cgroup text and the cgroup2 root's
    /// cgroup.controllers text). Throws <see cref="CgroupException"/> if no cgroup file system is mounted.</summary>
    public static CgroupLayout Parse(string mountinfo, string? procSelfCgroup = null, string? unifiedControllers = null)
    {
        var hierarchies = new List<CgroupHierarchy>();
        var seenV1 = new HashSet<string>(StringComparer.Ordinal);
        CgroupHierarchy? unified = null;
        foreach (var rawLine in mountinfo.Split('\n'))
        {
            var line = rawLine.TrimEnd('\r');
            if (line.Length == 0) continue;
            // id parent maj:min root mountpoint options [optional...] - fstype source superoptions
            var sep = line.IndexOf(" - ", StringComparison.Ordinal);
            if (sep < 0) continue;
            var left = line[..sep].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var right = line[(sep + 3)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (left.Length < 5 || right.Length < 1) continue;
            var fstype = right[0];
            var root = Unescape(left[3]);
            var mountPoint = Unescape(left[4]);
            if (fstype == "cgroup2")
            {
                unified ??= new CgroupHierarchy(mountPoint, root, [], true);
            }
            else if (fstype == "cgroup")
            {
                var super = right.Length >= 3 ? right[2].Split(',') : [];
                var controllers = super.Where(o => V1Known.Contains(o) || o.StartsWith("name=", StringComparison.Ordinal)).ToList();
                if (controllers.Count == 0) continue;
                var key = string.Join(',', controllers.Order(StringComparer.Ordinal));
                if (!seenV1.Add(key)) continue; // the same hierarchy mounted again (bind mounts)
                hierarchies.Add(new CgroupHierarchy(mountPoint, root, controllers, false));
            }
        }
        bool realV1 = hierarchies.Any(h => h.Controllers.Any(c => !c.StartsWith("name=", StringComparison.Ordinal)));
        CgroupMode mode;
        if (realV1) mode = unified is null ? CgroupMode.V1 : CgroupMode.Hybrid;
        else if (unified is not null) { mode = CgroupMode.V2; hierarchies.Clear(); }
        else throw new CgroupException("no cgroup file system is mounted (no cgroup or cgroup2 entry in mountinfo)");
        if (unified is not null) hierarchies.Add(unified);

        var controllersList = (unifiedControllers ?? "").Split([' ', '\n', '\t'], StringSplitOptions.RemoveEmptyEntries);
        return new CgroupLayout(mode, hierarchies, controllersList, ParseProcCgroup(procSelfCgroup));
    }

    /// <summary>Parses /proc/&lt;pid&gt;/cgroup: "id:controllers:path" → controller → path ("" for cgroup2).</summary>
    public static IReadOnlyDictionary<string, string> ParseProcCgroup(string? text)
    {
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        if (text is null) return result;
        foreach (var line in text.Split('\n'))
        {
            var parts = line.TrimEnd('\r').Split(':', 3);
            if (parts.Length != 3) continue;
            if (parts[1].Length == 0) result[""] = parts[2];
            else foreach (var c in parts[1].Split(',')) result[c] = parts[2];
        }
        return result;
    }

    static string Unescape(string s)
    {
        if (!s.Contains('\\')) return s;
        var sb = new StringBuilder(s.Length);
        for (int i = 0; i < s.Length; i++)
        {
            if (s[i] == '\\' && IsOct(s, i + 1))
            {
                sb.Append((char)Convert.ToInt32(s.Substring(i + 1, 3), 8));
                i += 3;
            }
            else sb.Append(s[i]);
        }
        return sb.ToString();

        static bool IsOct(string s, int at) =>
            at + 3 <= s.Length && s[at] is >= '0' and <= '7' && s[at + 1] is >= '0' and <= '7' && s[at + 2] is >= '0' and <= '7';
    }
}
