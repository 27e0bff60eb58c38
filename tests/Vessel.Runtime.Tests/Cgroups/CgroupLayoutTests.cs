using Vessel.Runtime.Cgroups;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Tests.Cgroups;

public class CgroupLayoutTests
{
    // This development machine's /proc/self/mountinfo (hybrid: separate v1 hierarchies on a tmpfs, cgroup2 at unified).
    const string ThisMachine = """
        22 27 0:21 / /proc rw,relatime - proc proc rw
        23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
        24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334460k,nr_inodes=3083615,mode=755
        25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24684084k
        26 24 0:24 / /dev/pts rw,relatime - devpts devpts rw,mode=600,ptmxmode=000
        27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
        34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
        37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
        38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
        39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """;

    const string ThisMachineSelf = """
        9:name=systemd:/
        8:pids:/
        7:blkio:/
        6:freezer:/
        5:devices:/
        4:memory:/process_api/24dc5ca6d9b2b0dc9b1059064741b1c9
        3:cpuset:/
        2:cpuacct:/
        1:cpu:/
        0::/
        """;

    // A classic pure-v1 host (e.g. CentOS 7): co-mounted cpu,cpuacct and net_cls,net_prio, no cgroup2.
    const string PureV1 = """
        25 18 0:21 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:8 - tmpfs tmpfs ro,mode=755
        26 25 0:22 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,xattr,release_agent=/usr/lib/systemd/systemd-cgroups-agent,name=systemd
        29 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
        30 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,net_cls,net_prio
        31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
        32 25 0:28 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,pids
        33 25 0:29 / /sys/fs/cgroup/freezer rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,freezer
        34 25 0:30 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,cpuset
        """;

    // A current systemd distribution (v2 only).
    const string V2Only = """
        24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
        26 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
        27 24 0:24 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore pstore rw
        """;

    [Fact]
    public void ThisMachine_IsHybrid()
    {
        var l = CgroupLayout.Parse(ThisMachine, ThisMachineSelf, "hugetlb\n");
        Assert.Equal(CgroupMode.Hybrid, l.Mode);
        Assert.Equal("/sys/fs/cgroup/memory", l.V1["memory"].MountPoint);
        Assert.Equal("/sys/fs/cgroup/cpuacct", l.V1["cpuacct"].MountPoint);
        Assert.Equal("/sys/fs/cgroup/systemd", l.V1["name=systemd"].MountPoint);
        Assert.Equal(9, l.V1.Count);
        Assert.Equal("/sys/fs/cgroup/unified", l.Unified!.MountPoint);
        Assert.Equal(["hugetlb"], l.UnifiedControllers);
        Assert.Equal(10, l.Hierarchies.Count);
        Assert.Equal("/process_api/24dc5ca6d9b2b0dc9b1059064741b1c9", l.OwnCgroups["memory"]);
        Assert.Equal("/", l.OwnCgroups[""]);
    }

    [Fact]
    public void PureV1_CoMountedControllersShareAHierarchy()
    {
        var l = CgroupLayout.Parse(PureV1);
        Assert.Equal(CgroupMode.V1, l.Mode);
        Assert.Null(l.Unified);
        Assert.Same(l.V1["cpu"], l.V1["cpuacct"]);
        Assert.Equal("/sys/fs/cgroup/cpu,cpuacct", l.V1["cpu"].MountPoint);
        Assert.Equal("/sys/fs/cgroup/net_cls,net_prio", l.V1["net_prio"].MountPoint);
        Assert.Equal(["name=systemd"], l.V1["name=systemd"].Controllers);
        Assert.Equal(7, l.Hierarchies.Count);
    }

    [Fact]
    public void V2Only_IsV2()
    {
        var l = CgroupLayout.Parse(V2Only, "0::/user.slice/user-1000.slice/session-2.scope\n", "cpuset cpu io memory hugetlb pids rdma misc\n");
        Assert.Equal(CgroupMode.V2, l.Mode);
        Assert.Empty(l.V1);
        Assert.Equal("/sys/fs/cgroup", l.Unified!.MountPoint);
        Assert.Contains("memory", l.UnifiedControllers);
        Assert.Equal(8, l.UnifiedControllers.Count);
        Assert.Equal("/user.slice/user-1000.slice/session-2.scope", l.OwnCgroups[""]);
    }

    [Fact]
    public void NoCgroupMount_Throws()
    {
        Assert.Throws<CgroupException>(() => CgroupLayout.Parse("22 27 0:21 / /proc rw,relatime - proc proc rw\n"));
    }

