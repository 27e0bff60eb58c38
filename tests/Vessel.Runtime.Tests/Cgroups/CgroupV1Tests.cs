using Vessel.Runtime.Cgroups;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Tests.Cgroups;

/// <summary>cgroup v1 logic against a fake tree of separate hierarchies.</summary>
public class CgroupV1Tests
{
    static (FakeCgroupTree Tree, Cgroup Cg) Created(bool hybrid = false, string unifiedControllers = "")
    {
        var t = FakeCgroupTree.V1(hybrid, unifiedControllers: unifiedControllers);
        var cg = Cgroup.Open(t.Layout, "/vessel/c1");
        cg.Create();
        void Files(string h, params string[] f) => t.Touch(Path.Combine(h, "vessel", "c1"), ["cgroup.procs", .. f]);
        Files("cpu", "cpu.shares", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.cfs_burst_us", "cpu.rt_period_us", "cpu.rt_runtime_us", "cpu.idle");
        Files("cpuacct");
        Files("cpuset", "cpuset.cpus", "cpuset.mems");
        Files("memory", "memory.limit_in_bytes", "memory.soft_limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.swappiness", "memory.oom_control", "memory.kmem.tcp.limit_in_bytes");
        Files("devices", "devices.allow", "devices.deny");
        Files("freezer", "freezer.state");
        Files("blkio", "blkio.throttle.read_bps_device", "blkio.throttle.write_iops_device");
        Files("pids", "pids.max");
        Files("systemd");
        if (hybrid) Files("unified");
        return (t, cg);
    }

    [Fact]
    public void Create_MakesEveryHierarchy_AndCopiesCpusetDown()
    {
        using var t = FakeCgroupTree.V1();
        // What the kernel does on mkdir in a cpuset hierarchy: the new cgroup has empty cpus/mems.
        t.Put("cpuset/vessel/cpuset.cpus", "\n");
        t.Put("cpuset/vessel/cpuset.mems", "\n");
        t.Put("cpuset/vessel/c1/cpuset.cpus", "\n");
        t.Put("cpuset/vessel/c1/cpuset.mems", "\n");
        var cg = Cgroup.Open(t.Layout, "/vessel/c1");
        cg.Create();
        foreach (var h in new[] { "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd" })
            Assert.True(Directory.Exists(t.P(h, "vessel", "c1")), h);
        Assert.Equal("0-3", t.Read("cpuset/vessel/cpuset.cpus"));
        Assert.Equal("0", t.Read("cpuset/vessel/cpuset.mems"));
        Assert.Equal("0-3", t.Read("cpuset/vessel/c1/cpuset.cpus"));
        Assert.Equal("0", t.Read("cpuset/vessel/c1/cpuset.mems"));
        Assert.True(cg.Exists);
    }

    [Fact]
    public void HostPaths_NameEveryController()
    {
        var (t, cg) = Created(hybrid: true);
        using var _ = t;
        Assert.Equal(
            ["", "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "name=systemd", "pids"],
            cg.HostPaths.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(t.P("unified", "vessel", "c1"), cg.HostPaths[""]);
        Assert.All(cg.HostPaths.Values, p => Assert.True(Directory.Exists(p), p));
    }

    [Fact]
    public void Apply_WritesV1Files()
    {
        var (t, cg) = Created();
        using var _ = t;
        cg.Apply(new LinuxResources
        {
            Cpu = new LinuxCpu { Shares = 512, Quota = 50000, Period = 100000, Burst = 1000, RealtimePeriod = 1000000, RealtimeRuntime = 0, Idle = 0, Cpus = "0-1", Mems = "0" },
            Memory = new LinuxMemory { Limit = 64 << 20, Reservation = 32 << 20, Swappiness = 10, DisableOOMKiller = true, KernelTCP = 1 << 20, Kernel = 1 << 20 },
            Pids = new LinuxPids { Limit = 50 },
        });
        string R(string f) => t.Read(f);
        Assert.Equal("512", R("cpu/vessel/c1/cpu.shares"));
        Assert.Equal("50000", R("cpu/vessel/c1/cpu.cfs_quota_us"));
        Assert.Equal("100000", R("cpu/vessel/c1/cpu.cfs_period_us"));
        Assert.Equal("1000", R("cpu/vessel/c1/cpu.cfs_burst_us"));
        Assert.Equal("1000000", R("cpu/vessel/c1/cpu.rt_period_us"));
        Assert.Equal("", R("cpu/vessel/c1/cpu.rt_runtime_us"));
        Assert.Equal("0", R("cpu/vessel/c1/cpu.idle"));
        Assert.Equal("0-1", R("cpuset/vessel/c1/cpuset.cpus"));
        Assert.Equal("0", R("cpuset/vessel/c1/cpuset.mems"));
        Assert.Equal("67108864", R("memory/vessel/c1/memory.limit_in_bytes"));
        Assert.Equal("", R("memory/vessel/c1/memory.memsw.limit_in_bytes"));
        Assert.Equal("33554432", R("memory/vessel/c1/memory.soft_limit_in_bytes"));
        Assert.Equal("10", R("memory/vessel/c1/memory.swappiness"));
        Assert.Equal("1", R("memory/vessel/c1/memory.oom_control"));
        Assert.Equal("1048576", R("memory/vessel/c1/memory.kmem.tcp.limit_in_bytes"));
        Assert.False(File.Exists(t.P("memory", "vessel", "c1", "memory.kmem.limit_in_bytes")));
        Assert.Equal("50", R("pids/vessel/c1/pids.max"));
    }

    [Fact]
    public void Apply_CpuPeriodBeforeQuota()
    {
        var (t, cg) = Created();
        using var _ = t;
        using var log = new WriteLog(t.Root);
        cg.Apply(new LinuxResources { Cpu = new LinuxCpu { Quota = -1, Period = 100000 } });
        Assert.Equal([("cpu/vessel/c1/cpu.cfs_period_us", "100000"), ("cpu/vessel/c1/cpu.cfs_quota_us", "-1")], log.Writes);
    }

    [Theory]
    // current limit, new limit, new memory+swap, expected first file
    [InlineData("104857600", 209715200L, 419430400L, "memsw")] // raising: memsw first so memsw >= limit holds
    [InlineData("419430400", 104857600L, 209715200L, "limit")] // lowering: limit first
    [InlineData("104857600", 209715200L, -1L, "memsw")]        // unlimited swap first
    [InlineData("9223372036854771712", -1L, null, "memsw")]    // unlimited memory implies unlimited memsw, written first
    public void Apply_MemoryAndSwap_Order(string currentLimit, long limit, long? swap, string first)
    {
        var (t, cg) = Created();
        using var _ = t;
        t.Put("memory/vessel/c1/memory.limit_in_bytes", currentLimit + "\n");
        using var log = new WriteLog(t.Root);
        cg.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = limit, Swap = swap } });
        var files = log.Files.ToList();
        Assert.Equal(2, files.Count);
        Assert.Equal(first == "memsw" ? "memory/vessel/c1/memory.memsw.limit_in_bytes" : "memory/vessel/c1/memory.limit_in_bytes", files[0]);
        Assert.Equal(limit.ToString(), t.Read("memory/vessel/c1/memory.limit_in_bytes"));
        Assert.Equal((swap ?? -1).ToString(), t.Read("memory/vessel/c1/memory.memsw.limit_in_bytes"));
    }

