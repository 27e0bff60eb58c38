using System.Globalization;
using Vessel.Runtime.Spec;

namespace Vessel.Runtime.Cgroups;

/// <summary>cgroup v2 (unified): one directory. Device rules are not applied (v2 device control needs an eBPF
/// program attached to the cgroup — documented no-op); network classid/priorities, swappiness, disableOOMKiller,
/// useHierarchy and kernel memory have no v2 equivalent and are ignored, like runc.</summary>
public sealed class CgroupV2 : Cgroup
{
    readonly string _dir;
    readonly CgroupHierarchy _h;

    internal CgroupV2(CgroupLayout layout, string cgroupsPath) : base(layout, cgroupsPath)
    {
        _h = layout.Unified ?? throw new CgroupException("no cgroup2 hierarchy is mounted");
        layout.OwnCgroups.TryGetValue("", out var own);
        _dir = HostDir(_h, own, cgroupsPath);
    }

    /// <summary>The cgroup's directory on the host.</summary>
    public string Dir => _dir;
    public override IReadOnlyDictionary<string, string> HostPaths => new Dictionary<string, string> { [""] = _dir };
    public override bool Exists => Directory.Exists(_dir);

    public override void Create() => CreateUnified(_h.MountPoint, _dir, _ => true);

    /// <summary>mkdir -p <paramref name="dir"/> under <paramref name="mountPoint"/>, enabling in each ancestor's
    /// cgroup.subtree_control every controller it offers (cgroup.controllers) that <paramref name="wanted"/> accepts.
    /// The leaf itself gets no subtree_control (processes live there: no-internal-process rule).</summary>
    internal static void CreateUnified(string mountPoint, string dir, Func<string, bool> wanted)
    {
        var rel = Path.GetRelativePath(mountPoint, dir);
        var current = mountPoint;
        if (rel != ".")
            foreach (var part in rel.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                EnableControllers(current, wanted);
                current = Path.Combine(current, part);
                Directory.CreateDirectory(current);
            }
    }

    /// <summary>Enables the <paramref name="wanted"/> controllers in every ancestor of an existing <paramref name="dir"/>.</summary>
    internal static void EnableInAncestors(string mountPoint, string dir, Func<string, bool> wanted)
    {
        var rel = Path.GetRelativePath(mountPoint, dir);
        var current = mountPoint;
        if (rel != ".")
            foreach (var part in rel.Split('/', StringSplitOptions.RemoveEmptyEntries))
            {
                EnableControllers(current, wanted);
                current = Path.Combine(current, part);
            }
    }

    static void EnableControllers(string parent, Func<string, bool> wanted)
    {
        var available = CgroupFs.TryRead(Path.Combine(parent, "cgroup.controllers"))?
            .Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries) ?? [];
        var enabled = (CgroupFs.TryRead(Path.Combine(parent, "cgroup.subtree_control")) ?? "")
            .Split([' ', '\n'], StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        var need = available.Where(c => !enabled.Contains(c) && wanted(c)).ToList();
        if (need.Count == 0) return;
        var file = Path.Combine(parent, "cgroup.subtree_control");
        if (CgroupFs.TryWrite(file, string.Join(' ', need.Select(c => "+" + c))) == 0) return;
        // Some controller refused (e.g. cpu with realtime processes around, or the parent has processes):
        // enable what can be enabled, one by one; Apply reports a missing interface file if it matters.
        foreach (var c in need) CgroupFs.TryWrite(file, "+" + c);
    }

    string F(string name) => Path.Combine(_dir, name);
    bool Has(string name) => File.Exists(F(name));
    void W(string name, string value) => CgroupFs.Write(F(name), value);
    static string S(long v) => v.ToString(CultureInfo.InvariantCulture);
    static string S(ulong v) => v.ToString(CultureInfo.InvariantCulture);

