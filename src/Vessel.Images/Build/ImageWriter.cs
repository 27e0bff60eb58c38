using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Oci;

namespace Vessel.Images.Build;

/// <summary>Changes to an image's runtime config (what <c>--change</c>, <c>commit</c> and Dockerfile
/// instructions set). Null leaves a field as it is. <see cref="Env"/> entries replace variables of the same
/// name and add the others; ports, volumes and labels are added; <see cref="RemoveLabels"/> drops labels.</summary>
public sealed record ConfigChanges
{
    public IReadOnlyList<string>? Cmd { get; init; }
    public IReadOnlyList<string>? Entrypoint { get; init; }
    public IReadOnlyList<string>? Env { get; init; }
    public string? WorkingDir { get; init; }
    public string? User { get; init; }
    public IReadOnlyList<string>? ExposedPorts { get; init; }
    public IReadOnlyList<string>? Volumes { get; init; }
    public IReadOnlyDictionary<string, string>? Labels { get; init; }
    public IReadOnlyList<string>? RemoveLabels { get; init; }
    public string? StopSignal { get; init; }

    public static ConfigChanges None { get; } = new();

    public ContainerConfig Apply(ContainerConfig? c)
    {
        c ??= new ContainerConfig();
        var env = c.Env?.ToList() ?? [];
        foreach (string e in Env ?? [])
        {
            int eq = e.IndexOf('=');
            if (eq <= 0) throw new ArgumentException($"environment entry \"{e}\" is not NAME=VALUE");
            string key = e[..(eq + 1)];
            int at = env.FindIndex(x => x.StartsWith(key, StringComparison.Ordinal) || x == key[..^1]);
            if (at >= 0) env[at] = e; else env.Add(e);
        }
        var ports = c.ExposedPorts is null ? null : new Dictionary<string, EmptyObject>(c.ExposedPorts);
        foreach (string p in ExposedPorts ?? [])
        {
            string port = p.Contains('/') ? p : p + "/tcp";
            (ports ??= [])[port] = new EmptyObject();
        }
        var volumes = c.Volumes is null ? null : new Dictionary<string, EmptyObject>(c.Volumes);
        foreach (string v in Volumes ?? []) (volumes ??= [])[v] = new EmptyObject();
        var labels = c.Labels is null ? null : new Dictionary<string, string>(c.Labels);
        foreach (var kv in Labels ?? new Dictionary<string, string>()) (labels ??= [])[kv.Key] = kv.Value;
        foreach (string l in RemoveLabels ?? []) labels?.Remove(l);
        return c with
        {
            Cmd = Cmd ?? c.Cmd,
            Entrypoint = Entrypoint ?? c.Entrypoint,
            Env = env.Count == 0 ? c.Env : env,
            WorkingDir = WorkingDir ?? c.WorkingDir,
            User = User ?? c.User,
            ExposedPorts = ports,
            Volumes = volumes,
            Labels = labels,
            StopSignal = StopSignal ?? c.StopSignal,
        };
    }
}

/// <summary>A layer blob already in the content store, with the diff ID of its uncompressed tar.</summary>
public sealed record NewLayer(Descriptor Descriptor, Digest DiffId);

/// <summary>How the new image records the step that made it.</summary>
public sealed record CommitOptions
{
    public ConfigChanges Changes { get; init; } = ConfigChanges.None;
    /// <summary>The history entry's created_by (e.g. "/bin/sh -c make install", "vessel import").</summary>
    public string? CreatedBy { get; init; }
    public string? Comment { get; init; }
    public string? Author { get; init; }
    /// <summary>Creation time (default: now, truncated to seconds).</summary>
    public DateTimeOffset? Created { get; init; }
    /// <summary>Platform of an image built from scratch (default linux/amd64); ignored with a base image.</summary>
    public PlatformSpec? Platform { get; init; }
}

/// <summary>A newly written image: manifest and config descriptors plus the documents.</summary>
public sealed record WrittenImage(Descriptor Manifest, Descriptor Config, ImageManifest ManifestDocument, ImageConfig ConfigDocument)
{
    /// <summary>The image ID (config digest).</summary>
    public Digest Id => Config.Digest;
}

