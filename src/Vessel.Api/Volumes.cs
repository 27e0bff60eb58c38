using System.Text.Json.Serialization;

namespace Vessel.Api;

/// <summary><c>POST /v1/volumes</c>: a named volume (no name: an anonymous one, named by 64 random hex digits).</summary>
public sealed record VolumeCreateRequest
{
    public string? Name { get; init; }
    public Dictionary<string, string>? Labels { get; init; }
}

/// <summary>A volume as <c>docker volume inspect</c> shows it (driver "local", scope "local").</summary>
public sealed record VolumeInfo
{
    public required string Name { get; init; }
    public string Driver { get; init; } = "local";
    /// <summary>The directory on the host: STATE_ROOT/volumes/NAME/_data.</summary>
    public required string Mountpoint { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public Dictionary<string, string> Labels { get; init; } = [];
    public string Scope { get; init; } = "local";
    public Dictionary<string, string> Options { get; init; } = [];
    /// <summary>Created for one container (<c>-v /path</c>, an image VOLUME): label com.docker.volume.anonymous.</summary>
    public bool Anonymous { get; init; }
    /// <summary>Ids of the containers (running or not) that mount it.</summary>
    public List<string> UsedBy { get; init; } = [];
}

public sealed record VolumePruneResponse(List<string> VolumesDeleted, long SpaceReclaimed);

/// <summary>One mount of a container, as inspect shows it (docker's MountPoint).</summary>
public sealed record ContainerMountPoint
{
    /// <summary>volume, bind or tmpfs.</summary>
    public required string Type { get; init; }
    /// <summary>The volume's name (volumes only).</summary>
    public string? Name { get; init; }
    /// <summary>Host path: the volume's _data, the bind source; empty for tmpfs.</summary>
    public string Source { get; init; } = "";
    public required string Destination { get; init; }
    public bool ReadOnly { get; init; }
    /// <summary>A volume created for this container alone: removed with it by <c>rm -v</c> and <c>--rm</c>.</summary>
    public bool Anonymous { get; init; }
    /// <summary>Bind propagation (rprivate by default), or empty.</summary>
    public string? Propagation { get; init; }
    /// <summary>Extra mount options (tmpfs: size=, mode=, noexec, …).</summary>
    public List<string>? Options { get; init; }
    /// <summary>Copy the image's content at Destination into an empty volume (docker's default; -v …:nocopy turns it off).</summary>
    public bool CopyUp { get; init; }
}

/// <summary>Health check settings of a container (docker's HEALTHCHECK / --health-* flags). Durations are Go
/// duration strings ("30s", "1m30s", "500ms"; "123ns" for a value in nanoseconds); null takes the image's, then
/// docker's default (30s interval, 30s timeout, 0s start period, 3 retries).</summary>
public sealed record ContainerHealthConfig
{
    /// <summary>["CMD", args…], ["CMD-SHELL", "command"], or ["NONE"] to disable the image's check.</summary>
    public List<string>? Test { get; init; }
    public string? Interval { get; init; }
    public string? Timeout { get; init; }
    public string? StartPeriod { get; init; }
    public int? Retries { get; init; }
}

/// <summary>The health of a container with a health check (docker's State.Health).</summary>
public sealed record ContainerHealth
{
    /// <summary>starting, healthy or unhealthy.</summary>
    public required string Status { get; init; }
    public int FailingStreak { get; init; }
    /// <summary>The last (at most 5) probes, oldest first.</summary>
    public List<HealthProbe> Log { get; init; } = [];
}

public sealed record HealthProbe(DateTimeOffset Start, DateTimeOffset End, int ExitCode, string Output);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = false)]
[JsonSerializable(typeof(VolumeCreateRequest))]
[JsonSerializable(typeof(VolumeInfo))]
[JsonSerializable(typeof(List<VolumeInfo>))]
[JsonSerializable(typeof(VolumePruneResponse))]
public sealed partial class VolumeJson : JsonSerializerContext;
