using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Snapshots;

namespace Vessel.Images.Oci;

/// <summary>One line of <c>history</c>: a config history entry and, unless it is an empty layer, the layer it made.</summary>
public sealed record HistoryEntry(DateTimeOffset? Created, string? CreatedBy, string? Comment, string? Author, bool EmptyLayer,
    Descriptor? Layer, Digest? DiffId);

/// <summary>What <c>inspect</c>, <c>history</c> and <c>images</c> show about an image (one platform of it).</summary>
public sealed record ImageInfo
{
    /// <summary>The image ID: the config digest.</summary>
    public required Digest Id { get; init; }
    public required IReadOnlyList<string> RepoTags { get; init; }
    /// <summary>"repository@digest" of the stored manifest (or index) for every name.</summary>
    public required IReadOnlyList<string> RepoDigests { get; init; }
    /// <summary>What the names point at (a manifest, or an index).</summary>
    public required Descriptor Target { get; init; }
    /// <summary>The manifest for the platform.</summary>
    public required Descriptor Manifest { get; init; }
    public DateTimeOffset? Created { get; init; }
    public string? Author { get; init; }
    public required string Architecture { get; init; }
    public required string Os { get; init; }
    public string? Variant { get; init; }
    /// <summary>Sum of the layer blobs as stored (compressed).</summary>
    public required long Size { get; init; }
    /// <summary>Sum of the unpacked snapshots, when every layer is unpacked; null otherwise.</summary>
    public long? UnpackedSize { get; init; }
    public required IReadOnlyList<Descriptor> Layers { get; init; }
    public required IReadOnlyList<Digest> DiffIds { get; init; }
    /// <summary>Env, Cmd, Entrypoint, WorkingDir, User, ExposedPorts, Labels, Volumes, StopSignal, ...</summary>
    public ContainerConfig Config { get; init; } = new();
    public required IReadOnlyList<HistoryEntry> History { get; init; }

    /// <summary>Information about the image <paramref name="name"/> for <paramref name="platform"/> (default linux/amd64).</summary>
    public static ImageInfo Inspect(ContentStore content, ReferenceStore refs, string name, PlatformSpec? platform = null, SnapshotStore? snapshots = null)
    {
        ResolvedImage img = new ImageResolver(content, refs).Resolve(name, platform);
        return FromResolved(img, refs.List(), snapshots);
    }

    /// <summary>Every image in the store, one entry per target (names pointing at the same manifest or index
    /// are merged); images with no manifest for the platform are skipped.</summary>
    public static IReadOnlyList<ImageInfo> List(ContentStore content, ReferenceStore refs, PlatformSpec? platform = null, SnapshotStore? snapshots = null)
    {
        var all = refs.List();
        var resolver = new ImageResolver(content, refs);
        var result = new List<ImageInfo>();
        foreach (var group in all.GroupBy(r => r.Target.Digest))
        {
            ResolvedImage img;
            try { img = resolver.Resolve(group.First().Name, group.First().Target, platform); }
            catch (ContentException) { continue; }
            result.Add(FromResolved(img, all, snapshots));
        }
        return result.OrderByDescending(i => i.Created ?? DateTimeOffset.MinValue).ThenBy(i => i.Id.Hex, StringComparer.Ordinal).ToList();
    }

    public static ImageInfo FromResolved(ResolvedImage img, IReadOnlyList<ImageReference> allRefs, SnapshotStore? snapshots = null)
    {
        var names = allRefs.Where(r => r.Target.Digest == img.Target.Digest).Select(r => r.Name).ToList();
        var tags = names.Where(n => !n.Contains('@') && !Digest.TryParse(n, out _)).ToList();
        var digests = names.Where(n => !Digest.TryParse(n, out _))
            .Select(n => Archive.ImageNames.Repository(n) + "@" + img.Target.Digest).Distinct().ToList();
        ImageConfig c = img.Config;
        var history = new List<HistoryEntry>();
        int layer = 0;
        foreach (History h in c.History ?? [])
        {
            bool empty = h.EmptyLayer == true;
            Descriptor? l = !empty && layer < img.Manifest.Layers.Count ? img.Manifest.Layers[layer] : null;
            Digest? diff = !empty && layer < c.RootFs.DiffIds.Count ? c.RootFs.DiffIds[layer] : null;
            if (!empty) layer++;
            history.Add(new HistoryEntry(h.Created, h.CreatedBy, h.Comment, h.Author, empty, l, diff));
        }
        long? unpacked = null;
        if (snapshots is not null && c.RootFs.DiffIds.Count > 0)
        {
            var chain = SnapshotStore.ChainIds(c.RootFs.DiffIds);
            if (chain.All(snapshots.IsComplete)) unpacked = chain.Sum(ch => DirSize.Measure(snapshots.FsPath(ch)));
        }
        return new ImageInfo
        {
            Id = img.Manifest.Config.Digest,
            RepoTags = tags,
            RepoDigests = digests,
            Target = img.Target,
            Manifest = img.ManifestDescriptor,
            Created = c.Created,
            Author = c.Author,
            Architecture = c.Architecture,
            Os = c.Os,
            Variant = c.Variant,
            Size = img.Manifest.Layers.Sum(l => l.Size),
            UnpackedSize = unpacked,
            Layers = img.Manifest.Layers,
            DiffIds = c.RootFs.DiffIds,
            Config = c.Config ?? new ContainerConfig(),
            History = history,
        };
    }
}
