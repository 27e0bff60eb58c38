using System.Formats.Tar;
using System.IO.Compression;
using Vessel.Images.Build;
using Vessel.Images.Content;
using Vessel.Images.Gc;
using Vessel.Images.Layers;
using Vessel.Images.Oci;

namespace Vessel.Images.Archive;

public sealed record RootfsImportResult(string Name, WrittenImage Image, NewLayer Layer);

/// <summary><c>vessel import ROOTFS.tar NAME:TAG</c>: a tar of a root filesystem (plain, gzip or zstd) becomes a
/// one-layer image. The tar is not rewritten: its uncompressed bytes are the layer (diff ID = their sha256)
/// and are gzip-compressed into the content store in the same pass. It is checked on the way (valid tar,
/// no entry climbing out of the root, no unsupported entry types, hard links to earlier entries, the
/// extraction limits) so a bad tarball fails here and not at the first run.</summary>
public static class RootfsImport
{
    public static RootfsImportResult Import(Stream rootfs, ContentStore content, ReferenceStore refs, string name, CommitOptions? options = null, string? what = null)
    {
        ReferenceStore.ValidateName(name);
        what = $"rootfs {what ?? "(stream)"}";
        options ??= new CommitOptions();
        options = options with { CreatedBy = options.CreatedBy ?? "vessel import", Comment = options.Comment ?? "imported from a rootfs tarball" };
        using StoreLock storeLock = StoreLock.Shared(content.Root);
        NewLayer layer = CompressLayer(rootfs, content, what);
        WrittenImage image = ImageWriter.Write(content, null, [layer], options);
        refs.Tag(name, image.Manifest);
        return new RootfsImportResult(name, image, layer);
    }

    /// <summary>Validates a layer tar and stores it gzip-compressed; returns its descriptor and diff ID.</summary>
    public static NewLayer CompressLayer(Stream input, ContentStore content, string what, ExtractionLimits? limits = null)
    {
        limits ??= ExtractionLimits.Default;
        Stream tar;
        try { tar = Decompression.Open(input, out _); }
        catch (InvalidDataException e) { throw new ArchiveException($"{what}: {e.Message}", e); }
        using BlobWriter blob = content.CreateWriter();
        string? current = null;
        Digest diffId;
        try
        {
            using (var gz = new GZipStream(blob, CompressionLevel.Optimal, leaveOpen: true))
            using (var guard = new TarGuardStream(new TeeStream(tar, gz), limits, (entry, reason) => new LayerException("rootfs", null, entry, reason)))
            {
                var seen = new HashSet<string>(StringComparer.Ordinal);
                using (var reader = new TarReader(guard, leaveOpen: true))
                {
                    TarEntry? entry;
                    while ((entry = reader.GetNextEntry(copyData: false)) is not null)
                    {
                        guard.Records.TryDequeue(out TarHeaderRecord? rec);
                        current = entry.Name;
                        Check(entry, rec, seen, what);
                    }
                }
                current = null;
                diffId = guard.Finish();
            }
            input.CopyTo(Stream.Null);
        }
        catch (ArchiveException) { throw; }
        catch (LayerException e) { throw new ArchiveException($"{what}: {EntryPrefix(e.EntryName ?? current)}{e.Reason}", e); }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or NotSupportedException or FormatException
                                      or InvalidOperationException or ArgumentException or ZstdSharp.ZstdException
                                      or IOException)
        {
            throw new ArchiveException($"{what}: {EntryPrefix(current, ": ")}not a valid tar stream: {e.Message}", e);
        }
        finally { tar.Dispose(); }
        BlobInfo info = blob.Commit();
        return new NewLayer(new Descriptor { MediaType = MediaTypes.OciLayerGzip, Digest = info.Digest, Size = info.Size }, diffId);
    }

    private static void Check(TarEntry entry, TarHeaderRecord? rec, HashSet<string> seen, string what)
    {
        ArchiveException Fail(string reason) => new($"{what}: entry {LayerException.Quote(entry.Name)} {reason}");
        if (entry.EntryType == TarEntryType.GlobalExtendedAttributes) return;
        if (rec?.GnuSparse == true || entry.EntryType == TarEntryType.SparseFile) throw Fail("is a GNU sparse file, which is not supported in layers");
        if (entry.EntryType is not (TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile or TarEntryType.Directory
            or TarEntryType.SymbolicLink or TarEntryType.HardLink or TarEntryType.CharacterDevice or TarEntryType.BlockDevice or TarEntryType.Fifo))
            throw Fail($"has unsupported tar entry type '{(char)entry.EntryType}'");
        string path = Normalize(entry.Name) ?? throw Fail("escapes the root");
        if (entry.EntryType == TarEntryType.HardLink)
        {
            string? target = Normalize(entry.LinkName);
            if (target is null || target.Length == 0 || !seen.Contains(target))
                throw Fail($"is a hard link to {LayerException.Quote(entry.LinkName)}, which is not an earlier file of the tarball");
        }
        if (entry.EntryType != TarEntryType.Directory) seen.Add(path);
    }

    private static string EntryPrefix(string? entry, string sep = " ") => entry is null ? "" : $"entry {LayerException.Quote(entry)}{sep}";

    private static string? Normalize(string name)
    {
        var comps = new List<string>();
        foreach (string c in name.Split('/'))
        {
            if (c.Length == 0 || c == ".") continue;
            if (c == "..")
            {
                if (comps.Count == 0) return null;
                comps.RemoveAt(comps.Count - 1);
                continue;
            }
            comps.Add(c);
        }
        return string.Join('/', comps);
    }
}

/// <summary>Read-through stream that copies everything read into a sink.</summary>
internal sealed class TeeStream(Stream inner, Stream sink) : ReadOnlyStream
{

    public override int Read(Span<byte> buffer)
    {
        int n = inner.Read(buffer);
        if (n > 0) sink.Write(buffer[..n]);
        return n;
    }
}
