using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Layers;
using Vessel.Images.Layout;
using Vessel.Images.Oci;

namespace Vessel.Images.Archive;

/// <summary>An OCI image layout packed as a tar (<c>oci-archive:</c> in skopeo/podman/buildah).
/// Export streams the layout straight from the content store (no temp copy). Import unpacks only the
/// layout's own files (<c>oci-layout</c>, <c>index.json</c>, <c>blobs/sha256/&lt;hex&gt;</c>; everything else,
/// e.g. a docker-archive's manifest.json, is skipped) into a temp dir on the store's filesystem and hands
/// it to <see cref="OciLayout.Import"/>, which verifies every blob; the temp dir is removed afterwards.</summary>
public static class OciArchive
{
    private const int MaxDepth = 8;

    public static void Export(Stream output, ContentStore content, IEnumerable<LayoutImage> images)
    {
        var resolver = new ImageResolver(content, new ReferenceStore(content));
        var blobs = new SortedDictionary<string, Descriptor>(StringComparer.Ordinal);
        var manifests = new List<Descriptor>();
        foreach (LayoutImage image in images)
        {
            Collect(image.Target, content, resolver, blobs, 0, optional: false);
            Descriptor d = image.Target;
            if (image.Name is not null)
            {
                var ann = new Dictionary<string, string>(d.Annotations ?? new Dictionary<string, string>())
                {
                    [Annotations.ContainerdImageName] = image.Name,
                };
                if (ImageNames.Tag(image.Name) is string tag) ann[Annotations.RefName] = tag;
                d = d with { Annotations = ann };
            }
            manifests.Add(d);
        }
        using var w = new RawTarWriter(output);
        w.WriteEntry(DockerArchive.Dir("blobs/"));
        w.WriteEntry(DockerArchive.Dir("blobs/sha256/"));
        foreach ((string hex, Descriptor d) in blobs)
        {
            using VerifyingStream s = content.OpenRead(d.Digest, d.Size);
            w.WriteEntry(DockerArchive.File("blobs/sha256/" + hex, d.Size), s);
            s.VerifyToEnd();
        }
        DockerArchive.WriteSmall(w, "index.json", OciJson.Serialize(new ImageIndex { SchemaVersion = 2, MediaType = MediaTypes.OciIndex, Manifests = manifests }));
        DockerArchive.WriteSmall(w, "oci-layout", OciJson.Serialize(new OciLayoutFile { ImageLayoutVersion = MediaTypes.OciLayoutVersion }));
        w.Finish();
    }

    /// <summary>Exports images by name from the reference store.</summary>
    public static void Export(Stream output, ContentStore content, ReferenceStore refs, IEnumerable<string> names) =>
        Export(output, content, names.Select(n => new LayoutImage(n, refs.Resolve(n) ?? throw new ContentException($"image {n}: no such image"))).ToList());

    private static void Collect(Descriptor d, ContentStore content, ImageResolver resolver, SortedDictionary<string, Descriptor> blobs, int depth, bool optional)
    {
        if (depth > MaxDepth) throw new ContentException($"{d.Digest}: nested more than {MaxDepth} levels");
        if (!content.Exists(d.Digest))
        {
            if (optional) return;
            throw new ContentException($"cannot export: blob {d.Digest} ({d.MediaType}) is not in the content store");
        }
        if (blobs.ContainsKey(d.Digest.Hex)) return;
        blobs[d.Digest.Hex] = d;
        if (MediaTypes.IsIndex(d.MediaType))
            foreach (Descriptor m in resolver.ReadIndex(d, "export").Manifests) Collect(m, content, resolver, blobs, depth + 1, optional: true);
        else if (MediaTypes.IsManifest(d.MediaType))
        {
            ImageManifest m = resolver.ReadManifest(d, "export");
            Collect(m.Config, content, resolver, blobs, depth + 1, optional: false);
            foreach (Descriptor l in m.Layers) Collect(l, content, resolver, blobs, depth + 1, optional: l.Urls is { Count: > 0 });
        }
    }

