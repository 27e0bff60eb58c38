using System.Text.Json.Serialization;

namespace Vessel.Api;

/// <summary><c>POST /v1/containers</c>: what `vessel create`/`run` ask for. Null means "the image's value" or docker's default.</summary>
public sealed record ContainerCreateRequest
{
    public required string Image { get; init; }
    public string? Name { get; init; }
    /// <summary>Replaces the image's Cmd (arguments to the entrypoint).</summary>
    public List<string>? Cmd { get; init; }
    /// <summary>Replaces the image's Entrypoint (an empty list clears it).</summary>
    public List<string>? Entrypoint { get; init; }
    /// <summary>KEY=VALUE, added to (and overriding) the image's Env.</summary>
    public List<string>? Env { get; init; }
    public string? WorkingDir { get; init; }
    /// <summary>uid[:gid] or name[:group], looked up in the image's /etc/passwd and /etc/group.</summary>
    public string? User { get; init; }
    public string? Hostname { get; init; }
    /// <summary>Memory limit in bytes.</summary>
    public long? Memory { get; init; }
    public long? PidsLimit { get; init; }
    /// <summary>CPUs (quota = cpus × 100 ms per 100 ms).</summary>
    public double? Cpus { get; init; }
    public bool ReadOnly { get; init; }
    public List<string>? CapAdd { get; init; }
    public List<string>? CapDrop { get; init; }
    public bool Privileged { get; init; }
    public Dictionary<string, string>? Labels { get; init; }
    /// <summary>Remove the container when it exits (--rm).</summary>
    public bool AutoRemove { get; init; }
    /// <summary>A pseudo-terminal for the init (-t): its output is logged as stdout; attach clients may resize it.</summary>
    public bool Tty { get; init; }
    /// <summary>Keep stdin open (-i): attach clients' stdin reaches the init.</summary>
    public bool OpenStdin { get; init; }
    /// <summary>docker's StdinOnce: the init's stdin closes when the attached client's stdin ends (no tty).</summary>
    public bool StdinOnce { get; init; }
    /// <summary>"bridge"/"default" (the default network, when null), a network name or id, "none", "host", "container:NAME".</summary>
    public string? NetworkMode { get; init; }
    /// <summary>--ip: the address on the (first) network.</summary>
    public string? Ip { get; init; }
    /// <summary>--network-alias: more names on user networks.</summary>
    public List<string>? NetworkAliases { get; init; }
    /// <summary>-p in docker's syntax: [IP:][HOST[-END]:]CONTAINER[-END][/tcp|/udp].</summary>
    public List<string>? Publish { get; init; }
    /// <summary>-P: every port the image exposes, on random host ports.</summary>
    public bool PublishAll { get; init; }
    /// <summary>-v in docker's syntax (NAME:/path[:opts], /host/path:/path[:opts], /path), parsed by the daemon.</summary>
    public List<string>? Binds { get; init; }
    /// <summary>--mount in docker's syntax (type=volume|bind|tmpfs,source=…,target=…,readonly,…), parsed by the daemon.</summary>
    public List<string>? Mounts { get; init; }
    /// <summary>--tmpfs: /path[:mount options].</summary>
    public List<string>? Tmpfs { get; init; }
    /// <summary>Restart policy: no (default), on-failure[:N], always, unless-stopped.</summary>
    public string? Restart { get; init; }
    /// <summary>Signal for stop (default: the image's StopSignal, else SIGTERM).</summary>
    public string? StopSignal { get; init; }
    /// <summary>Seconds stop waits before SIGKILL (default 10).</summary>
    public int? StopTimeout { get; init; }
    /// <summary>Run tini (docker-init) as pid 1, which reaps zombies and forwards signals.</summary>
    public bool Init { get; init; }
    /// <summary>seccomp=unconfined|PROFILE-JSON, no-new-privileges[:true|false], systempaths=unconfined, label=… and apparmor=… (accepted, no effect).</summary>
    public List<string>? SecurityOpt { get; init; }
    /// <summary>Overrides the image's health check (fields left null keep the image's).</summary>
    public ContainerHealthConfig? Healthcheck { get; init; }
    /// <summary>Memory + swap limit in bytes (-1: unlimited swap); set by `update --memory-swap`.</summary>
    public long? MemorySwap { get; init; }
    /// <summary>Relative CPU weight (cgroup v1 cpu.shares; docker's default 1024); set by `update --cpu-shares`.</summary>
    public long? CpuShares { get; init; }
    /// <summary>Published ports (-p); `vessel port` and inspect show them.</summary>
    public List<PortMapping>? Ports { get; init; }
    /// <summary>--log-driver: json-file (or local, the same files); anything else is refused.</summary>
    public string? LogDriver { get; init; }
    /// <summary>--log-opt: max-size (docker's units, -1 unlimited), max-file (rotated files kept, 1–100).</summary>
    public Dictionary<string, string>? LogOptions { get; init; }
}

