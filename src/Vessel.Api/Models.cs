using System.Text.Json;
using System.Text.Json.Serialization;

namespace Vessel.Api;

/// <summary>Versions of the wire contract. Every path starts with <c>/v1/</c>.</summary>
public static class ApiInfo
{
    public const string Version = "0.1.0";
    public const string ApiVersion = "1";
    /// <summary>vesseld's state root: $VESSEL_ROOT, else /var/lib/vessel.</summary>
    public static string DefaultRoot => Env("VESSEL_ROOT") ?? "/var/lib/vessel";
    /// <summary>vesseld's run root: $VESSEL_RUN_ROOT, else /run/vessel. The CLI's default socket (and where its
    /// auto-started daemon logs) follows it, so one variable points both at a private daemon.</summary>
    public static string DefaultRunRoot => Env("VESSEL_RUN_ROOT") ?? "/run/vessel";
    public static string DefaultSocket => Path.Combine(DefaultRunRoot, "vessel.sock");
    public const string NdjsonContentType = "application/x-ndjson";

    private static string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? Path.GetFullPath(v) : null;
}

/// <summary>Values of <see cref="ErrorResponse.Code"/>.</summary>
public static class ErrorCodes
{
    public const string NotFound = "not_found";               // 404
    public const string Conflict = "conflict";                // 409
    public const string Invalid = "invalid";                  // 400
    public const string MethodNotAllowed = "method_not_allowed"; // 405
    public const string Cancelled = "cancelled";              // operation cancelled
    public const string Unauthorized = "unauthorized";        // 401: a registry refused the credentials (or wants some)
    public const string RateLimited = "rate_limited";         // 429: a registry's rate limit
    public const string Unavailable = "unavailable";          // 502: a registry cannot be reached or answered nonsense
    public const string Internal = "internal";                // 500
}

/// <summary>Every error the API returns, with a 4xx/5xx status.</summary>
public sealed record ErrorResponse(string Message, string Code);

public sealed record VersionResponse(string Version, string ApiVersion, string Os, string Arch, string Kernel);

public sealed record RuntimeInfo(string Name, string? Version, string? Path);

public sealed record SystemInfoResponse
{
    public required int DaemonPid { get; init; }
    public required string Version { get; init; }
    public required string Socket { get; init; }
    public required string StateRoot { get; init; }
    public required string RunRoot { get; init; }
    /// <summary>v1, v2 or hybrid (CgroupLayout.Detect).</summary>
    public required string CgroupMode { get; init; }
    public required string Kernel { get; init; }
    public required string Os { get; init; }
    public required string Arch { get; init; }
    public required RuntimeInfo Runtime { get; init; }
    public required string Storage { get; init; }
    public required int Images { get; init; }
    public required int Containers { get; init; }
    /// <summary>The accelerator VMs get (probed once per daemon start) and why; absent until the first VM needs it
    /// or info asks for it.</summary>
    public AccelInfo? Accel { get; init; }
    public int Machines { get; init; }
}

/// <summary>One row of <c>GET /v1/images</c>: one name (repository:tag) pointing at one image.</summary>
public sealed record ImageSummary
{
    /// <summary>The full name as stored (repository:tag or repository@digest).</summary>
    public required string Name { get; init; }
    public required string Repository { get; init; }
    /// <summary>The tag, or null for a name by digest.</summary>
    public string? Tag { get; init; }
    /// <summary>Image id: the config digest of the manifest for this platform (like docker), or the target
    /// digest when the image has no manifest for this platform.</summary>
    public required string Id { get; init; }
    /// <summary>Digest of the manifest or index the name points at.</summary>
    public required string Digest { get; init; }
    public required string MediaType { get; init; }
    /// <summary>Creation time from the image config, if it has one.</summary>
    public DateTimeOffset? Created { get; init; }
    /// <summary>Bytes of content: manifest, config and layers as stored (compressed).</summary>
    public required long Size { get; init; }
}

/// <summary><c>GET /v1/images/{name}</c>.</summary>
public sealed record ImageInspect
{
    public required string Id { get; init; }
    public required IReadOnlyList<string> RepoTags { get; init; }
    public required IReadOnlyList<string> RepoDigests { get; init; }
    public required string Digest { get; init; }
    public required string MediaType { get; init; }
    public string? ManifestDigest { get; init; }
    public DateTimeOffset? Created { get; init; }
    public string? Os { get; init; }
    public string? Architecture { get; init; }
    public string? Variant { get; init; }
    public required long Size { get; init; }
    public IReadOnlyList<string>? Layers { get; init; }
    public IReadOnlyList<string>? DiffIds { get; init; }
    /// <summary>The image config's "config" object (Env, Cmd, Entrypoint, ...), as stored.</summary>
    public JsonElement? Config { get; init; }
    /// <summary>Set when the image could not be resolved for this platform (an index without a matching manifest, an artifact).</summary>
    public string? Problem { get; init; }
}

