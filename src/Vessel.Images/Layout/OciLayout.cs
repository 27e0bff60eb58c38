using Vessel.Images.Content;
using Vessel.Images.Oci;

namespace Vessel.Images.Layout;

/// <summary>One image named by an image layout's index.json.</summary>
public sealed record LayoutImage(string? Name, Descriptor Target);

/// <summary>Result of an import: the top-level images and the blobs of multi-platform indexes that the
/// layout did not contain (a partial, single-platform copy of a multi-arch image is common).</summary>
public sealed record LayoutImportResult(IReadOnlyList<LayoutImage> Images, IReadOnlyList<Descriptor> MissingOptional, int BlobsImported);

/// <summary>What <see cref="OciLayout.Import"/> is doing with one blob: "copying" (before), "done" (after),
/// "exists" (already in the store, not read), "missing" (an optional blob the layout lacks).</summary>
public readonly record struct LayoutProgress(Descriptor Blob, string Action);

/// <summary>Progress and cancellation for <see cref="OciLayout.Import"/>.</summary>
public sealed record LayoutImportOptions
{
    /// <summary>Called before and after each blob, on the importing thread.</summary>
    public Action<LayoutProgress>? Progress { get; init; }
    /// <summary>Checked between blobs; a cancelled import keeps the complete blobs and tags nothing further.</summary>
    public CancellationToken Cancel { get; init; }
}

/// <summary>OCI image layout directories (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/…</c>).
/// Import verifies every blob's digest and size while copying it into the content store, children before
/// parents, so the store never holds a manifest whose config or layers it lacks. The layout is untrusted:
/// blob paths come only from validated digests, symlinked blobs are refused, sizes are enforced.</summary>
public static class OciLayout
{
    private const int MaxDepth = 8;

    public static LayoutImportResult Import(string layoutDir, ContentStore content, ReferenceStore? refs = null, string? repository = null,
        LayoutImportOptions? options = null)
    {
        Action<LayoutProgress>? progress = options?.Progress;
        CancellationToken cancel = options?.Cancel ?? default;
        layoutDir = Path.GetFullPath(layoutDir);
        string what = $"OCI layout {layoutDir}";
        byte[] layoutFile = ReadSmallFile(Path.Combine(layoutDir, "oci-layout"), 64 * 1024, what);
        OciLayoutFile lf = OciJson.ParseLayoutFile(layoutFile, $"{what}: oci-layout");
        if (lf.ImageLayoutVersion != MediaTypes.OciLayoutVersion)
            throw new ContentException($"{what}: unsupported imageLayoutVersion \"{lf.ImageLayoutVersion}\" (expected {MediaTypes.OciLayoutVersion})");
        byte[] indexJson = ReadSmallFile(Path.Combine(layoutDir, "index.json"), OciJson.MaxManifestSize, what);
        ImageIndex index = OciJson.ParseIndex(indexJson, $"{what}: index.json");

        var ctx = new ImportContext(layoutDir, content, what, progress, cancel);
        var images = new List<LayoutImage>();
        foreach (Descriptor d in index.Manifests)
        {
            cancel.ThrowIfCancellationRequested();
            if (!MediaTypes.IsManifest(d.MediaType) && !MediaTypes.IsIndex(d.MediaType))
                throw new ContentException($"{what}: index.json entry {d.Digest} has media type \"{d.MediaType}\", not a manifest or index");
            ctx.ImportTree(d, 0, optional: false);
            string? name = NameOf(d, repository);
            if (name is not null) refs?.Tag(name, d);
            images.Add(new LayoutImage(name, d));
        }
        return new LayoutImportResult(images, ctx.Missing, ctx.Imported);
    }