    public override void Apply(LinuxResources r)
    {
        ArgumentNullException.ThrowIfNull(r);
        if (r.Cpu is { } cpu)
        {
            if (cpu.RealtimeRuntime is not null and not 0 || cpu.RealtimePeriod is not null and not 0)
                throw new SpecException("linux.resources.cpu.realtimeRuntime", "realtime scheduling limits are not supported on cgroup v2");
            if (cpu.Shares is { } shares and not 0) W("cpu.weight", S(ConvertSharesToWeight(shares)));
            if (cpu.Quota is not null and not 0 || cpu.Period is not null and not 0)
            {
                var quota = cpu.Quota is { } q and > 0 ? S(q) : "max";
                if (cpu.Quota is < -1) throw new SpecException("linux.resources.cpu.quota", $"invalid value {cpu.Quota}");
                W("cpu.max", cpu.Period is { } p and not 0 ? $"{quota} {S(p)}" : quota);
            }
            if (cpu.Burst is { } burst) W("cpu.max.burst", S(burst));
            if (cpu.Idle is { } idle) W("cpu.idle", S(idle));
            if (!string.IsNullOrEmpty(cpu.Cpus)) W("cpuset.cpus", cpu.Cpus);
            if (!string.IsNullOrEmpty(cpu.Mems)) W("cpuset.mems", cpu.Mems);
        }
        if (r.Memory is { } mem)
        {
            var swap = ConvertSwapToV2(mem.Swap, mem.Limit);
            if (swap is { } sw)
            {
                // spec swap == limit means "no swap": 0.
                var value = sw == -1 ? "max" : S(sw);
                if (Has("memory.swap.max")) W("memory.swap.max", value);
                else if (sw != -1) throw new CgroupException($"cannot limit swap: {F("memory.swap.max")} does not exist (swap accounting disabled?)", F("memory.swap.max"), CgroupFs.ENOENT);
            }
            if (mem.Limit is { } limit and not 0)
            {
                if (limit < -1) throw new SpecException("linux.resources.memory.limit", $"invalid value {limit}");
                if (mem.CheckBeforeUpdate == true && limit > 0
                    && CgroupFs.TryReadUInt64(F("memory.current")) is { } current && current > (ulong)limit)
                    throw new CgroupException($"rejecting memory limit {limit}: less than current usage {current}", F("memory.max"));
                W("memory.max", limit == -1 ? "max" : S(limit));
            }
            if (mem.Reservation is { } res and not 0) W("memory.low", res == -1 ? "max" : S(res));
        }
        if (r.Pids is { Limit: { } pl }) W("pids.max", pl > 0 ? S(pl) : "max");
        if (r.BlockIO is { } bio)
        {
            if (bio.Weight is { } w and not 0)
            {
                if (Has("io.bfq.weight")) W("io.bfq.weight", S((ulong)w));
                else if (Has("io.weight")) W("io.weight", S(ConvertBlkioWeightToIoWeight(w)));
            }
            if (bio.WeightDevice is { } wds && Has("io.bfq.weight"))
                foreach (var wd in wds)
                    if (wd.Weight is { } dw) W("io.bfq.weight", $"{wd.Major}:{wd.Minor} {dw}");
            Throttle(bio.ThrottleReadBpsDevice, "rbps");
            Throttle(bio.ThrottleWriteBpsDevice, "wbps");
            Throttle(bio.ThrottleReadIOPSDevice, "riops");
            Throttle(bio.ThrottleWriteIOPSDevice, "wiops");
        }
        if (r.HugepageLimits is { } hps)
            foreach (var hp in hps) W($"hugetlb.{ValidPageSize(hp.PageSize)}.max", S(hp.Limit));
        // r.Devices: no-op on v2 (needs an eBPF device program; not implemented). r.Network: no v2 controller.
        if (r.Unified is { } unified)
            foreach (var (key, value) in unified)
            {
                ValidateUnifiedKey(key);
                if (!Has(key))
                    throw new CgroupException($"linux.resources.unified[\"{key}\"]: {F(key)} does not exist (controller not enabled or unknown file)", F(key), CgroupFs.ENOENT);
                W(key, value);
            }

        void Throttle(List<LinuxThrottleDevice>? list, string key)
        {
            if (list is null) return;
            foreach (var d in list) W("io.max", $"{d.Major}:{d.Minor} {key}={(d.Rate == 0 ? "max" : S(d.Rate))}");
        }
    }