/// <summary>Writes a new image on top of an existing one (or from scratch): the base layers plus new ones,
/// a config with the extra diff_ids, a history entry and the config changes, then the config and manifest
/// blobs (children first). What <c>commit</c>, <c>build</c> and <c>import</c> use.</summary>
public static class ImageWriter
{
    /// <summary>Writes a complete config (the caller made diff_ids and history) and its OCI manifest over
    /// <paramref name="layers"/>, which must be in the content store: what a build writes at the end.</summary>
    public static WrittenImage WriteConfig(ContentStore content, ImageConfig config, IReadOnlyList<Descriptor> layers)
    {
        using StoreLock storeLock = StoreLock.Shared(content.Root);
        if (config.RootFs.DiffIds.Count != layers.Count)
            throw new ArgumentException($"{layers.Count} layers but {config.RootFs.DiffIds.Count} diff_ids");
        foreach (Descriptor l in layers)
            if (content.GetSize(l.Digest) != l.Size) throw new ContentException($"layer {l.Digest} is not in the content store");
        BlobInfo cfg = content.Write(OciJson.Serialize(config));
        var manifest = new ImageManifest
        {
            SchemaVersion = 2,
            MediaType = MediaTypes.OciManifest,
            Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = cfg.Digest, Size = cfg.Size },
            Layers = layers.Select(l => l with { MediaType = MediaTypes.ToOci(l.MediaType) }).ToList(),
        };
        BlobInfo m = content.Write(OciJson.Serialize(manifest));
        return new WrittenImage(new Descriptor { MediaType = MediaTypes.OciManifest, Digest = m.Digest, Size = m.Size }, manifest.Config, manifest, config);
    }

    public static WrittenImage Write(ContentStore content, ResolvedImage? baseImage, IReadOnlyList<NewLayer> layers, CommitOptions? options = null)
    {
        options ??= new CommitOptions();
        using StoreLock storeLock = StoreLock.Shared(content.Root);
        foreach (NewLayer l in layers)
        {
            if (!MediaTypes.IsLayer(l.Descriptor.MediaType))
                throw new ArgumentException($"{l.Descriptor.Digest} has media type \"{l.Descriptor.MediaType}\", not a layer");
            if (content.GetSize(l.Descriptor.Digest) is not long size)
                throw new ContentException($"layer {l.Descriptor.Digest} is not in the content store");
            if (size != l.Descriptor.Size)
                throw new ContentException($"layer {l.Descriptor.Digest} is {size} bytes, its descriptor says {l.Descriptor.Size}");
        }
        DateTimeOffset created = options.Created ?? DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.ToUnixTimeSeconds());
        PlatformSpec platform = options.Platform ?? PlatformSpec.Default;
        ImageConfig baseConfig = baseImage?.Config ?? new ImageConfig
        {
            Architecture = platform.Architecture,
            Os = platform.Os,
            Variant = platform.Variant,
            RootFs = new RootFs { Type = "layers", DiffIds = [] },
        };
        var history = baseConfig.History?.ToList() ?? [];
        var entry = new History
        {
            Created = created,
            CreatedBy = options.CreatedBy,
            Comment = options.Comment,
            Author = options.Author,
            EmptyLayer = layers.Count == 0 ? true : null,
        };
        for (int i = 0; i < Math.Max(1, layers.Count); i++) history.Add(entry);
        ContainerConfig? runtime = baseConfig.Config is null && options.Changes == ConfigChanges.None
            ? null : options.Changes.Apply(baseConfig.Config);
        ImageConfig config = baseConfig with
        {
            Created = created,
            Author = options.Author ?? baseConfig.Author,
            Config = runtime,
            RootFs = new RootFs { Type = "layers", DiffIds = [.. baseConfig.RootFs.DiffIds, .. layers.Select(l => l.DiffId)] },
            History = history,
        };
        byte[] cfgJson = OciJson.Serialize(config);
        BlobInfo cfg = content.Write(cfgJson);
        var baseLayers = baseImage?.Manifest.Layers.Select(l => l with { MediaType = MediaTypes.ToOci(l.MediaType) }) ?? [];
        var manifest = new ImageManifest
        {
            SchemaVersion = 2,
            MediaType = MediaTypes.OciManifest,
            Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = cfg.Digest, Size = cfg.Size },
            Layers = [.. baseLayers, .. layers.Select(l => l.Descriptor with { MediaType = MediaTypes.ToOci(l.Descriptor.MediaType) })],
        };
        byte[] mjson = OciJson.Serialize(manifest);
        BlobInfo m = content.Write(mjson);
        return new WrittenImage(
            new Descriptor { MediaType = MediaTypes.OciManifest, Digest = m.Digest, Size = m.Size },
            manifest.Config, manifest, config);
    }
}
