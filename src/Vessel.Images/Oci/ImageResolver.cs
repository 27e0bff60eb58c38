using Vessel.Images.Content;

namespace Vessel.Images.Oci;

/// <summary>An image resolved to one platform: the manifest to run and its config.</summary>
public sealed record ResolvedImage(
    string Name,
    Descriptor Target,
    Descriptor ManifestDescriptor,
    ImageManifest Manifest,
    ImageConfig Config);

/// <summary>Reads manifests, indexes and configs from the content store (verified, size-capped) and resolves
/// a (possibly multi-arch) image to the manifest for one platform, linux/amd64 unless overridden.</summary>
public sealed class ImageResolver(ContentStore content, ReferenceStore refs)
{
    private const int MaxIndexDepth = 4;

    public ResolvedImage Resolve(string name, PlatformSpec? platform = null)
    {
        Descriptor target = refs.Resolve(name) ?? throw new ContentException($"image {name}: no such image");
        return Resolve(name, target, platform);
    }

    public ResolvedImage Resolve(string name, Descriptor target, PlatformSpec? platform = null)
    {
        platform ??= PlatformSpec.Default;
        Descriptor manifestDesc = SelectManifest(name, target, platform, 0);
        ImageManifest manifest = ReadManifest(manifestDesc, name);
        if (!MediaTypes.IsConfig(manifest.Config.MediaType))
            throw new ContentException($"image {name}: manifest {manifestDesc.Digest} has config media type \"{manifest.Config.MediaType}\", not an image config (an artifact, not a runnable image)");
        ImageConfig config = ReadConfig(manifest.Config, name);
        if (config.RootFs.DiffIds.Count != manifest.Layers.Count)
            throw new ContentException($"image {name}: manifest {manifestDesc.Digest} has {manifest.Layers.Count} layers but its config lists {config.RootFs.DiffIds.Count} diff_ids");
        if (target.Digest == manifestDesc.Digest && !platform.Matches(config.Platform))
            throw new ContentException($"image {name}: is {config.Platform}, not {platform}");
        return new ResolvedImage(name, target, manifestDesc, manifest, config);
    }

    private Descriptor SelectManifest(string name, Descriptor desc, PlatformSpec platform, int depth)
    {
        if (MediaTypes.IsManifest(desc.MediaType)) return desc;
        if (!MediaTypes.IsIndex(desc.MediaType))
            throw new ContentException($"image {name}: {desc.Digest} has media type \"{desc.MediaType}\", neither manifest nor index");
        if (depth >= MaxIndexDepth)
            throw new ContentException($"image {name}: indexes nested more than {MaxIndexDepth} deep");
        ImageIndex index = ReadIndex(desc, name);
        foreach (Descriptor m in index.Manifests)
        {
            if (!platform.Matches(m.Platform)) continue;
            if (MediaTypes.IsManifest(m.MediaType) || MediaTypes.IsIndex(m.MediaType))
                return SelectManifest(name, m, platform, depth + 1);
        }
        string available = string.Join(", ", index.Manifests.Where(m => m.Platform is not null && m.Platform.Os != "unknown")
            .Select(m => m.Platform!.ToString()).Distinct());
        throw new ContentException($"image {name}: no manifest for platform {platform} in index {desc.Digest} (available: {(available.Length == 0 ? "none" : available)})");
    }

    public ImageManifest ReadManifest(Descriptor d, string name)
    {
        byte[] json = content.ReadAllBytes(d.Digest, OciJson.MaxManifestSize, d.Size);
        CheckMediaType(OciJson.DeclaredMediaType(json), d, name);
        ImageManifest m = OciJson.ParseManifest(json, $"image {name}: manifest {d.Digest}");
        if (m.SchemaVersion != 2) throw new ContentException($"image {name}: manifest {d.Digest} has schemaVersion {m.SchemaVersion}, expected 2");
        return m;
    }

    public ImageIndex ReadIndex(Descriptor d, string name)
    {
        byte[] json = content.ReadAllBytes(d.Digest, OciJson.MaxManifestSize, d.Size);
        CheckMediaType(OciJson.DeclaredMediaType(json), d, name);
        ImageIndex i = OciJson.ParseIndex(json, $"image {name}: index {d.Digest}");
        if (i.SchemaVersion != 2) throw new ContentException($"image {name}: index {d.Digest} has schemaVersion {i.SchemaVersion}, expected 2");
        return i;
    }

    public ImageConfig ReadConfig(Descriptor d, string name)
    {
        byte[] json = content.ReadAllBytes(d.Digest, OciJson.MaxConfigSize, d.Size);
        return OciJson.ParseConfig(json, $"image {name}: config {d.Digest}");
    }

    // A document whose own mediaType disagrees with the descriptor that led to it is refused: that mismatch
    // is how manifest/index confusion attacks work.
    private static void CheckMediaType(string? own, Descriptor d, string name)
    {
        if (own is not null && own != d.MediaType)
            throw new ContentException($"image {name}: {d.Digest} declares media type \"{own}\" but its descriptor says \"{d.MediaType}\"");
    }
}