    internal static string ValidPageSize(string size)
    {
        if (string.IsNullOrEmpty(size) || size.Contains('/') || size.Contains(".."))
            throw new SpecException("linux.resources.hugepageLimits.pageSize", $"invalid page size \"{size}\"");
        return size;
    }

    internal static void ValidateUnifiedKey(string key)
    {
        if (string.IsNullOrEmpty(key) || key.Contains('/') || key is "." or ".." || !key.Contains('.'))
            throw new SpecException($"linux.resources.unified[\"{key}\"]", "must be a cgroup file name such as memory.high");
        if (key is "cgroup.procs" or "cgroup.threads" or "cgroup.subtree_control")
            throw new SpecException($"linux.resources.unified[\"{key}\"]", "this file is managed by the runtime");
    }

    public override void AddProcess(int pid) => W("cgroup.procs", pid.ToString(CultureInfo.InvariantCulture));

    public override IReadOnlyList<int> Processes() => ReadPidsRecursive(_dir);

    public override void Freeze() => SetFrozen(true);
    public override void Thaw() => SetFrozen(false);

    void SetFrozen(bool frozen)
    {
        if (!Has("cgroup.freeze")) throw new CgroupException($"cannot {(frozen ? "freeze" : "thaw")}: {F("cgroup.freeze")} does not exist", F("cgroup.freeze"), CgroupFs.ENOENT);
        W("cgroup.freeze", frozen ? "1" : "0");
        if (WaitFor(() => EventsFrozen() == frozen)) return;
        if (frozen) CgroupFs.TryWrite(F("cgroup.freeze"), "0");
        throw new CgroupException($"timed out after {FreezeTimeout.TotalSeconds:0.#}s waiting for {_dir} to become {(frozen ? "frozen" : "thawed")}", F("cgroup.events"));
    }

    bool? EventsFrozen()
    {
        var ev = ParseFlatKeyed(CgroupFs.TryRead(F("cgroup.events")));
        return ev.TryGetValue("frozen", out var v) ? v == 1 : null;
    }

    public override FreezerState FreezerState
    {
        get
        {
            var want = CgroupFs.TryRead(F("cgroup.freeze"))?.Trim();
            if (want is null) return FreezerState.Undefined;
            if (want != "1") return FreezerState.Thawed;
            return EventsFrozen() == true ? FreezerState.Frozen : FreezerState.Freezing;
        }
    }

    public override CgroupStats Stats() => ReadStats(_dir);