    /// <summary>Writes the given images (and every blob they reach that the store has) as an OCI image layout.
    /// Existing blobs in the directory are kept; index.json and oci-layout are replaced atomically.</summary>
    public static void Export(string layoutDir, ContentStore content, IEnumerable<LayoutImage> images)
    {
        layoutDir = Path.GetFullPath(layoutDir);
        string blobs = Path.Combine(layoutDir, "blobs", Digest.Sha256);
        Directory.CreateDirectory(blobs);
        var written = new HashSet<Digest>();
        var manifests = new List<Descriptor>();
        foreach (LayoutImage image in images)
        {
            ExportTree(image.Target, content, blobs, written, 0, optional: false);
            Descriptor d = image.Target;
            if (image.Name is not null)
            {
                var ann = new Dictionary<string, string>(d.Annotations ?? new Dictionary<string, string>())
                {
                    [Annotations.ContainerdImageName] = image.Name,
                };
                if (TagOf(image.Name) is string tag) ann[Annotations.RefName] = tag;
                d = d with { Annotations = ann };
            }
            manifests.Add(d);
        }
        AtomicFile.WriteAllBytes(Path.Combine(layoutDir, "oci-layout"),
            OciJson.Serialize(new OciLayoutFile { ImageLayoutVersion = MediaTypes.OciLayoutVersion }), Mode644);
        AtomicFile.WriteAllBytes(Path.Combine(layoutDir, "index.json"),
            OciJson.Serialize(new ImageIndex { SchemaVersion = 2, MediaType = MediaTypes.OciIndex, Manifests = manifests }), Mode644);
    }

    private const UnixFileMode Mode644 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;

    private static void ExportTree(Descriptor d, ContentStore content, string blobs, HashSet<Digest> written, int depth, bool optional)
    {
        if (depth > MaxDepth) throw new ContentException($"{d.Digest}: nested more than {MaxDepth} levels");
        if (!content.Exists(d.Digest))
        {
            if (optional) return;
            throw new ContentException($"cannot export: blob {d.Digest} ({d.MediaType}) is not in the content store");
        }
        if (!written.Add(d.Digest)) return;
        var resolver = new ImageResolver(content, new ReferenceStore(content));
        if (MediaTypes.IsIndex(d.MediaType))
            foreach (Descriptor m in resolver.ReadIndex(d, "export").Manifests) ExportTree(m, content, blobs, written, depth + 1, optional: true);
        else if (MediaTypes.IsManifest(d.MediaType))
        {
            ImageManifest m = resolver.ReadManifest(d, "export");
            ExportTree(m.Config, content, blobs, written, depth + 1, optional: false);
            foreach (Descriptor l in m.Layers) ExportTree(l, content, blobs, written, depth + 1, optional: l.Urls is { Count: > 0 });
        }
        string dest = Path.Combine(blobs, d.Digest.Hex);
        if (File.Exists(dest) && new FileInfo(dest).Length == d.Size && new FileInfo(dest).LinkTarget is null) return;
        string tmp = Path.Combine(blobs, $".tmp-{d.Digest.Hex}-{Guid.NewGuid():N}");
        try
        {
            using (VerifyingStream src = content.OpenRead(d.Digest, d.Size))
            using (var dst = new FileStream(tmp, Unix.CreateNew(Mode644)))
            {
                src.CopyTo(dst);
                dst.Flush(flushToDisk: true);
            }
            AtomicFile.Commit(tmp, dest);
        }
        finally { AtomicFile.TryDelete(tmp); }
    }