    [Fact]
    public void DuplicateMounts_FirstWins_EscapesDecoded_RootKept()
    {
        const string text = """
            35 31 0:32 /docker/abc /sys/fs/cgroup/my\040memory rw,relatime - cgroup cgroup rw,memory
            90 80 0:32 /docker/abc /other/memory rw,relatime - cgroup cgroup rw,memory
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            91 80 0:38 / /elsewhere rw,relatime - cgroup2 cgroup2 rw
            """;
        var l = CgroupLayout.Parse(text);
        Assert.Equal(CgroupMode.Hybrid, l.Mode);
        Assert.Equal("/sys/fs/cgroup/my memory", l.V1["memory"].MountPoint);
        Assert.Equal("/docker/abc", l.V1["memory"].Root);
        Assert.Equal("/sys/fs/cgroup/unified", l.Unified!.MountPoint);
        Assert.Equal(2, l.Hierarchies.Count);
    }

    [Fact]
    public void OnlyNamedV1PlusCgroup2_IsV2()
    {
        const string text = """
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
            26 24 0:23 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw
            """;
        Assert.Equal(CgroupMode.V2, CgroupLayout.Parse(text).Mode);
    }

    [Fact]
    public void Detect_ReadsThisHost()
    {
        Assert.SkipUnless(File.Exists("/proc/self/mountinfo") && File.ReadAllText("/proc/self/mountinfo").Contains(" - cgroup"), "no cgroups mounted");
        var l = CgroupLayout.Detect();
        Assert.NotEmpty(l.Hierarchies);
        Assert.NotEmpty(l.OwnCgroups);
        foreach (var h in l.Hierarchies) Assert.True(Directory.Exists(h.MountPoint), h.MountPoint);
    }
}

public class CgroupPathTests
{
    [Fact]
    public void Absolute_IsFromTheHierarchyRoot()
    {
        using var t = FakeCgroupTree.V1(hybrid: true, selfCgroup: "4:memory:/process_api/x\n1:cpu:/\n0::/some\n");
        var cg = Cgroup.Open(t.Layout, "/vessel/c1");
        Assert.IsType<CgroupV1>(cg);
        Assert.Equal(t.P("memory", "vessel", "c1"), cg.HostPaths["memory"]);
        Assert.Equal(t.P("cpu", "vessel", "c1"), cg.HostPaths["cpu"]);
        Assert.Equal(t.P("systemd", "vessel", "c1"), cg.HostPaths["name=systemd"]);
        Assert.Equal(t.P("unified", "vessel", "c1"), cg.HostPaths[""]);
        Assert.Equal("/vessel/c1", cg.CgroupsPath);
    }

    [Fact]
    public void Relative_IsUnderThisProcessCgroupPerHierarchy()
    {
        using var t = FakeCgroupTree.V1(hybrid: true, selfCgroup: "4:memory:/process_api/x\n1:cpu:/\n0::/some\n");
        var cg = Cgroup.Open(t.Layout, "vessel//c1/");
        Assert.Equal("vessel/c1", cg.CgroupsPath);
        Assert.Equal(t.P("memory", "process_api", "x", "vessel", "c1"), cg.HostPaths["memory"]);
        Assert.Equal(t.P("cpu", "vessel", "c1"), cg.HostPaths["cpu"]);
        Assert.Equal(t.P("unified", "some", "vessel", "c1"), cg.HostPaths[""]);
    }

    [Fact]
    public void V2_RelativeAndAbsolute()
    {
        using var t = FakeCgroupTree.V2(selfCgroup: "0::/user.slice/session-2.scope\n");
        var rel = Cgroup.Open(t.Layout, "vessel/c1");
        Assert.IsType<CgroupV2>(rel);
        Assert.Equal(t.P("unified", "user.slice", "session-2.scope", "vessel", "c1"), rel.HostPaths[""]);
        var abs = Cgroup.Open(t.Layout, "/machine.slice/vessel-c1");
        Assert.Equal(t.P("unified", "machine.slice", "vessel-c1"), Assert.Single(abs.HostPaths).Value);
    }

    [Fact]
    public void MountRootIsStripped()
    {
        // A v1 hierarchy bind-mounted from /docker/abc (no cgroup namespace): our own cgroup is /docker/abc.
        var layout = CgroupLayout.Parse("35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n", "4:memory:/docker/abc\n");
        Assert.Equal("/sys/fs/cgroup/memory/x", Cgroup.Open(layout, "x").HostPaths["memory"]);
        Assert.Equal("/sys/fs/cgroup/memory/y", Cgroup.Open(layout, "/docker/abc/y").HostPaths["memory"]);
    }

    [Theory]
    [InlineData("system.slice:vessel:c1", "systemd")]
    [InlineData("", "empty")]
    [InlineData("/", "root")]
    [InlineData("/a/../b", "..")]
    [InlineData("./a", "..")]
    public void Invalid_IsASpecError(string path, string mention)
    {
        using var t = FakeCgroupTree.V2();
        var e = Assert.Throws<SpecException>(() => Cgroup.Open(t.Layout, path));
        Assert.Equal("linux.cgroupsPath", e.Field);
        Assert.Contains(mention, e.Message);
    }
}