    /// <summary>Reads v2 statistics from the cgroup directory <paramref name="dir"/>.</summary>
    internal static CgroupStats ReadStats(string dir)
    {
        string F(string n) => Path.Combine(dir, n);
        var st = new CgroupStats();
        {
            var c = ParseFlatKeyed(CgroupFs.TryRead(F("cpu.stat")));
            st.Cpu.Usage.Total = Get(c, "usage_usec") * 1000;
            st.Cpu.Usage.User = Get(c, "user_usec") * 1000;
            st.Cpu.Usage.Kernel = Get(c, "system_usec") * 1000;
            st.Cpu.Throttling.Periods = Get(c, "nr_periods");
            st.Cpu.Throttling.ThrottledPeriods = Get(c, "nr_throttled");
            st.Cpu.Throttling.ThrottledTime = Get(c, "throttled_usec") * 1000;
            st.CpuSet.Cpus = ParseCpuList(CgroupFs.TryRead(F("cpuset.cpus.effective")));
            st.CpuSet.Mems = ParseCpuList(CgroupFs.TryRead(F("cpuset.mems.effective")));
        }
        {
            var m = st.Memory;
            if (File.Exists(F("memory.stat"))) m.Raw = ParseFlatKeyed(CgroupFs.TryRead(F("memory.stat")));
            var raw = m.Raw ?? [];
            m.Cache = Get(raw, "file");
            m.Rss = Get(raw, "anon");
            m.Usage.Usage = CgroupFs.TryReadUInt64(F("memory.current")) ?? 0;
            m.Usage.Max = CgroupFs.TryReadUInt64(F("memory.peak")) ?? 0;
            m.Usage.Limit = CgroupFs.TryReadUInt64(F("memory.max")) ?? 0;
            var ev = ParseFlatKeyed(CgroupFs.TryRead(F("memory.events")));
            m.Usage.Failcnt = Get(ev, "max");
            m.OomKillCount = Get(ev, "oom_kill");
            if (File.Exists(F("memory.swap.current")))
            {
                // As runc: report memory+swap like v1 does.
                m.Swap.Usage = (CgroupFs.TryReadUInt64(F("memory.swap.current")) ?? 0) + m.Usage.Usage;
                m.Swap.Max = CgroupFs.TryReadUInt64(F("memory.swap.peak")) is { } sp ? sp + m.Usage.Max : 0;
                var swapLimit = CgroupFs.TryReadUInt64(F("memory.swap.max")) ?? 0;
                m.Swap.Limit = swapLimit == ulong.MaxValue || m.Usage.Limit == ulong.MaxValue ? ulong.MaxValue : swapLimit + m.Usage.Limit;
                m.Swap.Failcnt = Get(ParseFlatKeyed(CgroupFs.TryRead(F("memory.swap.events"))), "max");
            }
            m.Kernel.Usage = Get(raw, "kernel");
            m.KernelTCP.Usage = Get(raw, "sock");
        }
        {
            st.Pids.Current = CgroupFs.TryReadUInt64(F("pids.current")) ?? 0;
            st.Pids.Limit = CgroupFs.TryReadUInt64(F("pids.max")) ?? 0;
            ParseIoStat(CgroupFs.TryRead(F("io.stat")), st.Blkio);
        }
        ReadHugetlb(dir, st.Hugetlb);
        return st;
    }

    internal static void ReadHugetlb(string dir, Dictionary<string, HugetlbStats> into)
    {
        if (!Directory.Exists(dir)) return;
        foreach (var path in Directory.EnumerateFiles(dir, "hugetlb.*.current"))
        {
            var name = Path.GetFileName(path);
            var size = name["hugetlb.".Length..^".current".Length];
            if (size.Contains('.')) continue; // hugetlb.2MB.rsvd.current
            into[size] = new HugetlbStats
            {
                Usage = CgroupFs.TryReadUInt64(path) ?? 0,
                Max = CgroupFs.TryReadUInt64(Path.Combine(dir, $"hugetlb.{size}.max")) is { } mx && mx != ulong.MaxValue ? mx : 0,
                Failcnt = Get(ParseFlatKeyed(CgroupFs.TryRead(Path.Combine(dir, $"hugetlb.{size}.events"))), "max"),
            };
        }
    }

    /// <summary>io.stat lines "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" → runc's blkio entries.</summary>
    internal static void ParseIoStat(string? text, BlkioStats into)
    {
        if (text is null) return;
        var bytes = new List<BlkioEntry>();
        var ios = new List<BlkioEntry>();
        foreach (var line in text.Split('\n'))
        {
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 2) continue;
            var mm = f[0].Split(':');
            if (mm.Length != 2 || !ulong.TryParse(mm[0], out var major) || !ulong.TryParse(mm[1], out var minor)) continue;
            foreach (var kv in f.Skip(1))
            {
                var eq = kv.IndexOf('=');
                if (eq < 0 || !ulong.TryParse(kv[(eq + 1)..], out var v)) continue;
                var (list, op) = kv[..eq] switch
                {
                    "rbytes" => (bytes, "Read"),
                    "wbytes" => (bytes, "Write"),
                    "dbytes" => (bytes, "Discard"),
                    "rios" => (ios, "Read"),
                    "wios" => (ios, "Write"),
                    "dios" => (ios, "Discard"),
                    _ => (null, ""),
                };
                list?.Add(new BlkioEntry { Major = major, Minor = minor, Op = op, Value = v });
            }
        }
        into.IoServiceBytesRecursive = bytes;
        into.IoServicedRecursive = ios;
    }

    public override void Destroy() => RemoveTree(_dir);
}
