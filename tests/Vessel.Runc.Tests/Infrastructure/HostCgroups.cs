namespace Vessel.Runc.Tests.Infrastructure;

/// <summary>The host side of a test container's cgroup (linux.cgroupsPath = /vessel-test/ID), v1 or v2.</summary>
public static class HostCgroups
{
    public const string Parent = "vessel-test";
    private const string Mount = "/sys/fs/cgroup";

    public static bool IsV2 => File.Exists(Path.Combine(Mount, "cgroup.controllers"));

    /// <summary>Every directory the container's cgroup may have: one per v1 hierarchy (and unified), or the v2 one.</summary>
    public static IEnumerable<string> DirsOf(string id) =>
        IsV2 ? [Path.Combine(Mount, Parent, id)] : Directory.GetDirectories(Mount).Select(h => Path.Combine(h, Parent, id));

    public static IEnumerable<string> ParentDirs() =>
        IsV2 ? [Path.Combine(Mount, Parent)] : Directory.GetDirectories(Mount).Select(h => Path.Combine(h, Parent));

    /// <summary>A controller file: v1 name and v2 name, e.g. ("memory", "memory.limit_in_bytes", "memory.max").</summary>
    public static string FileOf(string id, string controller, string v1File, string v2File) =>
        IsV2 ? Path.Combine(Mount, Parent, id, v2File) : Path.Combine(Mount, controller, Parent, id, v1File);

    public static string Read(string id, string controller, string v1File, string v2File) =>
        File.ReadAllText(FileOf(id, controller, v1File, v2File)).Trim();

    /// <summary>Host pids of processes whose cgroup is the container's (from /proc/*/cgroup).</summary>
    public static List<int> ProcessesOf(string id)
    {
        var marker = $"/{Parent}/{id}";
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                if (File.ReadAllLines(Path.Combine(dir, "cgroup")).Any(l => l.EndsWith(marker, StringComparison.Ordinal) || l.Contains(marker + "/", StringComparison.Ordinal)))
                    found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }
}
