using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Layers;
using Vessel.Images.Oci;

namespace Vessel.Images.Archive;

/// <summary>One entry of a docker-archive's manifest.json.</summary>
public sealed record DockerManifestItem
{
    [JsonPropertyName("Config")] public string? Config { get; init; }
    [JsonPropertyName("RepoTags")] public IReadOnlyList<string>? RepoTags { get; init; }
    [JsonPropertyName("Layers")] public IReadOnlyList<string>? Layers { get; init; }
    [JsonPropertyName("Parent")] public string? Parent { get; init; }
    [JsonPropertyName("LayerSources")] public IReadOnlyDictionary<string, Descriptor>? LayerSources { get; init; }
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, AllowTrailingCommas = false,
    ReadCommentHandling = JsonCommentHandling.Disallow, MaxDepth = 32)]
[JsonSerializable(typeof(List<DockerManifestItem>))]
[JsonSerializable(typeof(Dictionary<string, Dictionary<string, string>>))]
internal sealed partial class DockerArchiveJsonContext : JsonSerializerContext;

/// <summary>An image a load put into the store: its ID (config digest), the manifest it is referenced by
/// and the names it was tagged with.</summary>
public sealed record LoadedImage(Digest Id, Descriptor Manifest, IReadOnlyList<string> Names, IReadOnlyList<Digest> DiffIds);

/// <summary>What a save wrote.</summary>
public sealed record SavedImage(Digest Id, Descriptor Manifest, IReadOnlyList<string> RepoTags);

/// <summary>The <c>docker save</c> / <c>docker load</c> archive format. Save writes what Docker 25+ writes: the
/// archive is both a docker-archive (<c>manifest.json</c>, <c>repositories</c>) and an OCI image layout
/// (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/…</c>), configs byte-for-byte, layers uncompressed
/// (blob digest = diff ID). Load reads that form, the older one (<c>&lt;id&gt;.json</c>, <c>&lt;id&gt;/layer.tar</c>,
/// links between layer files) and what skopeo writes; layer files may be compressed and are stored as they
/// are, the manifest is synthesised with the real digests and sizes, and every layer's diff ID must equal
/// the config's rootfs.diff_ids entry.</summary>
public static class DockerArchive
{
    /// <summary>Most layers per image (overlayfs stacks at most 500 lower dirs).</summary>
    public const int MaxLayers = 500;
    public const int MaxImages = 10_000;

