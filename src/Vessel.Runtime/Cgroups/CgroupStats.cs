using System.Text.Json.Serialization;

namespace Vessel.Runtime.Cgroups;

// Shaped after runc's types.Stats (github.com/opencontainers/runc/types/events.go), which is what
// `runc events --stats` prints as the "data" of a {"type":"stats"} event. Property names and
// omit-when-zero behaviour follow its json tags. Nested objects are always written (Go's omitempty
// never drops a struct). Fields that runc's JSON does not have are [JsonIgnore]d conveniences.

/// <summary>A snapshot of a cgroup's usage counters, serializable as runc's <c>types.Stats</c>.</summary>
public sealed record CgroupStats
{
    [JsonPropertyName("cpu")] public CpuStats Cpu { get; set; } = new();
    [JsonPropertyName("cpuset")] public CpuSetStats CpuSet { get; set; } = new();
    [JsonPropertyName("memory")] public MemoryStats Memory { get; set; } = new();
    [JsonPropertyName("pids")] public PidsStats Pids { get; set; } = new();
    [JsonPropertyName("blkio")] public BlkioStats Blkio { get; set; } = new();
    /// <summary>Page size ("2MB") → usage.</summary>
    [JsonPropertyName("hugetlb")] public Dictionary<string, HugetlbStats> Hugetlb { get; set; } = [];
}

public sealed record CpuStats
{
    [JsonPropertyName("usage")] public CpuUsage Usage { get; set; } = new();
    [JsonPropertyName("throttling")] public ThrottlingStats Throttling { get; set; } = new();
}

/// <summary>CPU time in nanoseconds.</summary>
public sealed record CpuUsage
{
    [JsonPropertyName("total"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Total { get; set; }
    [JsonPropertyName("percpu"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<ulong>? Percpu { get; set; }
    [JsonPropertyName("percpu_kernel"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<ulong>? PercpuKernel { get; set; }
    [JsonPropertyName("percpu_user"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<ulong>? PercpuUser { get; set; }
    [JsonPropertyName("kernel")] public ulong Kernel { get; set; }
    [JsonPropertyName("user")] public ulong User { get; set; }
}

public sealed record ThrottlingStats
{
    [JsonPropertyName("periods"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Periods { get; set; }
    [JsonPropertyName("throttledPeriods"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong ThrottledPeriods { get; set; }
    /// <summary>Nanoseconds.</summary>
    [JsonPropertyName("throttledTime"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong ThrottledTime { get; set; }
}

public sealed record CpuSetStats
{
    [JsonPropertyName("cpus"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<ushort>? Cpus { get; set; }
    [JsonPropertyName("cpu_exclusive")] public ulong CpuExclusive { get; set; }
    [JsonPropertyName("mems"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<ushort>? Mems { get; set; }
    [JsonPropertyName("mem_hardwall")] public ulong MemHardwall { get; set; }
    [JsonPropertyName("mem_exclusive")] public ulong MemExclusive { get; set; }
    [JsonPropertyName("memory_migrate")] public ulong MemoryMigrate { get; set; }
    [JsonPropertyName("memory_spread_page")] public ulong MemorySpreadPage { get; set; }
    [JsonPropertyName("memory_spread_slab")] public ulong MemorySpreadSlab { get; set; }
    [JsonPropertyName("memory_pressure")] public ulong MemoryPressure { get; set; }
    [JsonPropertyName("sched_load_balance")] public ulong SchedLoadBalance { get; set; }
    [JsonPropertyName("sched_relax_domain_level")] public long SchedRelaxDomainLevel { get; set; }
}

/// <summary>Usage counters of one memory kind. <see cref="Limit"/> is ulong.MaxValue when unlimited on v2.</summary>
public sealed record MemoryEntry
{
    [JsonPropertyName("limit")] public ulong Limit { get; set; }
    [JsonPropertyName("usage"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Usage { get; set; }
    [JsonPropertyName("max"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Max { get; set; }
    [JsonPropertyName("failcnt")] public ulong Failcnt { get; set; }
}

public sealed record MemoryStats
{
    /// <summary>Page cache bytes (v1 memory.stat "cache", v2 "file").</summary>
    [JsonPropertyName("cache"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Cache { get; set; }
    [JsonPropertyName("usage")] public MemoryEntry Usage { get; set; } = new();
    /// <summary>memory+swap, as in v1 (on v2 the memory figures are added to memory.swap.* like runc does).</summary>
    [JsonPropertyName("swap")] public MemoryEntry Swap { get; set; } = new();
    [JsonPropertyName("kernel")] public MemoryEntry Kernel { get; set; } = new();
    [JsonPropertyName("kernelTCP")] public MemoryEntry KernelTCP { get; set; } = new();
    /// <summary>memory.stat verbatim.</summary>
    [JsonPropertyName("raw"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public Dictionary<string, ulong>? Raw { get; set; }

    /// <summary>Anonymous memory bytes (v1 "rss", v2 "anon"). Not in runc's JSON.</summary>
    [JsonIgnore] public ulong Rss { get; set; }
    /// <summary>Number of processes killed by the OOM killer in this cgroup (v1 memory.oom_control oom_kill,
    /// v2 memory.events oom_kill). Not in runc's stats JSON (runc reports OOMs as separate "oom" events).</summary>
    [JsonIgnore] public ulong OomKillCount { get; set; }
}

public sealed record PidsStats
{
    [JsonPropertyName("current"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Current { get; set; }
    /// <summary>ulong.MaxValue when unlimited ("max").</summary>
    [JsonPropertyName("limit"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Limit { get; set; }
}

public sealed record BlkioEntry
{
    [JsonPropertyName("major"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Major { get; set; }
    [JsonPropertyName("minor"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Minor { get; set; }
    /// <summary>"Read", "Write", "Sync", "Async", "Discard", "Total".</summary>
    [JsonPropertyName("op"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public string? Op { get; set; }
    [JsonPropertyName("value"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Value { get; set; }
}

public sealed record BlkioStats
{
    [JsonPropertyName("ioServiceBytesRecursive"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<BlkioEntry>? IoServiceBytesRecursive { get; set; }
    [JsonPropertyName("ioServicedRecursive"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<BlkioEntry>? IoServicedRecursive { get; set; }
    [JsonPropertyName("ioQueueRecursive"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<BlkioEntry>? IoQueuedRecursive { get; set; }
    [JsonPropertyName("ioServiceTimeRecursive"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<BlkioEntry>? IoServiceTimeRecursive { get; set; }
    [JsonPropertyName("ioWaitTimeRecursive"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<BlkioEntry>? IoWaitTimeRecursive { get; set; }
    [JsonPropertyName("ioMergedRecursive"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<BlkioEntry>? IoMergedRecursive { get; set; }
    [JsonPropertyName("ioTimeRecursive"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<BlkioEntry>? IoTimeRecursive { get; set; }
    [JsonPropertyName("sectorsRecursive"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] public List<BlkioEntry>? SectorsRecursive { get; set; }
}

public sealed record HugetlbStats
{
    [JsonPropertyName("usage"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Usage { get; set; }
    [JsonPropertyName("max"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingDefault)] public ulong Max { get; set; }
    [JsonPropertyName("failcnt")] public ulong Failcnt { get; set; }
}

/// <summary>Source-generated (AOT-safe) serializer for <see cref="CgroupStats"/>; the runtime may use its own context too.</summary>
[JsonSerializable(typeof(CgroupStats))]
public sealed partial class CgroupStatsJsonContext : JsonSerializerContext;
