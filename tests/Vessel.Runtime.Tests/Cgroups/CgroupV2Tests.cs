using System.Text.Json;
using Vessel.Runtime.Cgroups;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Tests.Cgroups;

/// <summary>cgroup v2 logic against a fake tree (this host cannot run v2 for real).</summary>
public class CgroupV2Tests
{
    static readonly string[] LeafFiles =
    [
        "cgroup.procs", "cgroup.freeze", "cgroup.events", "cpu.weight", "cpu.max", "cpu.max.burst", "cpu.idle",
        "cpuset.cpus", "cpuset.mems", "memory.max", "memory.low", "memory.swap.max", "memory.high", "pids.max",
        "io.weight", "io.max", "hugetlb.2MB.max",
    ];

    static (FakeCgroupTree Tree, Cgroup Cg) Created(string path = "/vessel/c1")
    {
        var t = FakeCgroupTree.V2();
        var cg = Cgroup.Open(t.Layout, path);
        cg.Create();
        t.Touch(Path.GetRelativePath(t.Root, cg.HostPaths[""]), LeafFiles);
        return (t, cg);
    }

    [Fact]
    public void Create_EnablesControllersInAncestorsOnly()
    {
        using var t = FakeCgroupTree.V2("cpu io memory pids");
        // an intermediate cgroup that already exists, offering cpu+memory, with cpu already enabled
        t.Put("unified/a/cgroup.controllers", "cpu memory\n");
        t.Put("unified/a/cgroup.subtree_control", "cpu\n");
        var cg = Cgroup.Open(t.Layout, "/a/b/c");
        Assert.False(cg.Exists);
        cg.Create();
        Assert.True(cg.Exists);
        Assert.True(Directory.Exists(t.P("unified", "a", "b", "c")));
        Assert.Equal("+cpu +io +memory +pids", t.Read("unified/cgroup.subtree_control"));
        Assert.Equal("+memory", t.Read("unified/a/cgroup.subtree_control"));
        Assert.False(File.Exists(t.P("unified", "a", "b", "c", "cgroup.subtree_control")));
    }

    [Theory]
    [InlineData(2UL, 1UL)]
    [InlineData(1024UL, 39UL)]
    [InlineData(262144UL, 10000UL)]
    [InlineData(1UL, 1UL)]        // clamped to 2
    [InlineData(1000000UL, 10000UL)] // clamped to 262144
    public void SharesToWeight(ulong shares, ulong weight) => Assert.Equal(weight, Cgroup.ConvertSharesToWeight(shares));

    [Theory]
    [InlineData(10UL, 1UL)]
    [InlineData(500UL, 4950UL)]
    [InlineData(1000UL, 10000UL)]
    public void BlkioWeightToIoWeight(ulong w, ulong io) => Assert.Equal(io, Cgroup.ConvertBlkioWeightToIoWeight(w));

    [Fact]
    public void Apply_Cpu()
    {
        var (t, cg) = Created();
        using var _ = t;
        cg.Apply(new LinuxResources { Cpu = new LinuxCpu { Shares = 1024, Quota = 50000, Period = 100000, Burst = 1000, Idle = 1, Cpus = "0-1", Mems = "0" } });
        Assert.Equal("39", t.Read("unified/vessel/c1/cpu.weight"));
        Assert.Equal("50000 100000", t.Read("unified/vessel/c1/cpu.max"));
        Assert.Equal("1000", t.Read("unified/vessel/c1/cpu.max.burst"));
        Assert.Equal("1", t.Read("unified/vessel/c1/cpu.idle"));
        Assert.Equal("0-1", t.Read("unified/vessel/c1/cpuset.cpus"));
        Assert.Equal("0", t.Read("unified/vessel/c1/cpuset.mems"));
    }

    [Theory]
    [InlineData(-1L, 100000UL, "max 100000")]
    [InlineData(null, 250000UL, "max 250000")]
    [InlineData(20000L, null, "20000")]
    [InlineData(-1L, null, "max")]
    public void Apply_CpuMax(long? quota, ulong? period, string expected)
    {
        var (t, cg) = Created();
        using var _ = t;
        cg.Apply(new LinuxResources { Cpu = new LinuxCpu { Quota = quota, Period = period } });
        Assert.Equal(expected, t.Read("unified/vessel/c1/cpu.max"));
    }

    [Fact]
    public void Apply_Realtime_IsASpecError()
    {
        var (t, cg) = Created();
        using var _ = t;
        var e = Assert.Throws<SpecException>(() => cg.Apply(new LinuxResources { Cpu = new LinuxCpu { RealtimeRuntime = 950000 } }));
        Assert.StartsWith("linux.resources.cpu.realtime", e.Field);
    }

