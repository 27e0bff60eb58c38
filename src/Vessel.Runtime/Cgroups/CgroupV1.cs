using System.Globalization;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Cgroups;

/// <summary>cgroup v1 (and hybrid): one leaf directory per mounted hierarchy. On a hybrid host the cgroup2 tree
/// gets a leaf too (membership; plus hugetlb if only cgroup2 offers it). A controller that is not mounted is skipped,
/// like runc. <c>unified</c> must be empty. Kernel memory limits are ignored (the kernel dropped them).</summary>
public sealed class CgroupV1 : Cgroup
{
    /// <summary>Hierarchy → leaf dir (v1 hierarchies only).</summary>
    readonly List<(CgroupHierarchy H, string Dir)> _dirs = [];
    /// <summary>Controller → leaf dir.</summary>
    readonly Dictionary<string, string> _byController = new(StringComparer.Ordinal);
    /// <summary>cgroup2 leaf on a hybrid host.</summary>
    readonly string? _unifiedDir;
    readonly string _primary;

    internal CgroupV1(CgroupLayout layout, string cgroupsPath) : base(layout, cgroupsPath)
    {
        foreach (var h in layout.Hierarchies)
        {
            if (h.IsUnified) continue;
            string? own = null;
            foreach (var c in h.Controllers)
                if (layout.OwnCgroups.TryGetValue(c, out own)) break;
            var dir = HostDir(h, own, cgroupsPath);
            _dirs.Add((h, dir));
            foreach (var c in h.Controllers) _byController.TryAdd(c, dir);
        }
        if (layout.Mode == CgroupMode.Hybrid && layout.Unified is { } u)
        {
            layout.OwnCgroups.TryGetValue("", out var own);
            _unifiedDir = HostDir(u, own, cgroupsPath);
        }
        _primary = Ctl("freezer") ?? Ctl("pids") ?? Ctl("memory") ?? Ctl("cpu") ?? Ctl("devices") ?? _dirs[0].Dir;
    }

    string? Ctl(string controller) => _byController.TryGetValue(controller, out var d) ? d : null;

    public override IReadOnlyDictionary<string, string> HostPaths
    {
        get
        {
            var d = new Dictionary<string, string>(_byController, StringComparer.Ordinal);
            if (_unifiedDir is not null) d[""] = _unifiedDir;
            return d;
        }
    }

    public override bool Exists => Directory.Exists(_primary);


    public override void Create()
    {
        foreach (var (h, dir) in _dirs)
        {
            if (!h.Controllers.Contains("cpuset")) { Directory.CreateDirectory(dir); continue; }
            // cpuset: a new cgroup starts with empty cpus/mems and refuses tasks; copy the parent's values down.
            var current = h.MountPoint;
            var rel = Path.GetRelativePath(h.MountPoint, dir);
            if (rel == ".") continue;
            foreach (var part in rel.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                var parent = current;
                current = Path.Combine(current, part);
                Directory.CreateDirectory(current);
                foreach (var file in (string[])["cpuset.cpus", "cpuset.mems"])
                {
                    var mine = CgroupFs.TryRead(Path.Combine(current, file));
                    if (mine is null || mine.Trim().Length > 0) continue;
                    var theirs = CgroupFs.TryRead(Path.Combine(parent, file))?.Trim();
                    if (!string.IsNullOrEmpty(theirs)) CgroupFs.Write(Path.Combine(current, file), theirs);
                }
            }
        }
        // Hybrid: the cgroup2 leaf is for membership; controllers only cgroup2 offers are enabled on demand in Apply.
        if (_unifiedDir is not null) Directory.CreateDirectory(_unifiedDir);
    }

    static string S(long v) => v.ToString(CultureInfo.InvariantCulture);
    static string S(ulong v) => v.ToString(CultureInfo.InvariantCulture);
    static void W(string dir, string file, string value) => CgroupFs.Write(Path.Combine(dir, file), value);
    static bool Has(string dir, string file) => File.Exists(Path.Combine(dir, file));

    public override void Apply(LinuxResources r)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (r.Unified is { Count: > 0 })
            throw new SpecException("linux.resources.unified", "requires cgroup v2, but this host uses cgroup v1");
        ValidateDevices(r.Devices);

