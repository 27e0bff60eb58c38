using System.Diagnostics;
using System.Text.Json;
using Vessel.Runtime.Cgroups;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Tests.Cgroups;

/// <summary>Real cgroup v1 (or hybrid) hierarchies on this host, as root. Every cgroup is named vessel-test-cg-*
/// and removed in finally (the leak check greps /sys/fs/cgroup for "vessel").</summary>
public class CgroupIntegrationTests
{
    static CgroupLayout RequireV1Root()
    {
        Assert.SkipUnless(Environment.UserName == "root" || Environment.GetEnvironmentVariable("USER") == "root" || IsRoot(), "needs root");
        var layout = CgroupLayout.Detect();
        Assert.SkipWhen(layout.Mode == CgroupMode.V2, "host is cgroup v2 only; v2 is covered by the fake-tree tests");
        return layout;
    }

    static bool IsRoot() => File.ReadAllLines("/proc/self/status").Any(l => l.StartsWith("Uid:") && l.Split('\t', StringSplitOptions.RemoveEmptyEntries)[1] == "0");

    static string NewPath() => "/vessel-test-cg-" + Guid.NewGuid().ToString("N")[..10];

    static string ProcState(int pid) =>
        File.ReadAllLines($"/proc/{pid}/status").First(l => l.StartsWith("State:"))["State:".Length..].Trim();

    static void WaitUntil(Func<bool> cond, string what, int ms = 10000)
    {
        var sw = Stopwatch.StartNew();
        while (!cond())
        {
            if (sw.ElapsedMilliseconds > ms) Assert.Fail("timed out waiting for " + what);
            Thread.Sleep(20);
        }
    }

