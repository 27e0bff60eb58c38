using System.Text.Json.Serialization;

namespace Vessel.Api;

/// <summary>A published port: what <c>-p</c> asks for (and, once networking binds it, what was bound).
/// <see cref="HostPort"/> 0 means "any free port".</summary>
public sealed record PortMapping
{
    public string? HostIp { get; init; }
    public int HostPort { get; init; }
    public required int ContainerPort { get; init; }
    /// <summary>tcp, udp or sctp.</summary>
    public string Proto { get; init; } = "tcp";
}

/// <summary><c>GET /v1/containers/{id}/top</c>: the columns of host <c>ps</c> for the container's processes.</summary>
public sealed record ContainerTopResponse(List<string> Titles, List<List<string>> Processes);

/// <summary>One sample of <c>GET /v1/containers/{id}/stats</c>. CPU times are nanoseconds; <see cref="SystemCpu"/> is the
/// host's total CPU time (all CPUs) at the same moment, so CPU % = Δcpu / Δsystem × onlineCpus × 100 (docker's formula).
/// Pre* are the previous sample's (zero in the first).</summary>
public sealed record ContainerStats
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required DateTimeOffset Read { get; init; }
    public bool Running { get; init; }
    public ulong CpuTotal { get; init; }
    public ulong SystemCpu { get; init; }
    public ulong PreCpuTotal { get; init; }
    public ulong PreSystemCpu { get; init; }
    public int OnlineCpus { get; init; }
    /// <summary>Memory in use without the page cache that can be dropped (docker's "usage - inactive_file").</summary>
    public ulong MemoryUsage { get; init; }
    /// <summary>The cgroup's limit, or the host's memory when unlimited.</summary>
    public ulong MemoryLimit { get; init; }
    public ulong NetRx { get; init; }
    public ulong NetTx { get; init; }
    public ulong BlockRead { get; init; }
    public ulong BlockWrite { get; init; }
    public ulong Pids { get; init; }
    public ulong? PidsLimit { get; init; }
}

/// <summary>One change of <c>GET /v1/containers/{id}/changes</c>: Kind A (added), C (changed), D (deleted).</summary>
public sealed record ContainerChange(string Path, string Kind);

/// <summary><c>POST /v1/containers/{id}/commit</c>.</summary>
public sealed record ContainerCommitRequest
{
    /// <summary>repo[:tag]; none: the image is named by its id (dangling).</summary>
    public string? Name { get; init; }
    public string? Comment { get; init; }
    public string? Author { get; init; }
    /// <summary>docker's --change lines (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL).</summary>
    public List<string>? Changes { get; init; }
    /// <summary>Freeze the container while its changes are read (default true, as docker).</summary>
    public bool Pause { get; init; } = true;
}

public sealed record ContainerCommitResponse(string Id, string? Name);

/// <summary><c>POST /v1/containers/{id}/update</c>: null leaves a value as it is.</summary>
public sealed record ContainerUpdateRequest
{
    public long? Memory { get; init; }
    /// <summary>Memory + swap in bytes; -1 unlimited.</summary>
    public long? MemorySwap { get; init; }
    public double? Cpus { get; init; }
    public long? CpuShares { get; init; }
    /// <summary>0 or -1: unlimited.</summary>
    public long? PidsLimit { get; init; }
    /// <summary>no, on-failure[:N], always, unless-stopped.</summary>
    public string? RestartPolicy { get; init; }
}

public sealed record ContainerUpdateResponse(List<string> Warnings);

/// <summary>What the <c>X-Vessel-Path-Stat</c> header of <c>HEAD/GET /v1/containers/{id}/archive</c> carries (base64 JSON).
/// <see cref="Mode"/> is st_mode (type and permission bits).</summary>
public sealed record ContainerPathStat(string Name, long Size, uint Mode, DateTimeOffset Mtime, string? LinkTarget);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = false)]
[JsonSerializable(typeof(ContainerTopResponse))]
[JsonSerializable(typeof(ContainerStats))]
[JsonSerializable(typeof(List<ContainerChange>))]
[JsonSerializable(typeof(ContainerCommitRequest))]
[JsonSerializable(typeof(ContainerCommitResponse))]
[JsonSerializable(typeof(ContainerUpdateRequest))]
[JsonSerializable(typeof(ContainerUpdateResponse))]
[JsonSerializable(typeof(ContainerPathStat))]
[JsonSerializable(typeof(List<PortMapping>))]
public sealed partial class ContainerVerbsJson : JsonSerializerContext
{
    public const string PathStatHeader = "X-Vessel-Path-Stat";
}