    /// <param name="what">How the archive is named in error messages.</param>
    public static LayoutImportResult Import(Stream input, ContentStore content, ReferenceStore? refs = null, string? repository = null, string? what = null)
    {
        what = $"oci-archive {what ?? "(stream)"}";
        using StoreLock storeLock = StoreLock.Shared(content.Root);
        string tmp = Path.Combine(content.IngestDir, ".oci-archive-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path.Combine(tmp, "blobs", Digest.Sha256));
        try
        {
            Unpack(input, tmp, what);
            try
            {
                return OciLayout.Import(tmp, content, refs, repository);
            }
            catch (ContentException e) when (e is not ArchiveException)
            {
                // OciLayout names the temp dir; name the archive instead.
                string msg = e.Message.Replace($"OCI layout {tmp}", what, StringComparison.Ordinal);
                throw new ArchiveException(msg.StartsWith(what, StringComparison.Ordinal) ? msg : $"{what}: {msg}", e);
            }
        }
        finally
        {
            try { FsOps.RemoveTree(tmp); } catch (IOException) { }
        }
    }

    private static string EntryPrefix(string? entry, string sep = " ") => entry is null ? "" : $"entry {LayerException.Quote(entry)}{sep}";

    private static void Unpack(Stream input, string dir, string what)
    {
        var limits = new ExtractionLimits { MaxEntries = 1_000_000, MaxTotalBytes = 1L << 40, MaxTrailingBytes = 16 * 1024 * 1024 };
        Stream tar;
        try { tar = Decompression.Open(input, out _); }
        catch (InvalidDataException e) { throw new ArchiveException($"{what}: {e.Message}", e); }
        string? current = null;
        try
        {
            using var guard = new TarGuardStream(tar, limits, (entry, reason) => new LayerException("archive", null, entry, reason));
            using (var reader = new System.Formats.Tar.TarReader(guard, leaveOpen: true))
            {
                System.Formats.Tar.TarEntry? entry;
                while ((entry = reader.GetNextEntry(copyData: false)) is not null)
                {
                    guard.Records.TryDequeue(out _);
                    current = entry.Name;
                    string name = string.Join('/', entry.Name.Split('/').Where(c => c.Length > 0 && c != "."));
                    bool layoutFile = name is "oci-layout" or "index.json" || ArchiveReader.BlobNameDigest(name) is not null;
                    if (!layoutFile) continue; // directories, docker-archive extras, anything else: not part of the layout
                    if (entry.EntryType is not (System.Formats.Tar.TarEntryType.RegularFile or System.Formats.Tar.TarEntryType.V7RegularFile))
                        throw new ArchiveException($"{what}: entry {LayerException.Quote(entry.Name)} is not a regular file (type '{(char)entry.EntryType}')");
                    if (name is "oci-layout" or "index.json" && entry.Length > ArchiveReader.MaxMetadataSize)
                        throw new ArchiveException($"{what}: entry {LayerException.Quote(entry.Name)} is {entry.Length} bytes, more than the {ArchiveReader.MaxMetadataSize} allowed");
                    // The path is rebuilt from validated parts only: nothing in the archive can steer it.
                    string dest = name.Contains('/') ? Path.Combine(dir, "blobs", Digest.Sha256, ArchiveReader.BlobNameDigest(name)!.Value.Hex) : Path.Combine(dir, name);
                    FileStream fs;
                    try { fs = new FileStream(dest, FileMode.CreateNew, FileAccess.Write); }
                    catch (IOException) when (File.Exists(dest)) { throw new ArchiveException($"{what}: entry {LayerException.Quote(entry.Name)} appears twice in the archive"); }
                    using (fs) entry.DataStream?.CopyTo(fs);
                }
            }
            current = null;
            guard.Finish();
            input.CopyTo(Stream.Null);
        }
        catch (ArchiveException) { throw; }
        catch (LayerException e) { throw new ArchiveException($"{what}: {EntryPrefix(e.EntryName ?? current)}{e.Reason}", e); }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or NotSupportedException or FormatException
                                      or InvalidOperationException or IOException or ArgumentException or ZstdSharp.ZstdException)
        {
            throw new ArchiveException($"{what}: {EntryPrefix(current, ": ")}not a valid tar stream: {e.Message}", e);
        }
        finally { tar.Dispose(); }
    }
}