public sealed record ContainerCreateResponse(string Id, string Name, List<string> Warnings);

/// <summary>Values of <see cref="ContainerStateInfo.Status"/>.</summary>
public static class ContainerStatus
{
    public const string Created = "created";
    public const string Running = "running";
    public const string Exited = "exited";
    /// <summary>Exited, and waiting (back-off) to be started again by its restart policy.</summary>
    public const string Restarting = "restarting";
    /// <summary>Only in API answers (inspect, ps): the engine keeps a paused container "running" with Paused set.</summary>
    public const string Paused = "paused";
}

public sealed record ContainerStateInfo
{
    public required string Status { get; init; }
    public bool Running { get; init; }
    public int Pid { get; init; }
    public int? ExitCode { get; init; }
    /// <summary>The signal that ended the init, if one did.</summary>
    public int? Signal { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    public string? Error { get; init; }
    /// <summary>Pid of the container's monitor (vessel-executor monitor), while it lives.</summary>
    public int? MonitorPid { get; init; }
    /// <summary>The kernel's OOM killer killed a process of the container (during its last run).</summary>
    public bool OomKilled { get; init; }
    /// <summary>Set by a health check (image HEALTHCHECK or --health-cmd).</summary>
    public ContainerHealth? Health { get; init; }
    /// <summary>Frozen by `vessel pause` (then Status is "paused" and Running still true, as docker).</summary>
    public bool Paused { get; init; }
}

/// <summary>One row of <c>GET /v1/containers</c>.</summary>
public sealed record ContainerSummary
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string Image { get; init; }
    public required string ImageId { get; init; }
    public required string Command { get; init; }
    public required DateTimeOffset Created { get; init; }
    public required ContainerStateInfo State { get; init; }
    public Dictionary<string, string>? Labels { get; init; }
    /// <summary>Published ports while it runs.</summary>
    public List<PortMapping>? Ports { get; init; }
}

/// <summary><c>GET /v1/containers/{id}</c>.</summary>
public sealed record ContainerInspect
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public required string Image { get; init; }
    public required string ImageId { get; init; }
    public required DateTimeOffset Created { get; init; }
    public required string Path { get; init; }
    public required List<string> Args { get; init; }
    public required ContainerStateInfo State { get; init; }
    public required ContainerCreateRequest Config { get; init; }
    public required string Bundle { get; init; }
    public required string LogPath { get; init; }
    public List<string>? Env { get; init; }
    public string? WorkingDir { get; init; }
    public string? Hostname { get; init; }
    public ContainerNetworkSettings? NetworkSettings { get; init; }
    /// <summary>Volumes, binds and tmpfs mounts.</summary>
    public List<ContainerMountPoint>? Mounts { get; init; }
    /// <summary>How often the restart policy has started the container again since it was last started by hand.</summary>
    public int RestartCount { get; init; }
    /// <summary>Published ports (from -p; filled by networking once it binds them).</summary>
    public List<PortMapping>? Ports { get; init; }
}

public sealed record ContainerWaitResponse(int ExitCode);

/// <summary><c>POST /v1/containers/{id}/exec</c> (no tty in this version: the output comes back when it ends).</summary>
public sealed record ContainerExecRequest
{
    public required List<string> Cmd { get; init; }
    public List<string>? Env { get; init; }
    public string? WorkingDir { get; init; }
    public string? User { get; init; }
}

public sealed record ContainerExecResponse(int ExitCode, string Stdout, string Stderr);

/// <summary>One line of <c>GET /v1/containers/{id}/logs</c>.</summary>
public sealed record ContainerLogLine(string Stream, string Log, DateTimeOffset Time);

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = false)]
[JsonSerializable(typeof(ContainerCreateRequest))]
[JsonSerializable(typeof(ContainerCreateResponse))]
[JsonSerializable(typeof(ContainerSummary))]
[JsonSerializable(typeof(List<ContainerSummary>))]
[JsonSerializable(typeof(ContainerInspect))]
[JsonSerializable(typeof(ContainerWaitResponse))]
[JsonSerializable(typeof(ContainerExecRequest))]
[JsonSerializable(typeof(ContainerExecResponse))]
[JsonSerializable(typeof(ContainerLogLine))]
public sealed partial class ContainerJson : JsonSerializerContext;