    [Fact]
    public void Apply_Swap_WithoutSwapAccounting()
    {
        var (t, cg) = Created();
        using var _ = t;
        File.Delete(t.P("memory", "vessel", "c1", "memory.memsw.limit_in_bytes"));
        cg.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = 1 << 20, Swap = -1 } }); // unlimited: nothing to do
        Assert.Equal("1048576", t.Read("memory/vessel/c1/memory.limit_in_bytes"));
        Assert.Throws<CgroupException>(() => cg.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = 1 << 20, Swap = 2 << 20 } }));
    }

    [Fact]
    public void Apply_InvalidValues_AreSpecErrors()
    {
        var (t, cg) = Created();
        using var _ = t;
        Assert.Equal("linux.resources.memory.swap",
            Assert.Throws<SpecException>(() => cg.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = 2000, Swap = 1000 } })).Field);
        Assert.Equal("linux.resources.memory.swappiness",
            Assert.Throws<SpecException>(() => cg.Apply(new LinuxResources { Memory = new LinuxMemory { Swappiness = 101 } })).Field);
        Assert.Equal("linux.resources.unified",
            Assert.Throws<SpecException>(() => cg.Apply(new LinuxResources { Unified = new() { ["memory.high"] = "1M" } })).Field);
        Assert.Equal("linux.resources.devices[1].type",
            Assert.Throws<SpecException>(() => cg.Apply(new LinuxResources { Devices = [new() { Allow = false }, new() { Allow = true, Type = "x" }] })).Field);
        cg.Apply(new LinuxResources { Unified = [] }); // empty is fine
    }

    [Theory]
    [InlineData(0L, "max")]
    [InlineData(-1L, "max")]
    [InlineData(7L, "7")]
    public void Apply_Pids(long limit, string expected)
    {
        var (t, cg) = Created();
        using var _ = t;
        cg.Apply(new LinuxResources { Pids = new LinuxPids { Limit = limit } });
        Assert.Equal(expected, t.Read("pids/vessel/c1/pids.max"));
    }

    [Fact]
    public void Apply_Devices_InOrder()
    {
        var (t, cg) = Created();
        using var _ = t;
        using var log = new WriteLog(t.Root);
        cg.Apply(new LinuxResources
        {
            Devices =
            [
                new() { Allow = false, Access = "rwm" },
                new() { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rwm" },
                new() { Allow = true, Type = "c", Access = "m" },
                new() { Allow = false, Type = "b", Major = 8, Minor = 0, Access = "w" },
            ],
        });
        Assert.Equal(
            [
                ("devices/vessel/c1/devices.deny", "a *:* rwm"),
                ("devices/vessel/c1/devices.allow", "c 1:3 rwm"),
                ("devices/vessel/c1/devices.allow", "c *:* m"),
                ("devices/vessel/c1/devices.deny", "b 8:0 w"),
            ],
            log.Writes);
    }

    [Fact]
    public void Apply_Blkio_WeightWithoutCfqIsANoOp()
    {
        var (t, cg) = Created();
        using var _ = t;
        using var log = new WriteLog(t.Root);
        var bio = new LinuxBlockIo
        {
            Weight = 500,
            LeafWeight = 300,
            WeightDevice = [new() { Major = 8, Minor = 0, Weight = 100 }],
            ThrottleReadBpsDevice = [new() { Major = 8, Minor = 0, Rate = 1048576 }],
            ThrottleWriteIOPSDevice = [new() { Major = 8, Minor = 0, Rate = 10 }],
        };
        cg.Apply(new LinuxResources { BlockIO = bio });
        Assert.Equal(
            [("blkio/vessel/c1/blkio.throttle.read_bps_device", "8:0 1048576"), ("blkio/vessel/c1/blkio.throttle.write_iops_device", "8:0 10")],
            log.Writes);

        t.Touch("blkio/vessel/c1", "blkio.weight", "blkio.weight_device");
        cg.Apply(new LinuxResources { BlockIO = bio });
        Assert.Equal("500", t.Read("blkio/vessel/c1/blkio.weight"));
        Assert.Equal("8:0 100", t.Read("blkio/vessel/c1/blkio.weight_device"));
    }

    [Fact]
    public void Apply_NotMountedControllers_AreSkipped()
    {
        var (t, cg) = Created();
        using var _ = t;
        using var log = new WriteLog(t.Root);
        cg.Apply(new LinuxResources
        {
            HugepageLimits = [new() { PageSize = "2MB", Limit = 1 << 21 }],
            Network = new LinuxNetwork { ClassID = 0x100001, Priorities = [new() { Name = "eth0", Priority = 5 }] },
        });
        Assert.Empty(log.Writes);
    }

    [Fact]
    public void Hybrid_UsesCgroup2ForControllersOnlyThere()
    {
        var (t, cg) = Created(hybrid: true, unifiedControllers: "hugetlb");
        using var _ = t;
        Assert.Equal("", t.Read("unified/cgroup.subtree_control")); // nothing enabled until needed
        t.Touch("unified/vessel/c1", "hugetlb.2MB.max");
        cg.Apply(new LinuxResources { HugepageLimits = [new() { PageSize = "2MB", Limit = 1 << 21 }] });
        Assert.Equal("2097152", t.Read("unified/vessel/c1/hugetlb.2MB.max"));
        Assert.Equal("+hugetlb", t.Read("unified/cgroup.subtree_control"));
        cg.AddProcess(99);
        Assert.Equal("99", t.Read("unified/vessel/c1/cgroup.procs"));
    }

    [Fact]
    public void AddProcess_JoinsEveryHierarchy()
    {
        var (t, cg) = Created();
        using var _ = t;
        cg.AddProcess(1234);
        foreach (var h in new[] { "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd" })
            Assert.Equal("1234", t.Read($"{h}/vessel/c1/cgroup.procs"));
        t.Put("freezer/vessel/c1/cgroup.procs", "1234\n1240\n");
        t.Put("freezer/vessel/c1/x/cgroup.procs", "1300\n");
        Assert.Equal([1234, 1240, 1300], cg.Processes());
    }

    [Fact]
    public void FreezeAndThaw()
    {
        var (t, cg) = Created();
        using var _ = t;
        t.Put("freezer/vessel/c1/freezer.state", "THAWED\n");
        Assert.Equal(FreezerState.Thawed, cg.FreezerState);
        cg.Freeze();
        Assert.Equal("FROZEN", t.Read("freezer/vessel/c1/freezer.state"));
        Assert.Equal(FreezerState.Frozen, cg.FreezerState);
        cg.Thaw();
        Assert.Equal(FreezerState.Thawed, cg.FreezerState);
    }

    [Fact]
    public void Stats_ParsesV1Files()
    {
        var (t, cg) = Created();
        using var _ = t;
        t.Put("cpuacct/vessel/c1/cpuacct.usage", "3000000\n");
        t.Put("cpuacct/vessel/c1/cpuacct.usage_percpu", "1000000 2000000 \n");
        t.Put("cpuacct/vessel/c1/cpuacct.usage_all", "cpu user system\n0 600000 400000\n1 1500000 500000\n");
        t.Put("cpuacct/vessel/c1/cpuacct.stat", "user 2\nsystem 1\n");
        t.Put("cpu/vessel/c1/cpu.stat", "nr_periods 20\nnr_throttled 4\nthrottled_time 123456\nnr_bursts 0\nburst_time 0\n");
        t.Put("memory/vessel/c1/memory.usage_in_bytes", "8192000\n");
        t.Put("memory/vessel/c1/memory.max_usage_in_bytes", "9000000\n");
        t.Put("memory/vessel/c1/memory.limit_in_bytes", "67108864\n");
        t.Put("memory/vessel/c1/memory.failcnt", "2\n");
        t.Put("memory/vessel/c1/memory.memsw.usage_in_bytes", "8200000\n");
        t.Put("memory/vessel/c1/memory.memsw.limit_in_bytes", "134217728\n");
        t.Put("memory/vessel/c1/memory.stat", "cache 4096000\nrss 4000000\nrss_huge 0\nswap 8000\ntotal_cache 4096000\n");
        t.Put("memory/vessel/c1/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n");
        t.Put("pids/vessel/c1/pids.current", "3\n");
        t.Put("pids/vessel/c1/pids.max", "max\n");
        t.Put("blkio/vessel/c1/blkio.throttle.io_service_bytes_recursive", "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\nTotal 12288\n");
        t.Put("blkio/vessel/c1/blkio.throttle.io_serviced_recursive", "8:0 Read 1\n8:0 Write 2\nTotal 3\n");

        var s = cg.Stats();
        Assert.Equal(3000000UL, s.Cpu.Usage.Total);
        Assert.Equal([1000000UL, 2000000UL], s.Cpu.Usage.Percpu!);
        Assert.Equal([600000UL, 1500000UL], s.Cpu.Usage.PercpuUser!);
        Assert.Equal([400000UL, 500000UL], s.Cpu.Usage.PercpuKernel!);
        Assert.Equal(20_000_000UL, s.Cpu.Usage.User);   // 2 ticks of 10ms
        Assert.Equal(10_000_000UL, s.Cpu.Usage.Kernel);
        Assert.Equal(20UL, s.Cpu.Throttling.Periods);
        Assert.Equal(4UL, s.Cpu.Throttling.ThrottledPeriods);
        Assert.Equal(123456UL, s.Cpu.Throttling.ThrottledTime);
        Assert.Equal(8192000UL, s.Memory.Usage.Usage);
        Assert.Equal(9000000UL, s.Memory.Usage.Max);
        Assert.Equal(67108864UL, s.Memory.Usage.Limit);
        Assert.Equal(2UL, s.Memory.Usage.Failcnt);
        Assert.Equal(8200000UL, s.Memory.Swap.Usage);
        Assert.Equal(134217728UL, s.Memory.Swap.Limit);
        Assert.Equal(4096000UL, s.Memory.Cache);
        Assert.Equal(4000000UL, s.Memory.Rss);
        Assert.Equal(1UL, s.Memory.OomKillCount);
        Assert.Equal(3UL, s.Pids.Current);
        Assert.Equal(ulong.MaxValue, s.Pids.Limit);
        Assert.Equal(6, s.Blkio.IoServiceBytesRecursive!.Count);
        Assert.Equal(new BlkioEntry { Major = 8, Minor = 0, Op = "Write", Value = 8192 }, s.Blkio.IoServiceBytesRecursive[1]);
        Assert.Equal(2, s.Blkio.IoServicedRecursive!.Count);
        Assert.Null(s.Blkio.SectorsRecursive);
    }

    [Fact]
    public void Destroy_RemovesEveryHierarchy()
    {
        using var t = FakeCgroupTree.V1(hybrid: true);
        var cg = Cgroup.Open(t.Layout, "/vessel/c1");
        cg.Create();
        Directory.CreateDirectory(t.P("memory", "vessel", "c1", "child"));
        cg.Destroy();
        Assert.False(cg.Exists);
        Assert.All(cg.HostPaths.Values, p => Assert.False(Directory.Exists(p), p));
        cg.Destroy(); // missing is fine
    }
}