public sealed record TagRequest(string Target);

/// <summary><c>DELETE /v1/images/{name}</c>: names removed, and images whose last name went.</summary>
public sealed record ImageDeleteResponse(IReadOnlyList<string> Untagged, IReadOnlyList<string> Deleted, long? SpaceReclaimed = null);

/// <summary><c>POST /v1/images/pull</c>: <see cref="Name"/> as docker takes it (busybox, host:5000/x:1, x@sha256:…);
/// <see cref="Platform"/> os/arch[/variant] picked from a multi-arch index (default linux/amd64).</summary>
public sealed record PullRequest(string Name, string? Platform = null);

/// <summary>Result of a pull operation.</summary>
public sealed record PullResult
{
    /// <summary>The name as stored (normalised: docker.io/library/busybox:latest).</summary>
    public required string Name { get; init; }
    /// <summary>Digest of the manifest or index the name points at.</summary>
    public required string Digest { get; init; }
    /// <summary>Image id (config digest).</summary>
    public required string Id { get; init; }
    public int BlobsDownloaded { get; init; }
    public long BytesDownloaded { get; init; }
    /// <summary>The name pointed at this digest already before the pull.</summary>
    public bool UpToDate { get; init; }
}

/// <summary><c>POST /v1/images/push</c>: a local name, pushed to the registry its name names.</summary>
public sealed record PushRequest(string Name);

public sealed record PushResult(string Name, string Digest, long Size);

/// <summary><c>POST /v1/auth/login</c>: verified with the registry, then stored by the daemon.</summary>
public sealed record LoginRequest(string Server, string Username, string Password);

public sealed record LoginResponse(string Server, string Status);

public sealed record LogoutResponse(string Server, bool Removed);

/// <summary>One row of <c>GET /v1/images/{name}/history</c>, newest first (as docker prints it).</summary>
public sealed record HistoryItem
{
    /// <summary>The image id on the newest row, else null (docker's "&lt;missing&gt;").</summary>
    public string? Id { get; init; }
    public DateTimeOffset? Created { get; init; }
    public string? CreatedBy { get; init; }
    /// <summary>Compressed size of the layer this step made (0 for an empty layer).</summary>
    public long Size { get; init; }
    public string? Comment { get; init; }
    public bool EmptyLayer { get; init; }
    public string? Layer { get; init; }
}

/// <summary><c>POST /v1/images/prune</c> and <c>POST /v1/system/prune</c>.</summary>
public sealed record PruneResponse
{
    public required IReadOnlyList<string> Untagged { get; init; }
    /// <summary>Images (manifest/index digests) whose last name went.</summary>
    public required IReadOnlyList<string> Deleted { get; init; }
    public int BlobsRemoved { get; init; }
    public int SnapshotsRemoved { get; init; }
    public long SpaceReclaimed { get; init; }
}

/// <summary><c>POST /v1/images/load</c> and <c>POST /v1/images/import</c>.</summary>
public sealed record LoadResult(IReadOnlyList<string> Images, IReadOnlyList<string> Ids);

/// <summary>One image in <c>GET /v1/system/df</c>.</summary>
public sealed record ImageDiskUsage
{
    public required string Id { get; init; }
    public required string Digest { get; init; }
    public required IReadOnlyList<string> Names { get; init; }
    public DateTimeOffset? Created { get; init; }
    /// <summary>Blobs and unpacked snapshots this image uses.</summary>
    public long Size { get; init; }
    /// <summary>The part of <see cref="Size"/> another image uses too.</summary>
    public long SharedSize { get; init; }
    /// <summary>What removing this image alone frees.</summary>
    public long UniqueSize { get; init; }
    public int Containers { get; init; }
}

