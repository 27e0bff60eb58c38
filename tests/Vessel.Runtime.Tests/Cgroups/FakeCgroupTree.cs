using Vessel.Runtime.Cgroups;

namespace Vessel.Runtime.Tests.Cgroups;

/// <summary>A fake cgroup file system in a temp directory: regular files stand in for cgroup files, and a
/// synthetic mountinfo points the layout at it.</summary>
internal sealed class FakeCgroupTree : IDisposable
{
    public string Root { get; }
    public CgroupLayout Layout { get; private set; } = null!;

    FakeCgroupTree()
    {
        Root = Path.Combine(Path.GetTempPath(), "cgfake-" + Guid.NewGuid().ToString("N")[..12]);
        Directory.CreateDirectory(Root);
    }

    /// <summary>cgroup2 mounted at Root/unified offering <paramref name="controllers"/>.</summary>
    public static FakeCgroupTree V2(string controllers = "cpuset cpu io memory hugetlb pids", string selfCgroup = "0::/")
    {
        var t = new FakeCgroupTree();
        var mp = t.Mount("unified");
        File.WriteAllText(Path.Combine(mp, "cgroup.controllers"), controllers + "\n");
        File.WriteAllText(Path.Combine(mp, "cgroup.subtree_control"), "");
        var mountinfo = $"41 31 0:38 / {mp} rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate\n";
        t.Layout = CgroupLayout.Parse(mountinfo, selfCgroup, controllers);
        return t;
    }

    /// <summary>Separate v1 hierarchies (like this machine), optionally with a cgroup2 mount (hybrid).</summary>
    public static FakeCgroupTree V1(bool hybrid = false, string? selfCgroup = null, string unifiedControllers = "")
    {
        var t = new FakeCgroupTree();
        var lines = new List<string>();
        int id = 32;
        foreach (var c in new[] { "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids" })
            lines.Add($"{id++} 31 0:{id} / {t.Mount(c)} rw,relatime - cgroup cgroup rw,{c}");
        lines.Add($"{id++} 31 0:{id} / {t.Mount("systemd")} rw,relatime - cgroup cgroup rw,name=systemd");
        File.WriteAllText(Path.Combine(t.Root, "cpuset", "cpuset.cpus"), "0-3\n");
        File.WriteAllText(Path.Combine(t.Root, "cpuset", "cpuset.mems"), "0\n");
        if (hybrid)
        {
            var mp = t.Mount("unified");
            File.WriteAllText(Path.Combine(mp, "cgroup.controllers"), unifiedControllers + "\n");
            File.WriteAllText(Path.Combine(mp, "cgroup.subtree_control"), "");
            lines.Add($"{id++} 31 0:{id} / {mp} rw,relatime - cgroup2 cgroup2 rw");
        }
        t.Layout = CgroupLayout.Parse(string.Join('\n', lines) + "\n", selfCgroup, unifiedControllers);
        return t;
    }

    string Mount(string name)
    {
        var d = Path.Combine(Root, name);
        Directory.CreateDirectory(d);
        return d;
    }

    public string P(params string[] parts) => Path.Combine([Root, .. parts]);

    /// <summary>Creates (or overwrites) a file under Root.</summary>
    public void Put(string relative, string content = "")
    {
        var path = Path.Combine(Root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, content);
    }

    /// <summary>Creates empty files <paramref name="files"/> in <paramref name="dir"/> (a path under Root).</summary>
    public void Touch(string dir, params string[] files)
    {
        foreach (var f in files) Put(Path.Combine(dir, f));
    }

    public string Read(string relative) => File.ReadAllText(Path.Combine(Root, relative));

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Records the cgroup writes made on this thread while alive.</summary>
internal sealed class WriteLog : IDisposable
{
    readonly string _root;
    public List<(string File, string Value)> Writes { get; } = [];

    public WriteLog(string root)
    {
        _root = root;
        CgroupFs.OnWrite = (p, v) => Writes.Add((Path.GetRelativePath(_root, p), v));
    }

    public IEnumerable<string> Files => Writes.Select(w => w.File);

    public void Dispose() => CgroupFs.OnWrite = null;
}
