using System.Text.Json.Serialization;

namespace Vessel.Runtime.Spec;

// OCI runtime-spec `linux.resources` (config-linux.md, "Control groups").
// Plain settable properties so System.Text.Json source generation can (de)serialize them.
// A null property means "not set" (Go's nil / omitempty in the reference model).

/// <summary><c>linux.resources</c>: the cgroup limits of a container.</summary>
public sealed class LinuxResources
{
    /// <summary>Device cgroup rules, applied in order (v1 devices.allow/deny; a no-op on cgroup v2, which needs eBPF).</summary>
    [JsonPropertyName("devices")] public List<LinuxDeviceCgroup>? Devices { get; set; }
    [JsonPropertyName("memory")] public LinuxMemory? Memory { get; set; }
    [JsonPropertyName("cpu")] public LinuxCpu? Cpu { get; set; }
    [JsonPropertyName("pids")] public LinuxPids? Pids { get; set; }
    [JsonPropertyName("blockIO")] public LinuxBlockIo? BlockIO { get; set; }
    [JsonPropertyName("hugepageLimits")] public List<LinuxHugepageLimit>? HugepageLimits { get; set; }
    [JsonPropertyName("network")] public LinuxNetwork? Network { get; set; }
    /// <summary>cgroup v2 files written verbatim (key = file name in the container's cgroup, e.g. <c>memory.high</c>).</summary>
    [JsonPropertyName("unified")] public Dictionary<string, string>? Unified { get; set; }
}

/// <summary>One device cgroup rule: <c>{allow, type (a|b|c), major, minor, access (r,w,m)}</c>; null major/minor = wildcard.</summary>
public sealed class LinuxDeviceCgroup
{
    [JsonPropertyName("allow")] public bool Allow { get; set; }
    [JsonPropertyName("type")] public string? Type { get; set; }
    [JsonPropertyName("major")] public long? Major { get; set; }
    [JsonPropertyName("minor")] public long? Minor { get; set; }
    [JsonPropertyName("access")] public string? Access { get; set; }
}

/// <summary><c>linux.resources.memory</c>. Byte values; -1 means unlimited. <see cref="Swap"/> is memory+swap (v1 semantics).</summary>
public sealed class LinuxMemory
{
    [JsonPropertyName("limit")] public long? Limit { get; set; }
    [JsonPropertyName("reservation")] public long? Reservation { get; set; }
    [JsonPropertyName("swap")] public long? Swap { get; set; }
    /// <summary>Deprecated in the spec; ignored (the kernel no longer supports kmem limits).</summary>
    [JsonPropertyName("kernel")] public long? Kernel { get; set; }
    [JsonPropertyName("kernelTCP")] public long? KernelTCP { get; set; }
    [JsonPropertyName("swappiness")] public ulong? Swappiness { get; set; }
    [JsonPropertyName("disableOOMKiller")] public bool? DisableOOMKiller { get; set; }
    [JsonPropertyName("useHierarchy")] public bool? UseHierarchy { get; set; }
    [JsonPropertyName("checkBeforeUpdate")] public bool? CheckBeforeUpdate { get; set; }
}

/// <summary><c>linux.resources.cpu</c>.</summary>
public sealed class LinuxCpu
{
    [JsonPropertyName("shares")] public ulong? Shares { get; set; }
    [JsonPropertyName("quota")] public long? Quota { get; set; }
    [JsonPropertyName("burst")] public ulong? Burst { get; set; }
    [JsonPropertyName("period")] public ulong? Period { get; set; }
    [JsonPropertyName("realtimeRuntime")] public long? RealtimeRuntime { get; set; }
    [JsonPropertyName("realtimePeriod")] public ulong? RealtimePeriod { get; set; }
    [JsonPropertyName("cpus")] public string? Cpus { get; set; }
    [JsonPropertyName("mems")] public string? Mems { get; set; }
    [JsonPropertyName("idle")] public long? Idle { get; set; }
}

/// <summary><c>linux.resources.pids</c>. A limit of 0 or less means unlimited ("max").</summary>
public sealed class LinuxPids
{
    [JsonPropertyName("limit")] public long? Limit { get; set; }
}

/// <summary><c>linux.resources.blockIO</c>.</summary>
public sealed class LinuxBlockIo
{
    [JsonPropertyName("weight")] public ushort? Weight { get; set; }
    [JsonPropertyName("leafWeight")] public ushort? LeafWeight { get; set; }
    [JsonPropertyName("weightDevice")] public List<LinuxWeightDevice>? WeightDevice { get; set; }
    [JsonPropertyName("throttleReadBpsDevice")] public List<LinuxThrottleDevice>? ThrottleReadBpsDevice { get; set; }
    [JsonPropertyName("throttleWriteBpsDevice")] public List<LinuxThrottleDevice>? ThrottleWriteBpsDevice { get; set; }
    [JsonPropertyName("throttleReadIOPSDevice")] public List<LinuxThrottleDevice>? ThrottleReadIOPSDevice { get; set; }
    [JsonPropertyName("throttleWriteIOPSDevice")] public List<LinuxThrottleDevice>? ThrottleWriteIOPSDevice { get; set; }
}

/// <summary>Per-device weight (<c>blockIO.weightDevice[]</c>).</summary>
public sealed class LinuxWeightDevice
{
    [JsonPropertyName("major")] public long Major { get; set; }
    [JsonPropertyName("minor")] public long Minor { get; set; }
    [JsonPropertyName("weight")] public ushort? Weight { get; set; }
    [JsonPropertyName("leafWeight")] public ushort? LeafWeight { get; set; }
}

/// <summary>Per-device rate limit (<c>blockIO.throttle*Device[]</c>): bytes/s or IO/s.</summary>
public sealed class LinuxThrottleDevice
{
    [JsonPropertyName("major")] public long Major { get; set; }
    [JsonPropertyName("minor")] public long Minor { get; set; }
    [JsonPropertyName("rate")] public ulong Rate { get; set; }
}

/// <summary><c>linux.resources.hugepageLimits[]</c>: <c>pageSize</c> like "2MB", "1GB"; limit in bytes.</summary>
public sealed class LinuxHugepageLimit
{
    [JsonPropertyName("pageSize")] public string PageSize { get; set; } = "";
    [JsonPropertyName("limit")] public ulong Limit { get; set; }
}

/// <summary><c>linux.resources.network</c> (v1 net_cls / net_prio only).</summary>
public sealed class LinuxNetwork
{
    [JsonPropertyName("classID")] public uint? ClassID { get; set; }
    [JsonPropertyName("priorities")] public List<LinuxInterfacePriority>? Priorities { get; set; }
}

public sealed class LinuxInterfacePriority
{
    [JsonPropertyName("name")] public string Name { get; set; } = "";
    [JsonPropertyName("priority")] public uint Priority { get; set; }
}