    private sealed class ImportContext(string layoutDir, ContentStore content, string what,
        Action<LayoutProgress>? progress, CancellationToken cancel)
    {
        private readonly HashSet<Digest> _done = [];
        public List<Descriptor> Missing { get; } = [];
        public int Imported { get; private set; }

        public void ImportTree(Descriptor d, int depth, bool optional)
        {
            if (depth > MaxDepth) throw new ContentException($"{what}: {d.Digest} is nested more than {MaxDepth} levels deep");
            if (_done.Contains(d.Digest)) return;
            cancel.ThrowIfCancellationRequested();
            string path = Path.Combine(layoutDir, "blobs", Digest.Sha256, d.Digest.Hex);
            var fi = new FileInfo(path);
            if (!fi.Exists)
            {
                if (content.Exists(d.Digest)) { _done.Add(d.Digest); progress?.Invoke(new(d, "exists")); return; }
                if (optional) { Missing.Add(d); progress?.Invoke(new(d, "missing")); return; }
                throw new ContentException($"{what}: blob {d.Digest} ({d.MediaType}) is missing");
            }
            if (fi.LinkTarget is not null)
                throw new ContentException($"{what}: blob {d.Digest} is a symbolic link, refused");
            if (fi.Length != d.Size)
                throw new DigestMismatchException(d.Digest, $"{what}: blob {d.Digest} is {fi.Length} bytes, its descriptor says {d.Size}");

            bool present = content.GetSize(d.Digest) == d.Size; // Write will not rewrite it
            if (MediaTypes.IsIndex(d.MediaType) || MediaTypes.IsManifest(d.MediaType))
            {
                if (d.Size > OciJson.MaxManifestSize)
                    throw new ContentException($"{what}: manifest {d.Digest} is {d.Size} bytes, more than {OciJson.MaxManifestSize}");
                byte[] json = File.ReadAllBytes(path);
                Digest actual = Digest.Compute(json);
                if (actual != d.Digest)
                    throw new DigestMismatchException(d.Digest, $"{what}: blob {d.Digest} hashes to {actual} (corrupt or tampered)");
                if (MediaTypes.IsIndex(d.MediaType))
                {
                    ImageIndex idx = OciJson.ParseIndex(json, $"{what}: index {d.Digest}");
                    CheckOwnMediaType(idx.MediaType, d);
                    foreach (Descriptor m in idx.Manifests)
                        if (MediaTypes.IsManifest(m.MediaType) || MediaTypes.IsIndex(m.MediaType))
                            ImportTree(m, depth + 1, optional: true);
                }
                else
                {
                    ImageManifest man = OciJson.ParseManifest(json, $"{what}: manifest {d.Digest}");
                    CheckOwnMediaType(man.MediaType, d);
                    ImportTree(man.Config, depth + 1, optional: false);
                    foreach (Descriptor l in man.Layers)
                        ImportTree(l, depth + 1, optional: l.Urls is { Count: > 0 }); // foreign layers may live elsewhere
                }
                cancel.ThrowIfCancellationRequested();
                progress?.Invoke(new(d, present ? "exists" : "copying"));
                content.Write(json, d.Digest);
            }
            else
            {
                progress?.Invoke(new(d, present ? "exists" : "copying"));
                using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
                content.Write(fs, d.Digest, d.Size);
            }
            if (!present) progress?.Invoke(new(d, "done"));
            _done.Add(d.Digest);
            Imported++;
        }

        private void CheckOwnMediaType(string? own, Descriptor d)
        {
            if (own is not null && own != d.MediaType)
                throw new ContentException($"{what}: {d.Digest} declares media type \"{own}\" but its descriptor says \"{d.MediaType}\"");
        }
    }

    private static byte[] ReadSmallFile(string path, long max, string what)
    {
        var fi = new FileInfo(path);
        if (!fi.Exists) throw new ContentException($"{what}: {Path.GetFileName(path)} is missing (not an OCI image layout)");
        if (fi.LinkTarget is not null) throw new ContentException($"{what}: {Path.GetFileName(path)} is a symbolic link, refused");
        if (fi.Length > max) throw new ContentException($"{what}: {Path.GetFileName(path)} is larger than {max} bytes");
        return File.ReadAllBytes(path);
    }

    /// <summary>The name to tag: io.containerd.image.name, else org.opencontainers.image.ref.name (a bare tag
    /// is prefixed with <paramref name="repository"/> when given).</summary>
    private static string? NameOf(Descriptor d, string? repository)
    {
        string? full = d.Annotation(Annotations.ContainerdImageName);
        if (!string.IsNullOrEmpty(full)) return full;
        string? refName = d.Annotation(Annotations.RefName);
        if (string.IsNullOrEmpty(refName)) return repository;
        if (refName.Contains('/') || refName.Contains(':') || refName.Contains('@')) return refName;
        return repository is null ? refName : $"{repository}:{refName}";
    }

    private static string? TagOf(string name)
    {
        if (name.Contains('@')) return null;
        int slash = name.LastIndexOf('/');
        int colon = name.LastIndexOf(':');
        return colon > slash ? name[(colon + 1)..] : "latest";
    }
}