    [Fact]
    public void Lifecycle_Limits_Process_Freeze_Stats_Destroy()
    {
        var layout = RequireV1Root();
        var cg = Cgroup.Open(layout, NewPath());
        Process? proc = null;
        try
        {
            cg.Create();
            Assert.True(cg.Exists);
            foreach (var (controller, dir) in cg.HostPaths)
                Assert.True(Directory.Exists(dir), $"{controller}: {dir}");

            bool memsw = File.Exists(Path.Combine(cg.HostPaths["memory"], "memory.memsw.limit_in_bytes"));
            cg.Apply(new LinuxResources
            {
                Memory = new LinuxMemory { Limit = 64L << 20, Swap = memsw ? 128L << 20 : null, Reservation = 32L << 20 },
                Pids = new LinuxPids { Limit = 32 },
                Cpu = new LinuxCpu { Shares = 512, Quota = 50000, Period = 100000 },
            });
            string R(string controller, string file) => File.ReadAllText(Path.Combine(cg.HostPaths[controller], file)).Trim();
            Assert.Equal("67108864", R("memory", "memory.limit_in_bytes"));
            if (memsw) Assert.Equal("134217728", R("memory", "memory.memsw.limit_in_bytes"));
            Assert.Equal("33554432", R("memory", "memory.soft_limit_in_bytes"));
            Assert.Equal("32", R("pids", "pids.max"));
            Assert.Equal("512", R("cpu", "cpu.shares"));
            Assert.Equal("50000", R("cpu", "cpu.cfs_quota_us"));
            Assert.Equal("100000", R("cpu", "cpu.cfs_period_us"));
            if (cg.HostPaths.ContainsKey("cpuset"))
                Assert.NotEqual("", R("cpuset", "cpuset.cpus")); // copied down from the parent

            // Lowering memory below memory+swap needs the right write order.
            if (memsw)
            {
                cg.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = 16L << 20, Swap = 32L << 20 } });
                Assert.Equal("16777216", R("memory", "memory.limit_in_bytes"));
                Assert.Equal("33554432", R("memory", "memory.memsw.limit_in_bytes"));
                cg.Apply(new LinuxResources { Memory = new LinuxMemory { Limit = 64L << 20, Swap = 128L << 20 } });
                Assert.Equal("67108864", R("memory", "memory.limit_in_bytes"));
            }

            // A shell that waits for a line, burns some CPU, then becomes `sleep`: its work is charged to our cgroup.
            proc = Process.Start(new ProcessStartInfo("/bin/sh", ["-c", "read x; i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; exec sleep 60"])
            {
                RedirectStandardInput = true,
                UseShellExecute = false,
            })!;
            cg.AddProcess(proc.Id);
            Assert.Contains(proc.Id, cg.Processes());
            proc.StandardInput.WriteLine("go");
            proc.StandardInput.Flush();
            WaitUntil(() => File.ReadAllText($"/proc/{proc.Id}/comm").Trim() == "sleep", "the shell to exec sleep");
            Assert.Equal([proc.Id], cg.Processes());

            cg.Freeze();
            Assert.Equal(FreezerState.Frozen, cg.FreezerState);
            Assert.StartsWith("D", ProcState(proc.Id)); // v1 freezer: frozen tasks show as D
            cg.Thaw();
            Assert.Equal(FreezerState.Thawed, cg.FreezerState);
            WaitUntil(() => ProcState(proc.Id).StartsWith('S'), "the process to sleep again");

            var stats = cg.Stats();
            Assert.True(stats.Cpu.Usage.Total > 0, "cpu usage");
            Assert.True(stats.Memory.Usage.Usage > 0, "memory usage");
            Assert.Equal(67108864UL, stats.Memory.Usage.Limit);
            Assert.NotNull(stats.Memory.Raw);
            Assert.Equal(1UL, stats.Pids.Current);
            Assert.Equal(32UL, stats.Pids.Limit);
            var json = JsonSerializer.Serialize(stats, CgroupStatsJsonContext.Default.CgroupStats);
            Assert.Contains("\"pids\":{\"current\":1,\"limit\":32}", json);

            proc.Kill();
            proc.WaitForExit();
            WaitUntil(() => cg.Processes().Count == 0, "the cgroup to empty");
            cg.Destroy();
            Assert.False(cg.Exists);
            foreach (var dir in cg.HostPaths.Values) Assert.False(Directory.Exists(dir), dir);
        }
        finally
        {
            Cleanup(cg, proc);
        }
    }

    [Fact]
    public void Devices_AreAppliedInOrder()
    {
        var layout = RequireV1Root();
        Assert.SkipUnless(layout.V1.ContainsKey("devices"), "no devices hierarchy");
        var cg = Cgroup.Open(layout, NewPath());
        try
        {
            cg.Create();
            cg.Apply(new LinuxResources
            {
                Devices =
                [
                    new() { Allow = false, Access = "rwm" },
                    new() { Allow = true, Type = "c", Major = 1, Minor = 3, Access = "rwm" },
                    new() { Allow = true, Type = "c", Major = 1, Minor = 5, Access = "rw" },
                    new() { Allow = false, Type = "c", Major = 1, Minor = 5, Access = "w" },
                ],
            });
            var list = File.ReadAllLines(Path.Combine(cg.HostPaths["devices"], "devices.list"));
            Assert.Equal(["c 1:3 rwm", "c 1:5 r"], list);
        }
        finally
        {
            Cleanup(cg, null);
        }
    }

    [Fact]
    public void Freeze_EmptyCgroup_AndDestroyTwice()
    {
        var layout = RequireV1Root();
        var cg = Cgroup.Open(layout, NewPath() + "/nested");
        try
        {
            cg.Create();
            cg.Freeze();
            Assert.Equal(FreezerState.Frozen, cg.FreezerState);
            cg.Thaw();
            Assert.Empty(cg.Processes());
            cg.Destroy();
            cg.Destroy();
            Assert.False(cg.Exists);
        }
        finally
        {
            Cleanup(cg, null);
            // the parent /vessel-test-cg-* directory was created by mkdir -p; remove it too
            var parent = Cgroup.Open(layout, cg.CgroupsPath[..cg.CgroupsPath.LastIndexOf('/')]);
            parent.Destroy();
            Assert.False(parent.Exists);
        }
    }

    static void Cleanup(Cgroup cg, Process? proc)
    {
        try { if (cg.FreezerState != FreezerState.Thawed && cg.Exists) cg.Thaw(); } catch (CgroupException) { }
        if (proc is not null)
        {
            try { if (!proc.HasExited) proc.Kill(); proc.WaitForExit(5000); } catch (InvalidOperationException) { }
            proc.Dispose();
        }
        for (int i = 0; i < 50 && cg.Exists && cg.Processes().Count > 0; i++) Thread.Sleep(20);
        cg.Destroy();
    }
}