    /// <summary>Loads every image of the archive; images without RepoTags are kept under their ID
    /// (<c>sha256:&lt;hex&gt;</c>) so that garbage collection does not remove them.</summary>
    /// <param name="what">How the archive is named in error messages (e.g. the file name).</param>
    public static IReadOnlyList<LoadedImage> Load(Stream tar, ContentStore content, ReferenceStore refs, string? what = null)
    {
        what = $"docker-archive {what ?? "(stream)"}";
        using StoreLock storeLock = StoreLock.Shared(content.Root);
        ArchiveReader archive = ArchiveReader.Read(tar, content, what);
        if (!archive.Files.TryGetValue("manifest.json", out ArchiveFile? manifestFile))
        {
            string hint = archive.Files.ContainsKey("index.json") ? " (it is an OCI image layout: load it as an oci-archive)"
                : archive.Files.ContainsKey("repositories") ? " (a pre-1.10 Docker archive, which is not supported)" : "";
            throw new ArchiveException($"{what}: manifest.json is missing{hint}");
        }
        List<DockerManifestItem> items;
        try
        {
            items = JsonSerializer.Deserialize(manifestFile.Data!, DockerArchiveJsonContext.Default.ListDockerManifestItem)
                ?? throw new ArchiveException($"{what}: manifest.json is null");
        }
        catch (JsonException e) { throw new ArchiveException($"{what}: manifest.json: invalid JSON: {e.Message}", e); }
        if (items.Count == 0) throw new ArchiveException($"{what}: manifest.json lists no images");
        if (items.Count > MaxImages) throw new ArchiveException($"{what}: manifest.json lists {items.Count} images, more than {MaxImages}");

        // Validate everything first, then write: a bad image anywhere leaves no tags behind.
        var plans = new List<(DockerManifestItem Item, ArchiveFile Config, ImageConfig Parsed, List<(ArchiveFile? File, Descriptor Desc)> Layers)>();
        for (int i = 0; i < items.Count; i++)
            plans.Add(Plan(archive, content, items[i], $"{what}: manifest.json: image {i + 1}"));

        var loaded = new List<LoadedImage>();
        foreach (var (item, configFile, config, layers) in plans)
        {
            foreach (var layer in layers) layer.File?.Store(content);
            BlobInfo cfg = configFile.Store(content);
            var manifest = new ImageManifest
            {
                SchemaVersion = 2,
                MediaType = MediaTypes.OciManifest,
                Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = cfg.Digest, Size = cfg.Size },
                Layers = layers.Select(l => l.Desc).ToList(),
            };
            byte[] mjson = OciJson.Serialize(manifest);
            BlobInfo m = content.Write(mjson);
            var desc = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = m.Digest, Size = m.Size };
            var names = new List<string>();
            foreach (string tag in item.RepoTags ?? [])
                if (!names.Contains(tag)) names.Add(tag);
            if (names.Count == 0) names.Add(cfg.Digest.ToString());
            foreach (string n in names) refs.Tag(n, desc);
            loaded.Add(new LoadedImage(cfg.Digest, desc, names, config.RootFs.DiffIds));
        }
        return loaded;
    }

    private static (DockerManifestItem, ArchiveFile, ImageConfig, List<(ArchiveFile?, Descriptor)>) Plan(
        ArchiveReader archive, ContentStore content, DockerManifestItem item, string what)
    {
        if (string.IsNullOrEmpty(item.Config)) throw new ArchiveException($"{what}: has no Config");
        ArchiveFile cfgFile = archive.Resolve(item.Config, out string? err)
            ?? throw new ArchiveException($"{what}: config {LayerException.Quote(item.Config)} {err}");
        if (cfgFile.Size > OciJson.MaxConfigSize)
            throw new ArchiveException($"{what}: config {LayerException.Quote(item.Config)} is {cfgFile.Size} bytes, more than the {OciJson.MaxConfigSize} allowed");
        byte[] cfgBytes;
        using (Stream s = cfgFile.Open(content))
        {
            cfgBytes = new byte[cfgFile.Size];
            s.ReadExactly(cfgBytes);
        }
        ImageConfig config;
        try { config = OciJson.ParseConfig(cfgBytes, $"{what}: config {LayerException.Quote(item.Config)}"); }
        catch (ContentException e) { throw new ArchiveException(e.Message, e); }
        if (config.RootFs.Type != "layers")
            throw new ArchiveException($"{what}: config has rootfs type \"{config.RootFs.Type}\", expected \"layers\"");
        foreach (string tag in item.RepoTags ?? [])
        {
            try { ReferenceStore.ValidateName(tag); }
            catch (ArgumentException e) { throw new ArchiveException($"{what}: RepoTags: {e.Message}"); }
        }
        IReadOnlyList<string> layerPaths = item.Layers ?? [];
        if (layerPaths.Count > MaxLayers) throw new ArchiveException($"{what}: has {layerPaths.Count} layers, more than {MaxLayers}");
        if (layerPaths.Count != config.RootFs.DiffIds.Count)
            throw new ArchiveException($"{what}: manifest.json lists {layerPaths.Count} layers but the config has {config.RootFs.DiffIds.Count} diff_ids");

        var layers = new List<(ArchiveFile?, Descriptor)>();
        for (int i = 0; i < layerPaths.Count; i++)
        {
            if (string.IsNullOrEmpty(layerPaths[i])) throw new ArchiveException($"{what}: layer {i + 1} has an empty path");
            string lw = $"{what}: layer {i + 1} {LayerException.Quote(layerPaths[i])}";
            Digest want = config.RootFs.DiffIds[i];
            ArchiveFile? file = archive.Resolve(layerPaths[i], out err);
            if (file is null)
            {
                // A foreign (non-distributable) layer may be absent; LayerSources says where it lives.
                if (item.LayerSources is not null && item.LayerSources.TryGetValue(want.ToString(), out Descriptor? src)
                    && src.Urls is { Count: > 0 } && MediaTypes.IsLayer(src.MediaType))
                {
                    layers.Add((null, src with { Annotations = null, Platform = null }));
                    continue;
                }
                throw new ArchiveException($"{lw} {err}");
            }
            LayerCompression compression;
            Digest diffId;
            try
            {
                using Stream raw = file.Open(content);
                using Stream tar = Decompression.Open(raw, out compression);
                diffId = compression == LayerCompression.None && file.Blob is not null ? file.Digest : Digest.Compute(tar);
            }
            catch (Exception e) when (e is InvalidDataException or IOException or ZstdSharp.ZstdException)
            {
                throw new ArchiveException($"{lw} cannot be read: {e.Message}", e);
            }
            if (diffId != want)
                throw new ArchiveException($"{lw} has diff ID {diffId}, but the config lists {want}");
            string mediaType = compression switch
            {
                LayerCompression.Gzip => MediaTypes.OciLayerGzip,
                LayerCompression.Zstd => MediaTypes.OciLayerZstd,
                _ => MediaTypes.OciLayer,
            };
            layers.Add((file, new Descriptor { MediaType = mediaType, Digest = file.Digest, Size = file.Size }));
        }
        return (item, cfgFile, config, layers);
    }

    /// <summary>Writes the named images as a docker-archive that <c>docker load</c> (and skopeo, podman,
    /// containerd) read. Names resolving to the same image become one entry with several RepoTags; a name
    /// that is an image ID adds the image without a tag.</summary>
    public static IReadOnlyList<SavedImage> Save(Stream output, ContentStore content, ReferenceStore refs, IReadOnlyList<string> names, PlatformSpec? platform = null)
    {
        if (names.Count == 0) throw new ArgumentException("nothing to save: no image names given", nameof(names));
        var resolver = new ImageResolver(content, refs);
        var images = new List<(ResolvedImage Image, List<string> Tags)>();
        foreach (string name in names)
        {
            ResolvedImage img = resolver.Resolve(name, platform);
            var entry = images.FirstOrDefault(x => x.Image.Manifest.Config.Digest == img.Manifest.Config.Digest);
            if (entry.Image is null) { entry = (img, []); images.Add(entry); }
            if (ImageNames.WithTag(name) is string tagged)
            {
                string familiar = ImageNames.Familiar(tagged);
                if (!entry.Tags.Contains(familiar)) entry.Tags.Add(familiar);
            }
        }

        // Plan every blob (hex → source) so the archive can be written in sorted, deterministic order.
        var blobs = new SortedDictionary<string, BlobSource>(StringComparer.Ordinal);
        var items = new List<DockerManifestItem>();
        var indexEntries = new List<Descriptor>();
        var repositories = new SortedDictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        var saved = new List<SavedImage>();
        foreach ((ResolvedImage img, List<string> tags) in images)
        {
            if (img.Config.RootFs.DiffIds.Count == 0) throw new ArchiveException($"cannot save {img.Name}: the image has no layers");
            Descriptor cfgDesc = img.Manifest.Config;
            byte[] cfg = content.ReadAllBytes(cfgDesc.Digest, OciJson.MaxConfigSize, cfgDesc.Size);
            long mtime = img.Config.Created?.ToUnixTimeSeconds() ?? 0;
            blobs[cfgDesc.Digest.Hex] = new BlobSource(cfg, null, null, cfg.Length, Math.Max(0, mtime));
            var layers = new List<Descriptor>();
            for (int i = 0; i < img.Manifest.Layers.Count; i++)
            {
                Descriptor l = img.Manifest.Layers[i];
                Digest diffId = img.Config.RootFs.DiffIds[i];
                if (!blobs.TryGetValue(diffId.Hex, out BlobSource? src))
                {
                    src = PlanLayer(content, img.Name, l, diffId, Math.Max(0, mtime));
                    blobs[diffId.Hex] = src;
                }
                layers.Add(new Descriptor { MediaType = MediaTypes.OciLayer, Digest = diffId, Size = src.Size });
            }
            var manifest = new ImageManifest
            {
                SchemaVersion = 2,
                MediaType = MediaTypes.OciManifest,
                Config = new Descriptor { MediaType = MediaTypes.OciConfig, Digest = cfgDesc.Digest, Size = cfg.Length },
                Layers = layers,
            };
            byte[] mjson = OciJson.Serialize(manifest);
            Digest md = Digest.Compute(mjson);
            blobs[md.Hex] = new BlobSource(mjson, null, null, mjson.Length, 0);
            var mdesc = new Descriptor { MediaType = MediaTypes.OciManifest, Digest = md, Size = mjson.Length, Platform = img.Config.Platform };
            if (tags.Count == 0) indexEntries.Add(mdesc);
            foreach (string tag in tags)
            {
                string qualified = ImageNames.Qualified(tag);
                indexEntries.Add(mdesc with
                {
                    Annotations = new Dictionary<string, string>
                    {
                        [Annotations.ContainerdImageName] = qualified,
                        [Annotations.RefName] = ImageNames.Tag(tag)!,
                    },
                });
                string repo = ImageNames.Repository(tag);
                if (!repositories.TryGetValue(repo, out var byTag)) repositories[repo] = byTag = new Dictionary<string, string>(StringComparer.Ordinal);
                byTag[ImageNames.Tag(tag)!] = img.Config.RootFs.DiffIds[^1].Hex;
            }
            items.Add(new DockerManifestItem
            {
                Config = "blobs/sha256/" + cfgDesc.Digest.Hex,
                RepoTags = tags.Count == 0 ? null : tags,
                Layers = img.Config.RootFs.DiffIds.Select(d => "blobs/sha256/" + d.Hex).ToList(),
            });
            saved.Add(new SavedImage(cfgDesc.Digest, new Descriptor { MediaType = MediaTypes.OciManifest, Digest = md, Size = mjson.Length }, tags));
        }

        using var w = new RawTarWriter(output);
        w.WriteEntry(Dir("blobs/"));
        w.WriteEntry(Dir("blobs/sha256/"));
        foreach ((string hex, BlobSource src) in blobs)
        {
            using Stream data = src.Open(content);
            w.WriteEntry(File("blobs/sha256/" + hex, src.Size, src.MTime), data);
        }
        byte[] index = OciJson.Serialize(new ImageIndex { SchemaVersion = 2, MediaType = MediaTypes.OciIndex, Manifests = indexEntries });
        WriteSmall(w, "index.json", index);
        WriteSmall(w, "manifest.json", [.. JsonSerializer.SerializeToUtf8Bytes(items, DockerArchiveJsonContext.Default.ListDockerManifestItem), (byte)'\n']);
        WriteSmall(w, "oci-layout", Encoding.UTF8.GetBytes($"{{\"imageLayoutVersion\": \"{MediaTypes.OciLayoutVersion}\"}}"));
        if (repositories.Count > 0)
        {
            var repos = new Dictionary<string, Dictionary<string, string>>(repositories, StringComparer.Ordinal);
            WriteSmall(w, "repositories", [.. JsonSerializer.SerializeToUtf8Bytes(repos, DockerArchiveJsonContext.Default.DictionaryStringDictionaryStringString), (byte)'\n']);
        }
        w.Finish();
        return saved;
    }

    /// <summary>Where a blob of the archive comes from: bytes, a stored blob as is, or a stored blob
    /// decompressed (then <see cref="Size"/> was measured in a first pass and the diff ID checked).</summary>
    private sealed record BlobSource(byte[]? Bytes, Descriptor? Stored, LayerCompression? Decompress, long Size, long MTime)
    {
        public Stream Open(ContentStore content)
        {
            if (Bytes is not null) return new MemoryStream(Bytes, writable: false);
            VerifyingStream raw = content.OpenRead(Stored!.Digest, Stored.Size);
            return Decompress is LayerCompression.None or null ? raw : Decompression.Open(raw, out _);
        }
    }

    private static BlobSource PlanLayer(ContentStore content, string image, Descriptor layer, Digest diffId, long mtime)
    {
        if (!content.Exists(layer.Digest))
            throw new ArchiveException($"cannot save {image}: layer {layer.Digest} is not in the content store{(layer.Urls is { Count: > 0 } ? " (a foreign layer that was never fetched)" : "")}");
        LayerCompression compression;
        using (VerifyingStream head = content.OpenRead(layer.Digest, layer.Size))
        {
            byte[] magic = new byte[6];
            int n = head.ReadAtLeast(magic, magic.Length, throwOnEndOfStream: false);
            compression = Decompression.Detect(magic.AsSpan(0, n));
        }
        if (compression == LayerCompression.None)
        {
            if (layer.Digest != diffId)
                throw new ArchiveException($"cannot save {image}: layer {layer.Digest} is uncompressed but its config lists diff_id {diffId}");
            return new BlobSource(null, layer, LayerCompression.None, layer.Size, mtime);
        }
        // First pass: the uncompressed size (a tar header needs it up front) and the diff ID check.
        using VerifyingStream raw = content.OpenRead(layer.Digest, layer.Size);
        using Stream tar = Decompression.Open(raw, out _);
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        byte[] buf = new byte[128 * 1024];
        long size = 0;
        int r;
        while ((r = tar.Read(buf)) > 0) { hash.AppendData(buf, 0, r); size += r; }
        raw.VerifyToEnd();
        Digest actual = Digest.FromHash(hash.GetHashAndReset());
        if (actual != diffId)
            throw new ArchiveException($"cannot save {image}: layer {layer.Digest} decompresses to {actual}, but its config lists diff_id {diffId}");
        return new BlobSource(null, layer, compression, size, mtime);
    }

    internal static TarHeader Dir(string name) => new() { Name = name, TypeFlag = TarHeader.Directory, Mode = 0x1ed };

    internal static TarHeader File(string name, long size, long mtime = 0) =>
        new() { Name = name, TypeFlag = TarHeader.Regular, Mode = 0x1a4, Size = size, MTime = mtime };

    internal static void WriteSmall(RawTarWriter w, string name, byte[] data)
    {
        using var ms = new MemoryStream(data, writable: false);
        w.WriteEntry(File(name, data.Length), ms);
    }
}
