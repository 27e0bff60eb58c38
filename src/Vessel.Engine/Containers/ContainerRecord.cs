using System.Text.Json.Serialization;
using Vessel.Api;

namespace Vessel.Engine.Containers;

/// <summary>What never changes after create: the <c>config</c> column of the containers table.</summary>
public sealed record ContainerConfigRecord
{
    public required ContainerCreateRequest Request { get; init; }
    public required string ImageId { get; init; }
    public required string ImageTarget { get; init; }
    public required List<string> Snapshots { get; init; }
    public required List<string> Args { get; init; }
    public required List<string> Env { get; init; }
    public required string WorkingDir { get; init; }
    public required string Hostname { get; init; }
    /// <summary>Volumes, binds and tmpfs mounts, resolved at create (volume names, host paths).</summary>
    public List<ContainerMountPoint>? Mounts { get; init; }
    /// <summary>The image's StopSignal and Healthcheck, kept for stop and the health checker.</summary>
    public string? ImageStopSignal { get; init; }
    public Vessel.Images.Oci.HealthConfig? ImageHealthcheck { get; init; }
}

/// <summary>The <c>state</c> column: what the daemon knows of the container's processes.</summary>
public sealed record ContainerStateRecord
{
    public string Status { get; init; } = ContainerStatus.Created;
    public int Pid { get; init; }
    public ulong PidStart { get; init; }
    public int MonitorPid { get; init; }
    public ulong MonitorStart { get; init; }
    public int? ExitCode { get; init; }
    public int? Signal { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public string? Error { get; init; }
    public bool OomKilled { get; init; }
    /// <summary>Starts by the restart policy since the last start by hand.</summary>
    public int RestartCount { get; init; }
    /// <summary>Stopped or killed by a user: the restart policy leaves it alone (unless-stopped also after a daemon restart).</summary>
    public bool StoppedByUser { get; init; }
    /// <summary>Has been started at least once (docker restarts only those when the daemon starts).</summary>
    public bool StartedBefore { get; init; }
    /// <summary>Frozen by pause (the cgroup freezer); Status stays Running.</summary>
    public bool Paused { get; init; }
}

public sealed record ContainerRecord(string Id, string Name, string Image, DateTimeOffset Created, ContainerConfigRecord Config, ContainerStateRecord State);

/// <summary>exit.json as the monitor writes it.</summary>
public sealed record MonitorExit
{
    [JsonPropertyName("exitCode")] public int ExitCode { get; init; }
    [JsonPropertyName("signal")] public int Signal { get; init; }
    [JsonPropertyName("pid")] public int Pid { get; init; }
    [JsonPropertyName("finishedAt")] public string? FinishedAt { get; init; }
}

/// <summary>One line of container.log (docker's json-file format).</summary>
public sealed record MonitorLogEntry
{
    [JsonPropertyName("log")] public string Log { get; init; } = "";
    [JsonPropertyName("stream")] public string Stream { get; init; } = "";
    [JsonPropertyName("time")] public string Time { get; init; } = "";
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(ContainerConfigRecord))]
[JsonSerializable(typeof(ContainerStateRecord))]
[JsonSerializable(typeof(MonitorExit))]
[JsonSerializable(typeof(MonitorLogEntry))]
internal sealed partial class ContainerRecordJson : JsonSerializerContext;