/// <summary><c>GET /v1/system/df</c>.</summary>
public sealed record DiskUsageResponse
{
    public required IReadOnlyList<ImageDiskUsage> Images { get; init; }
    /// <summary>Distinct bytes of every image (blobs + snapshots, shared ones counted once).</summary>
    public long ImagesSize { get; init; }
    /// <summary>Bytes that pruning every image no container uses would free (all of them, until containers exist),
    /// plus content no image references.</summary>
    public long ImagesReclaimable { get; init; }
    public int ActiveImages { get; init; }
    public int BlobCount { get; init; }
    public long BlobsSize { get; init; }
    /// <summary>Blobs no image references (what a prune frees even without -a).</summary>
    public long UnreferencedSize { get; init; }
    public int SnapshotCount { get; init; }
    public long SnapshotsSize { get; init; }
    public int Containers { get; init; }
    public long ContainersSize { get; init; }
    public int Volumes { get; init; }
    public long VolumesSize { get; init; }
    /// <summary>What this daemon cannot count yet (containers and volumes are not managed by the daemon yet).</summary>
    public string? Note { get; init; }
}

/// <summary><c>POST /v1/images/import-layout</c>: an OCI image layout directory on the daemon's file system.</summary>
public sealed record ImportLayoutRequest(string Path, string? Name = null);

public sealed record ImportLayoutResult(IReadOnlyList<string> Images, int BlobsImported, int MissingOptional);

/// <summary>Values of <see cref="OperationInfo.Status"/>.</summary>
public static class OperationStatus
{
    public const string Running = "running";
    public const string Succeeded = "succeeded";
    public const string Failed = "failed";
    public const string Cancelled = "cancelled";
}

/// <summary>A long-running task started by a POST that answered 202.</summary>
public sealed record OperationInfo
{
    public required string Id { get; init; }
    /// <summary>What it does, e.g. "image.import-layout".</summary>
    public required string Kind { get; init; }
    public required string Status { get; init; }
    /// <summary>What it works on (an image name, a path).</summary>
    public required string Target { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
    /// <summary>Set when status is failed or cancelled.</summary>
    public ErrorResponse? Error { get; init; }
    /// <summary>Kind-specific result when status is succeeded.</summary>
    public JsonElement? Result { get; init; }
}

/// <summary>One line of <c>GET /v1/operations/{id}/progress</c>. The stream ends with an <see cref="OperationInfo"/>
/// line (the one with "status"); progress lines have "type": "progress".</summary>
public sealed record ProgressEvent
{
    public string Type { get; init; } = "progress";
    /// <summary>Unix time in nanoseconds.</summary>
    public required long Time { get; init; }
    /// <summary>What this line is about (a blob digest), or null for the whole operation.</summary>
    public string? Item { get; init; }
    /// <summary>e.g. "copying", "done", "exists", "skipped".</summary>
    public required string Action { get; init; }
    public long Current { get; init; }
    public long Total { get; init; }
    public string? Message { get; init; }
}

/// <summary>One line of <c>GET /v1/events</c>.</summary>
public sealed record EventMessage
{
    /// <summary>Unix time in nanoseconds.</summary>
    public required long Time { get; init; }
    /// <summary>"image", "container", "volume", "operation", "daemon".</summary>
    public required string Type { get; init; }
    public required string Action { get; init; }
    public required string Id { get; init; }
    public string? Name { get; init; }
    public IReadOnlyDictionary<string, string>? Attributes { get; init; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = false)]
[JsonSerializable(typeof(ErrorResponse))]
[JsonSerializable(typeof(VersionResponse))]
[JsonSerializable(typeof(SystemInfoResponse))]
[JsonSerializable(typeof(ImageSummary))]
[JsonSerializable(typeof(List<ImageSummary>))]
[JsonSerializable(typeof(ImageInspect))]
[JsonSerializable(typeof(List<ImageInspect>))]
[JsonSerializable(typeof(TagRequest))]
[JsonSerializable(typeof(ImageDeleteResponse))]
[JsonSerializable(typeof(ImportLayoutRequest))]
[JsonSerializable(typeof(PullRequest))]
[JsonSerializable(typeof(PullResult))]
[JsonSerializable(typeof(PushRequest))]
[JsonSerializable(typeof(PushResult))]
[JsonSerializable(typeof(LoginRequest))]
[JsonSerializable(typeof(LoginResponse))]
[JsonSerializable(typeof(LogoutResponse))]
[JsonSerializable(typeof(HistoryItem))]
[JsonSerializable(typeof(List<HistoryItem>))]
[JsonSerializable(typeof(PruneResponse))]
[JsonSerializable(typeof(LoadResult))]
[JsonSerializable(typeof(DiskUsageResponse))]
[JsonSerializable(typeof(ImportLayoutResult))]
[JsonSerializable(typeof(OperationInfo))]
[JsonSerializable(typeof(List<OperationInfo>))]
[JsonSerializable(typeof(ProgressEvent))]
[JsonSerializable(typeof(EventMessage))]
[JsonSerializable(typeof(JsonElement))]
public sealed partial class ApiJson : JsonSerializerContext;
