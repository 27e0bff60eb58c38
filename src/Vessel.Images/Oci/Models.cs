using System.Text.Json.Serialization;
using Vessel.Images.Content;

namespace Vessel.Images.Oci;

/// <summary>OCI content descriptor (image-spec descriptor.md).</summary>
public sealed record Descriptor
{
    [JsonPropertyName("mediaType")] public required string MediaType { get; init; }
    [JsonPropertyName("digest")] public required Digest Digest { get; init; }
    [JsonPropertyName("size")] public required long Size { get; init; }
    [JsonPropertyName("urls")] public IReadOnlyList<string>? Urls { get; init; }
    [JsonPropertyName("annotations")] public IReadOnlyDictionary<string, string>? Annotations { get; init; }
    [JsonPropertyName("data")] public string? Data { get; init; }
    [JsonPropertyName("platform")] public Platform? Platform { get; init; }
    [JsonPropertyName("artifactType")] public string? ArtifactType { get; init; }

    public string? Annotation(string key) => Annotations is not null && Annotations.TryGetValue(key, out string? v) ? v : null;
}

/// <summary>Platform of an index entry (image-spec image-index.md).</summary>
public sealed record Platform
{
    [JsonPropertyName("architecture")] public required string Architecture { get; init; }
    [JsonPropertyName("os")] public required string Os { get; init; }
    [JsonPropertyName("os.version")] public string? OsVersion { get; init; }
    [JsonPropertyName("os.features")] public IReadOnlyList<string>? OsFeatures { get; init; }
    [JsonPropertyName("variant")] public string? Variant { get; init; }
    [JsonPropertyName("features")] public IReadOnlyList<string>? Features { get; init; }

    public override string ToString() => string.IsNullOrEmpty(Variant) ? $"{Os}/{Architecture}" : $"{Os}/{Architecture}/{Variant}";
}

/// <summary>Image manifest (OCI and Docker schema 2 share this shape).</summary>
public sealed record ImageManifest
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; init; } = 2;
    [JsonPropertyName("mediaType")] public string? MediaType { get; init; }
    [JsonPropertyName("artifactType")] public string? ArtifactType { get; init; }
    [JsonPropertyName("config")] public required Descriptor Config { get; init; }
    [JsonPropertyName("layers")] public required IReadOnlyList<Descriptor> Layers { get; init; }
    [JsonPropertyName("subject")] public Descriptor? Subject { get; init; }
    [JsonPropertyName("annotations")] public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>Image index / Docker manifest list.</summary>
public sealed record ImageIndex
{
    [JsonPropertyName("schemaVersion")] public int SchemaVersion { get; init; } = 2;
    [JsonPropertyName("mediaType")] public string? MediaType { get; init; }
    [JsonPropertyName("artifactType")] public string? ArtifactType { get; init; }
    [JsonPropertyName("manifests")] public required IReadOnlyList<Descriptor> Manifests { get; init; }
    [JsonPropertyName("subject")] public Descriptor? Subject { get; init; }
    [JsonPropertyName("annotations")] public IReadOnlyDictionary<string, string>? Annotations { get; init; }
}

/// <summary>The <c>oci-layout</c> file of an image layout directory.</summary>
public sealed record OciLayoutFile
{
    [JsonPropertyName("imageLayoutVersion")] public required string ImageLayoutVersion { get; init; }
}

/// <summary>A JSON <c>{}</c> (the value type of ExposedPorts and Volumes).</summary>
public sealed record EmptyObject;

/// <summary>Image configuration (image-spec config.md; Docker's extra fields that matter are kept).</summary>
public sealed record ImageConfig
{
    [JsonPropertyName("created")] public DateTimeOffset? Created { get; init; }
    [JsonPropertyName("author")] public string? Author { get; init; }
    [JsonPropertyName("architecture")] public required string Architecture { get; init; }
    [JsonPropertyName("os")] public required string Os { get; init; }
    [JsonPropertyName("os.version")] public string? OsVersion { get; init; }
    [JsonPropertyName("os.features")] public IReadOnlyList<string>? OsFeatures { get; init; }
    [JsonPropertyName("variant")] public string? Variant { get; init; }
    [JsonPropertyName("config")] public ContainerConfig? Config { get; init; }
    [JsonPropertyName("rootfs")] public required RootFs RootFs { get; init; }
    [JsonPropertyName("history")] public IReadOnlyList<History>? History { get; init; }

    [JsonIgnore] public Platform Platform => new() { Os = Os, Architecture = Architecture, Variant = Variant, OsVersion = OsVersion };
}

public sealed record ContainerConfig
{
    [JsonPropertyName("User")] public string? User { get; init; }
    [JsonPropertyName("ExposedPorts")] public IReadOnlyDictionary<string, EmptyObject>? ExposedPorts { get; init; }
    [JsonPropertyName("Env")] public IReadOnlyList<string>? Env { get; init; }
    [JsonPropertyName("Entrypoint")] public IReadOnlyList<string>? Entrypoint { get; init; }
    [JsonPropertyName("Cmd")] public IReadOnlyList<string>? Cmd { get; init; }
    [JsonPropertyName("Volumes")] public IReadOnlyDictionary<string, EmptyObject>? Volumes { get; init; }
    [JsonPropertyName("WorkingDir")] public string? WorkingDir { get; init; }
    [JsonPropertyName("Labels")] public IReadOnlyDictionary<string, string>? Labels { get; init; }
    [JsonPropertyName("StopSignal")] public string? StopSignal { get; init; }
    [JsonPropertyName("ArgsEscaped")] public bool? ArgsEscaped { get; init; }
    [JsonPropertyName("Healthcheck")] public HealthConfig? Healthcheck { get; init; }
    [JsonPropertyName("Shell")] public IReadOnlyList<string>? Shell { get; init; }
    [JsonPropertyName("OnBuild")] public IReadOnlyList<string>? OnBuild { get; init; }
}

/// <summary>Docker's HEALTHCHECK (durations in nanoseconds).</summary>
public sealed record HealthConfig
{
    [JsonPropertyName("Test")] public IReadOnlyList<string>? Test { get; init; }
    [JsonPropertyName("Interval")] public long? Interval { get; init; }
    [JsonPropertyName("Timeout")] public long? Timeout { get; init; }
    [JsonPropertyName("StartPeriod")] public long? StartPeriod { get; init; }
    [JsonPropertyName("StartInterval")] public long? StartInterval { get; init; }
    [JsonPropertyName("Retries")] public int? Retries { get; init; }
}

public sealed record RootFs
{
    [JsonPropertyName("type")] public required string Type { get; init; }
    [JsonPropertyName("diff_ids")] public required IReadOnlyList<Digest> DiffIds { get; init; }
}

public sealed record History
{
    [JsonPropertyName("created")] public DateTimeOffset? Created { get; init; }
    [JsonPropertyName("created_by")] public string? CreatedBy { get; init; }
    [JsonPropertyName("author")] public string? Author { get; init; }
    [JsonPropertyName("comment")] public string? Comment { get; init; }
    [JsonPropertyName("empty_layer")] public bool? EmptyLayer { get; init; }
}

/// <summary>Well-known annotation keys.</summary>
public static class Annotations
{
    public const string RefName = "org.opencontainers.image.ref.name";
    public const string ContainerdImageName = "io.containerd.image.name";
}