    [Theory]
    [InlineData(104857600L, 314572800L, "104857600", "209715200")] // swap = memory+swap - memory
    [InlineData(104857600L, 104857600L, "104857600", "0")]        // equal: no swap
    [InlineData(104857600L, -1L, "104857600", "max")]
    [InlineData(-1L, null, "max", "max")]                          // unlimited memory, swap unset: both unlimited
    [InlineData(104857600L, null, "104857600", "")]                // swap untouched
    public void Apply_MemoryAndSwap(long limit, long? swap, string max, string swapMax)
    {
        var (t, cg) = Created();
        using var _ = t;
        cg.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = limit, Swap = swap, Reservation = 52428800 } });
        Assert.Equal(max, t.Read("unified/vessel/c1/memory.max"));
        Assert.Equal(swapMax, t.Read("unified/vessel/c1/memory.swap.max"));
        Assert.Equal("52428800", t.Read("unified/vessel/c1/memory.low"));
    }

    [Theory]
    [InlineData(null, 1000L)]       // swap without memory limit
    [InlineData(2000L, 1000L)]      // memory+swap below memory
    [InlineData(-1L, 1000L)]
    public void Apply_BadSwap_IsASpecError(long? limit, long swap)
    {
        var (t, cg) = Created();
        using var _ = t;
        var e = Assert.Throws<SpecException>(() => cg.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = limit, Swap = swap } }));
        Assert.Equal("linux.resources.memory.swap", e.Field);
    }

    [Fact]
    public void Apply_CheckBeforeUpdate_RefusesLimitBelowUsage()
    {
        var (t, cg) = Created();
        using var _ = t;
        t.Put("unified/vessel/c1/memory.current", "5000\n");
        Assert.Throws<CgroupException>(() => cg.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = 4096, CheckBeforeUpdate = true } }));
        cg.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = 8192, CheckBeforeUpdate = true } });
        Assert.Equal("8192", t.Read("unified/vessel/c1/memory.max"));
    }

    [Theory]
    [InlineData(100L, "100")]
    [InlineData(0L, "max")]
    [InlineData(-1L, "max")]
    public void Apply_Pids(long limit, string expected)
    {
        var (t, cg) = Created();
        using var _ = t;
        cg.Apply(new LinuxResources { Pids = new LinuxPids { Limit = limit } });
        Assert.Equal(expected, t.Read("unified/vessel/c1/pids.max"));
    }

    [Fact]
    public void Apply_Io()
    {
        var (t, cg) = Created();
        using var _ = t;
        using var log = new WriteLog(t.Root);
        cg.Apply(new LinuxResources
        {
            BlockIO = new LinuxBlockIo
            {
                Weight = 500,
                ThrottleReadBpsDevice = [new LinuxThrottleDevice { Major = 8, Minor = 0, Rate = 1048576 }],
                ThrottleWriteIOPSDevice = [new LinuxThrottleDevice { Major = 8, Minor = 16, Rate = 100 }],
            },
        });
        Assert.Equal("4950", t.Read("unified/vessel/c1/io.weight"));
        Assert.Equal(
            [("unified/vessel/c1/io.weight", "4950"), ("unified/vessel/c1/io.max", "8:0 rbps=1048576"), ("unified/vessel/c1/io.max", "8:16 wiops=100")],
            log.Writes);
    }

    [Fact]
    public void Apply_Io_PrefersBfqWeight()
    {
        var (t, cg) = Created();
        using var _ = t;
        t.Touch("unified/vessel/c1", "io.bfq.weight");
        cg.Apply(new LinuxResources { BlockIO = new LinuxBlockIo { Weight = 500 } });
        Assert.Equal("500", t.Read("unified/vessel/c1/io.bfq.weight"));
        Assert.Equal("", t.Read("unified/vessel/c1/io.weight"));
    }

    [Fact]
    public void Apply_Io_NoWeightFile_IsANoOp()
    {
        var (t, cg) = Created();
        using var _ = t;
        File.Delete(t.P("unified", "vessel", "c1", "io.weight"));
        cg.Apply(new LinuxResources { BlockIO = new LinuxBlockIo { Weight = 500 } });
    }

    [Fact]
    public void Apply_Unified_IsVerbatimAndLast()
    {
        var (t, cg) = Created();
        using var _ = t;
        cg.Apply(new LinuxResources
        {
            Cpu = new LinuxCpu { Shares = 1024 },
            Unified = new() { ["memory.high"] = "50M", ["cpu.weight"] = "77" },
        });
        Assert.Equal("50M", t.Read("unified/vessel/c1/memory.high"));
        Assert.Equal("77", t.Read("unified/vessel/c1/cpu.weight"));
    }

    [Fact]
    public void Apply_Unified_UnknownFile_Fails()
    {
        var (t, cg) = Created();
        using var _ = t;
        Assert.Throws<CgroupException>(() => cg.Apply(new LinuxResources { Unified = new() { ["memory.oom.group"] = "1" } }));
        Assert.Throws<SpecException>(() => cg.Apply(new LinuxResources { Unified = new() { ["../../etc/passwd"] = "x" } }));
        Assert.Throws<SpecException>(() => cg.Apply(new LinuxResources { Unified = new() { ["cgroup.procs"] = "1" } }));
    }

    [Fact]
    public void Apply_DevicesAndNetwork_AreNoOps()
    {
        var (t, cg) = Created();
        using var _ = t;
        using var log = new WriteLog(t.Root);
        cg.Apply(new LinuxResources
        {
            Devices = [new LinuxDeviceCgroup { Allow = false, Access = "rwm" }, new LinuxDeviceCgroup { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rwm" }],
            Network = new LinuxNetwork { ClassID = 7 },
            Memory = new LinuxMemory { Swappiness = 10, DisableOOMKiller = true, Kernel = 1 << 20 },
        });
        Assert.Empty(log.Writes);
    }

    [Fact]
    public void Apply_Hugetlb()
    {
        var (t, cg) = Created();
        using var _ = t;
        cg.Apply(new LinuxResources { HugepageLimits = [new LinuxHugepageLimit { PageSize = "2MB", Limit = 4194304 }] });
        Assert.Equal("4194304", t.Read("unified/vessel/c1/hugetlb.2MB.max"));
    }

    [Fact]
    public void AddProcess_And_RecursiveProcesses()
    {
        var (t, cg) = Created();
        using var _ = t;
        cg.AddProcess(4242);
        Assert.Equal("4242", t.Read("unified/vessel/c1/cgroup.procs"));
        t.Put("unified/vessel/c1/cgroup.procs", "12\n34\n");
        t.Put("unified/vessel/c1/sub/cgroup.procs", "56\n");
        t.Put("unified/vessel/c1/sub/deeper/cgroup.procs", "7\n");
        Assert.Equal([7, 12, 34, 56], cg.Processes());
    }

    [Fact]
    public void FreezeAndThaw_WaitForCgroupEvents()
    {
        var (t, cg) = Created();
        using var _ = t;
        t.Put("unified/vessel/c1/cgroup.events", "populated 1\nfrozen 1\n"); // what the kernel reports once frozen
        cg.Freeze();
        Assert.Equal("1", t.Read("unified/vessel/c1/cgroup.freeze"));
        Assert.Equal(FreezerState.Frozen, cg.FreezerState);
        t.Put("unified/vessel/c1/cgroup.events", "populated 1\nfrozen 0\n");
        cg.Thaw();
        Assert.Equal("0", t.Read("unified/vessel/c1/cgroup.freeze"));
        Assert.Equal(FreezerState.Thawed, cg.FreezerState);
    }

    [Fact]
    public void Freeze_Timeout_ThawsAgainAndThrows()
    {
        var (t, cg) = Created();
        using var _ = t;
        t.Put("unified/vessel/c1/cgroup.events", "populated 1\nfrozen 0\n"); // never freezes
        cg.FreezeTimeout = TimeSpan.FromMilliseconds(100);
        Assert.Throws<CgroupException>(cg.Freeze);
        Assert.Equal("0", t.Read("unified/vessel/c1/cgroup.freeze"));
    }

    [Fact]
    public void FreezingState()
    {
        var (t, cg) = Created();
        using var _ = t;
        t.Put("unified/vessel/c1/cgroup.freeze", "1\n");
        t.Put("unified/vessel/c1/cgroup.events", "populated 1\nfrozen 0\n");
        Assert.Equal(FreezerState.Freezing, cg.FreezerState);
    }

    [Fact]
    public void Stats_ParsesV2Files()
    {
        var (t, cg) = Created();
        using var _ = t;
        var d = "unified/vessel/c1/";
        t.Put(d + "cpu.stat", "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\nnr_periods 10\nnr_throttled 3\nthrottled_usec 700\nnr_bursts 0\nburst_usec 0\n");
        t.Put(d + "cpuset.cpus.effective", "0-2,5\n");
        t.Put(d + "cpuset.mems.effective", "0\n");
        t.Put(d + "memory.current", "1048576\n");
        t.Put(d + "memory.peak", "2097152\n");
        t.Put(d + "memory.max", "max\n");
        t.Put(d + "memory.stat", "anon 700000\nfile 300000\nkernel 4096\nsock 0\n");
        t.Put(d + "memory.events", "low 0\nhigh 0\nmax 5\noom 2\noom_kill 3\noom_group_kill 0\n");
        t.Put(d + "memory.swap.current", "4096\n");
        t.Put(d + "memory.swap.max", "max\n");
        t.Put(d + "pids.current", "4\n");
        t.Put(d + "pids.max", "100\n");
        t.Put(d + "io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n");
        t.Put(d + "hugetlb.2MB.current", "0\n");
        t.Put(d + "hugetlb.2MB.max", "4194304\n");
        t.Put(d + "hugetlb.2MB.rsvd.current", "0\n");

        var s = cg.Stats();
        Assert.Equal(2_500_000UL, s.Cpu.Usage.Total);
        Assert.Equal(2_000_000UL, s.Cpu.Usage.User);
        Assert.Equal(500_000UL, s.Cpu.Usage.Kernel);
        Assert.Equal(10UL, s.Cpu.Throttling.Periods);
        Assert.Equal(3UL, s.Cpu.Throttling.ThrottledPeriods);
        Assert.Equal(700_000UL, s.Cpu.Throttling.ThrottledTime);
        Assert.Equal([0, 1, 2, 5], s.CpuSet.Cpus!);
        Assert.Equal(1048576UL, s.Memory.Usage.Usage);
        Assert.Equal(2097152UL, s.Memory.Usage.Max);
        Assert.Equal(ulong.MaxValue, s.Memory.Usage.Limit);
        Assert.Equal(5UL, s.Memory.Usage.Failcnt);
        Assert.Equal(300000UL, s.Memory.Cache);
        Assert.Equal(700000UL, s.Memory.Rss);
        Assert.Equal(3UL, s.Memory.OomKillCount);
        Assert.Equal(1048576UL + 4096, s.Memory.Swap.Usage); // memory+swap, like v1
        Assert.Equal(ulong.MaxValue, s.Memory.Swap.Limit);
        Assert.Equal(4096UL, s.Memory.Kernel.Usage);
        Assert.Equal(700000UL, s.Memory.Raw!["anon"]);
        Assert.Equal(4UL, s.Pids.Current);
        Assert.Equal(100UL, s.Pids.Limit);
        Assert.Equal(
            [new BlkioEntry { Major = 8, Minor = 0, Op = "Read", Value = 4096 }, new BlkioEntry { Major = 8, Minor = 0, Op = "Write", Value = 8192 }, new BlkioEntry { Major = 8, Minor = 0, Op = "Discard", Value = 0 }],
            s.Blkio.IoServiceBytesRecursive!);
        Assert.Equal(2UL, s.Blkio.IoServicedRecursive![1].Value);
        Assert.Equal(4194304UL, Assert.Single(s.Hugetlb).Value.Max);

        // Serializes with runc's types.Stats names.
        var json = JsonSerializer.Serialize(s, CgroupStatsJsonContext.Default.CgroupStats);
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;
        Assert.Equal(2_500_000UL, root.GetProperty("cpu").GetProperty("usage").GetProperty("total").GetUInt64());
        Assert.Equal(3UL, root.GetProperty("cpu").GetProperty("throttling").GetProperty("throttledPeriods").GetUInt64());
        Assert.Equal(1048576UL, root.GetProperty("memory").GetProperty("usage").GetProperty("usage").GetUInt64());
        Assert.Equal(300000UL, root.GetProperty("memory").GetProperty("raw").GetProperty("file").GetUInt64());
        Assert.Equal(4UL, root.GetProperty("pids").GetProperty("current").GetUInt64());
        Assert.Equal("Read", root.GetProperty("blkio").GetProperty("ioServiceBytesRecursive")[0].GetProperty("op").GetString());
        Assert.True(root.GetProperty("hugetlb").TryGetProperty("2MB", out var _2mb));
        Assert.False(root.GetProperty("memory").TryGetProperty("OomKillCount", out var _oom));
    }

    [Fact]
    public void Stats_EmptyJsonOmitsZeroesLikeRunc()
    {
        var json = JsonSerializer.Serialize(new CgroupStats(), CgroupStatsJsonContext.Default.CgroupStats);
        Assert.Contains("\"cpu\":{\"usage\":{\"kernel\":0,\"user\":0},\"throttling\":{}}", json);
        Assert.Contains("\"pids\":{}", json);
        Assert.Contains("\"usage\":{\"limit\":0,\"failcnt\":0}", json);
        Assert.Contains("\"blkio\":{}", json);
    }

    [Fact]
    public void Destroy_RemovesLeafAndChildren_MissingIsFine()
    {
        using var t = FakeCgroupTree.V2();
        var cg = Cgroup.Open(t.Layout, "/vessel/c1");
        cg.Create();
        Directory.CreateDirectory(t.P("unified", "vessel", "c1", "child", "grandchild"));
        cg.Destroy();
        Assert.False(cg.Exists);
        Assert.True(Directory.Exists(t.P("unified", "vessel"))); // parents are not ours to remove
        cg.Destroy();
    }
}