        if (r.Cpu is { } cpu)
        {
            if (Ctl("cpuset") is { } cs)
            {
                if (!string.IsNullOrEmpty(cpu.Cpus)) W(cs, "cpuset.cpus", cpu.Cpus);
                if (!string.IsNullOrEmpty(cpu.Mems)) W(cs, "cpuset.mems", cpu.Mems);
            }
            if (Ctl("cpu") is { } d) ApplyCpu(d, cpu);
        }
        if (r.Memory is { } mem && Ctl("memory") is { } md) ApplyMemory(md, mem);
        if (r.Pids is { Limit: { } pl } && Ctl("pids") is { } pd) W(pd, "pids.max", pl > 0 ? S(pl) : "max");
        if (r.BlockIO is { } bio && Ctl("blkio") is { } bd) ApplyBlkio(bd, bio);
        if (r.HugepageLimits is { } hps)
            foreach (var hp in hps)
            {
                var size = CgroupV2.ValidPageSize(hp.PageSize);
                if (Ctl("hugetlb") is { } hd) W(hd, $"hugetlb.{size}.limit_in_bytes", S(hp.Limit));
                else if (_unifiedDir is not null && Layout.Unified is { } u && Layout.UnifiedControllers.Contains("hugetlb"))
                {
                    // Hybrid host where hugetlb is only on the cgroup2 side.
                    CgroupV2.EnableInAncestors(u.MountPoint, _unifiedDir, c => c == "hugetlb");
                    if (Has(_unifiedDir, $"hugetlb.{size}.max")) W(_unifiedDir, $"hugetlb.{size}.max", S(hp.Limit));
                }
            }
        if (r.Network is { } net)
        {
            if (net.ClassID is { } id && Ctl("net_cls") is { } nc) W(nc, "net_cls.classid", S((ulong)id));
            if (net.Priorities is { } prios && Ctl("net_prio") is { } np)
                foreach (var p in prios) W(np, "net_prio.ifpriomap", $"{p.Name} {p.Priority}");
        }
        if (r.Devices is { } devs && Ctl("devices") is { } dd)
            foreach (var rule in devs)
                W(dd, rule.Allow ? "devices.allow" : "devices.deny", DeviceRule(rule));
    }

    void ApplyCpu(string d, LinuxCpu cpu)
    {
        if (cpu.Shares is { } shares and not 0) W(d, "cpu.shares", S(shares));
        // A smaller period can be refused (EINVAL) while the old quota is in place; then set the quota and retry.
        bool retryPeriod = false;
        if (cpu.Period is { } period and not 0)
        {
            int err = CgroupFs.TryWriteObserved(Path.Combine(d, "cpu.cfs_period_us"), S(period));
            if (err == CgroupFs.EINVAL && cpu.Quota is not null and not 0) retryPeriod = true;
            else if (err != 0) throw new CgroupException($"write \"{period}\" to {Path.Combine(d, "cpu.cfs_period_us")}: {CgroupFs.Describe(err)}", Path.Combine(d, "cpu.cfs_period_us"), err);
        }
        if (cpu.Quota is { } quota and not 0)
        {
            if (quota < -1) throw new SpecException("linux.resources.cpu.quota", $"invalid value {quota}");
            W(d, "cpu.cfs_quota_us", S(quota));
            if (retryPeriod) W(d, "cpu.cfs_period_us", S(cpu.Period!.Value));
        }
        if (cpu.Burst is { } burst) W(d, "cpu.cfs_burst_us", S(burst));
        if (cpu.RealtimePeriod is { } rtp and not 0) W(d, "cpu.rt_period_us", S(rtp));
        if (cpu.RealtimeRuntime is { } rtr and not 0) W(d, "cpu.rt_runtime_us", S(rtr));
        if (cpu.Idle is { } idle) W(d, "cpu.idle", S(idle));
    }

    void ApplyMemory(string d, LinuxMemory mem)
    {
        long limit = mem.Limit ?? 0, swap = mem.Swap ?? 0;
        if (limit < -1) throw new SpecException("linux.resources.memory.limit", $"invalid value {limit}");
        if (swap < -1) throw new SpecException("linux.resources.memory.swap", $"invalid value {swap}");
        if (limit == -1 && swap == 0) swap = -1; // "unlimited memory" also lifts the memory+swap limit
        if (swap > 0 && limit > 0 && swap < limit)
            throw new SpecException("linux.resources.memory.swap", $"memory+swap ({swap}) must be >= the memory limit ({limit})");
        bool hasMemsw = Has(d, "memory.memsw.limit_in_bytes");
        if (swap != 0 && !hasMemsw)
        {
            if (swap != -1)
                throw new CgroupException($"cannot limit swap: {Path.Combine(d, "memory.memsw.limit_in_bytes")} does not exist (swap accounting disabled?)", Path.Combine(d, "memory.memsw.limit_in_bytes"), CgroupFs.ENOENT);
            swap = 0;
        }
        if (limit != 0 && swap != 0)
        {
            // The kernel requires memsw >= limit at every step: raise memsw first when going up, lower the limit first when going down.
            var cur = CgroupFs.TryReadUInt64(Path.Combine(d, "memory.limit_in_bytes")) ?? ulong.MaxValue;
            if (swap == -1 || cur < (ulong)swap)
            {
                W(d, "memory.memsw.limit_in_bytes", S(swap));
                W(d, "memory.limit_in_bytes", S(limit));
            }
            else
            {
                W(d, "memory.limit_in_bytes", S(limit));
                W(d, "memory.memsw.limit_in_bytes", S(swap));
            }
        }
        else
        {
            if (limit != 0) W(d, "memory.limit_in_bytes", S(limit));
            if (swap != 0) W(d, "memory.memsw.limit_in_bytes", S(swap));
        }
        if (mem.Reservation is { } res and not 0) W(d, "memory.soft_limit_in_bytes", S(res));
        if (mem.KernelTCP is { } ktcp and not 0 && Has(d, "memory.kmem.tcp.limit_in_bytes")) W(d, "memory.kmem.tcp.limit_in_bytes", S(ktcp));
        if (mem.Swappiness is { } swp)
        {
            if (swp > 100) throw new SpecException("linux.resources.memory.swappiness", $"{swp} is out of range 0-100");
            W(d, "memory.swappiness", S(swp));
        }
        if (mem.DisableOOMKiller == true) W(d, "memory.oom_control", "1");
        if (mem.UseHierarchy is { } uh && Has(d, "memory.use_hierarchy")) W(d, "memory.use_hierarchy", uh ? "1" : "0");
    }

    static void ApplyBlkio(string d, LinuxBlockIo bio)
    {
        // CFQ exposes blkio.weight, BFQ blkio.bfq.weight; with neither (e.g. mq-deadline/none) weights are a no-op.
        string? weightFile = Has(d, "blkio.weight") ? "blkio.weight" : Has(d, "blkio.bfq.weight") ? "blkio.bfq.weight" : null;
        if (bio.Weight is { } w and not 0 && weightFile is not null) W(d, weightFile, S((ulong)w));
        if (bio.LeafWeight is { } lw and not 0 && Has(d, "blkio.leaf_weight")) W(d, "blkio.leaf_weight", S((ulong)lw));
        if (bio.WeightDevice is { } wds)
            foreach (var wd in wds)
            {
                if (wd.Weight is { } dw && weightFile is not null)
                    W(d, weightFile == "blkio.weight" ? "blkio.weight_device" : "blkio.bfq.weight_device", $"{wd.Major}:{wd.Minor} {dw}");
                if (wd.LeafWeight is { } dlw && Has(d, "blkio.leaf_weight_device")) W(d, "blkio.leaf_weight_device", $"{wd.Major}:{wd.Minor} {dlw}");
            }
        Throttle(bio.ThrottleReadBpsDevice, "blkio.throttle.read_bps_device");
        Throttle(bio.ThrottleWriteBpsDevice, "blkio.throttle.write_bps_device");
        Throttle(bio.ThrottleReadIOPSDevice, "blkio.throttle.read_iops_device");
        Throttle(bio.ThrottleWriteIOPSDevice, "blkio.throttle.write_iops_device");

        void Throttle(List<LinuxThrottleDevice>? list, string file)
        {
            if (list is null) return;
            foreach (var t in list) W(d, file, $"{t.Major}:{t.Minor} {t.Rate}");
        }
    }

    static void ValidateDevices(List<LinuxDeviceCgroup>? devices)
    {
        if (devices is null) return;
        for (int i = 0; i < devices.Count; i++)
        {
            var rule = devices[i];
            if (rule.Type is not (null or "" or "a" or "b" or "c"))
                throw new SpecException($"linux.resources.devices[{i}].type", $"\"{rule.Type}\" is not one of a, b, c");
            if (!string.IsNullOrEmpty(rule.Access) && rule.Access.Any(ch => ch is not ('r' or 'w' or 'm')))
                throw new SpecException($"linux.resources.devices[{i}].access", $"\"{rule.Access}\" must be made of r, w, m");
            if (rule.Major is < 0) throw new SpecException($"linux.resources.devices[{i}].major", "must be >= 0 (omit it for any)");
            if (rule.Minor is < 0) throw new SpecException($"linux.resources.devices[{i}].minor", "must be >= 0 (omit it for any)");
        }
    }

    /// <summary>"c 1:3 rwm" / "a *:* rwm".</summary>
    internal static string DeviceRule(LinuxDeviceCgroup rule)
    {
        var type = string.IsNullOrEmpty(rule.Type) ? "a" : rule.Type;
        var major = rule.Major is { } ma ? S(ma) : "*";
        var minor = rule.Minor is { } mi ? S(mi) : "*";
        var access = string.IsNullOrEmpty(rule.Access) ? "rwm" : rule.Access;
        return $"{type} {major}:{minor} {access}";
    }

    public override void AddProcess(int pid)
    {
        var s = pid.ToString(CultureInfo.InvariantCulture);
        foreach (var (_, dir) in _dirs) W(dir, "cgroup.procs", s);
        if (_unifiedDir is not null) W(_unifiedDir, "cgroup.procs", s);
    }

    public override IReadOnlyList<int> Processes() => ReadPidsRecursive(_primary);

    string FreezerDir => Ctl("freezer") ?? throw new CgroupException("the freezer controller is not mounted");

    public override void Freeze()
    {
        var d = FreezerDir;
        W(d, "freezer.state", "FROZEN");
        // The kernel may stay in FREEZING when tasks race (e.g. forking); writing FROZEN again retries.
        if (WaitFor(() => ReadState(d) == FreezerState.Frozen, () => CgroupFs.TryWrite(Path.Combine(d, "freezer.state"), "FROZEN"))) return;
        CgroupFs.TryWrite(Path.Combine(d, "freezer.state"), "THAWED");
        throw new CgroupException($"timed out after {FreezeTimeout.TotalSeconds:0.#}s waiting for {d} to freeze", Path.Combine(d, "freezer.state"));
    }

    public override void Thaw()
    {
        var d = FreezerDir;
        W(d, "freezer.state", "THAWED");
        if (!WaitFor(() => ReadState(d) == FreezerState.Thawed, () => CgroupFs.TryWrite(Path.Combine(d, "freezer.state"), "THAWED")))
            throw new CgroupException($"timed out after {FreezeTimeout.TotalSeconds:0.#}s waiting for {d} to thaw", Path.Combine(d, "freezer.state"));
    }

    public override FreezerState FreezerState => Ctl("freezer") is { } d ? ReadState(d) : FreezerState.Undefined;

    static FreezerState ReadState(string dir) => CgroupFs.TryRead(Path.Combine(dir, "freezer.state"))?.Trim() switch
    {
        "THAWED" => FreezerState.Thawed,
        "FREEZING" => FreezerState.Freezing,
        "FROZEN" => FreezerState.Frozen,
        _ => FreezerState.Undefined,
    };

    public override CgroupStats Stats()
    {
        var st = new CgroupStats();
        if (Ctl("cpuacct") is { } ca) ReadCpuacct(ca, st.Cpu.Usage);
        if (Ctl("cpu") is { } c)
        {
            var cs = ParseFlatKeyed(CgroupFs.TryRead(Path.Combine(c, "cpu.stat")));
            st.Cpu.Throttling.Periods = Get(cs, "nr_periods");
            st.Cpu.Throttling.ThrottledPeriods = Get(cs, "nr_throttled");
            st.Cpu.Throttling.ThrottledTime = Get(cs, "throttled_time");
        }
        if (Ctl("cpuset") is { } cpuset) ReadCpuset(cpuset, st.CpuSet);
        if (Ctl("memory") is { } m) ReadMemory(m, st.Memory);
        if (Ctl("pids") is { } p)
        {
            st.Pids.Current = CgroupFs.TryReadUInt64(Path.Combine(p, "pids.current")) ?? 0;
            st.Pids.Limit = CgroupFs.TryReadUInt64(Path.Combine(p, "pids.max")) ?? 0;
        }
        if (Ctl("blkio") is { } b) ReadBlkio(b, st.Blkio);
        if (Ctl("hugetlb") is { } h) ReadHugetlbV1(h, st.Hugetlb);
        else if (_unifiedDir is not null) CgroupV2.ReadHugetlb(_unifiedDir, st.Hugetlb);
        return st;
    }

    /// <summary>USER_HZ: the unit of cpuacct.stat (100 on every Linux ABI in use).</summary>
    const ulong ClockTicks = 100;

    static void ReadCpuacct(string d, CpuUsage u)
    {
        u.Total = CgroupFs.TryReadUInt64(Path.Combine(d, "cpuacct.usage")) ?? 0;
        var percpu = CgroupFs.TryRead(Path.Combine(d, "cpuacct.usage_percpu"));
        if (percpu is not null)
            u.Percpu = [.. percpu.Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).Select(x => ulong.TryParse(x, out var v) ? v : 0)];
        // cpuacct.usage_all: "cpu user system" header, then one line per CPU, in ns.
        var all = CgroupFs.TryRead(Path.Combine(d, "cpuacct.usage_all"));
        if (all is not null)
        {
            List<ulong> user = [], kernel = [];
            foreach (var line in all.Split('\n').Skip(1))
            {
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length != 3 || !ulong.TryParse(f[1], out var us) || !ulong.TryParse(f[2], out var sy)) continue;
                user.Add(us);
                kernel.Add(sy);
            }
            if (user.Count > 0) { u.PercpuUser = user; u.PercpuKernel = kernel; }
        }
        // cpuacct.stat: "user N" / "system N" in USER_HZ ticks.
        var stat = ParseFlatKeyed(CgroupFs.TryRead(Path.Combine(d, "cpuacct.stat")));
        u.User = Get(stat, "user") * (1_000_000_000 / ClockTicks);
        u.Kernel = Get(stat, "system") * (1_000_000_000 / ClockTicks);
    }

    static void ReadCpuset(string d, CpuSetStats s)
    {
        s.Cpus = ParseCpuList(CgroupFs.TryRead(Path.Combine(d, "cpuset.cpus")));
        s.Mems = ParseCpuList(CgroupFs.TryRead(Path.Combine(d, "cpuset.mems")));
        ulong U(string f) => CgroupFs.TryReadUInt64(Path.Combine(d, f)) ?? 0;
        s.CpuExclusive = U("cpuset.cpu_exclusive");
        s.MemHardwall = U("cpuset.mem_hardwall");
        s.MemExclusive = U("cpuset.mem_exclusive");
        s.MemoryMigrate = U("cpuset.memory_migrate");
        s.MemorySpreadPage = U("cpuset.memory_spread_page");
        s.MemorySpreadSlab = U("cpuset.memory_spread_slab");
        s.MemoryPressure = U("cpuset.memory_pressure");
        s.SchedLoadBalance = U("cpuset.sched_load_balance");
        s.SchedRelaxDomainLevel = long.TryParse(CgroupFs.TryRead(Path.Combine(d, "cpuset.sched_relax_domain_level"))?.Trim(), out var l) ? l : 0;
    }

    static void ReadMemory(string d, MemoryStats m)
    {
        void Entry(MemoryEntry e, string prefix)
        {
            e.Usage = CgroupFs.TryReadUInt64(Path.Combine(d, prefix + "usage_in_bytes")) ?? 0;
            e.Max = CgroupFs.TryReadUInt64(Path.Combine(d, prefix + "max_usage_in_bytes")) ?? 0;
            e.Limit = CgroupFs.TryReadUInt64(Path.Combine(d, prefix + "limit_in_bytes")) ?? 0;
            e.Failcnt = CgroupFs.TryReadUInt64(Path.Combine(d, prefix + "failcnt")) ?? 0;
        }
        Entry(m.Usage, "memory.");
        Entry(m.Swap, "memory.memsw.");
        Entry(m.Kernel, "memory.kmem.");
        Entry(m.KernelTCP, "memory.kmem.tcp.");
        if (CgroupFs.TryRead(Path.Combine(d, "memory.stat")) is { } stat)
        {
            m.Raw = ParseFlatKeyed(stat);
            m.Cache = Get(m.Raw, "cache");
            m.Rss = Get(m.Raw, "rss");
        }
        m.OomKillCount = Get(ParseFlatKeyed(CgroupFs.TryRead(Path.Combine(d, "memory.oom_control"))), "oom_kill");
    }

    static void ReadBlkio(string d, BlkioStats b)
    {
        // CFQ files first, then BFQ, then the throttle policy's (always present) counters, as runc does.
        foreach (var prefix in (string[])["blkio.", "blkio.bfq.", "blkio.throttle."])
        {
            if (!Has(d, prefix + "io_service_bytes_recursive")) continue;
            b.IoServiceBytesRecursive = ParseBlkioFile(Path.Combine(d, prefix + "io_service_bytes_recursive"));
            b.IoServicedRecursive = ParseBlkioFile(Path.Combine(d, prefix + "io_serviced_recursive"));
            if (prefix != "blkio.throttle.")
            {
                b.IoQueuedRecursive = ParseBlkioFile(Path.Combine(d, prefix + "io_queued_recursive"));
                b.IoServiceTimeRecursive = ParseBlkioFile(Path.Combine(d, prefix + "io_service_time_recursive"));
                b.IoWaitTimeRecursive = ParseBlkioFile(Path.Combine(d, prefix + "io_wait_time_recursive"));
                b.IoMergedRecursive = ParseBlkioFile(Path.Combine(d, prefix + "io_merged_recursive"));
                b.IoTimeRecursive = ParseBlkioFile(Path.Combine(d, prefix + "time_recursive"));
                b.SectorsRecursive = ParseBlkioFile(Path.Combine(d, prefix + "sectors_recursive"));
            }
            return;
        }
    }

    static List<BlkioEntry>? ParseBlkioFile(string path) => CgroupFs.TryRead(path) is { } t ? ParseBlkio(t) : null;

    /// <summary>"8:0 Read 4096" / "8:0 4096" lines (the "Total N" line is dropped).</summary>
    internal static List<BlkioEntry> ParseBlkio(string text)
    {
        var list = new List<BlkioEntry>();
        foreach (var line in text.Split('\n'))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 2) continue;
            var mm = f[0].Split(':');
            if (mm.Length != 2 || !ulong.TryParse(mm[0], out var major) || !ulong.TryParse(mm[1], out var minor)) continue;
            if (f.Length == 3 && ulong.TryParse(f[2], out var v))
                list.Add(new BlkioEntry { Major = major, Minor = minor, Op = f[1], Value = v });
            else if (f.Length == 2 && ulong.TryParse(f[1], out v))
                list.Add(new BlkioEntry { Major = major, Minor = minor, Value = v });
        }
        return list;
    }

    static void ReadHugetlbV1(string d, Dictionary<string, HugetlbStats> into)
    {
        foreach (var path in Directory.EnumerateFiles(d, "hugetlb.*.usage_in_bytes"))
        {
            var name = Path.GetFileName(path);
            var size = name["hugetlb.".Length..^".usage_in_bytes".Length];
            if (size.Contains('.')) continue; // hugetlb.2MB.rsvd.usage_in_bytes
            into[size] = new HugetlbStats
            {
                Usage = CgroupFs.TryReadUInt64(path) ?? 0,
                Max = CgroupFs.TryReadUInt64(Path.Combine(d, $"hugetlb.{size}.max_usage_in_bytes")) ?? 0,
                Failcnt = CgroupFs.TryReadUInt64(Path.Combine(d, $"hugetlb.{size}.failcnt")) ?? 0,
            };
        }
    }

    public override void Destroy()
    {
        List<CgroupException> errors = [];
        foreach (var (_, dir) in _dirs)
            try { RemoveTree(dir); } catch (CgroupException e) { errors.Add(e); }
        if (_unifiedDir is not null)
            try { RemoveTree(_unifiedDir); } catch (CgroupException e) { errors.Add(e); }
        if (errors.Count > 0) throw errors[0];
    }
}
