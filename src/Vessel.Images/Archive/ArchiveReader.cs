using System.Formats.Tar;
using System.Text;
using Vessel.Images.Content;
using Vessel.Images.Layers;

namespace Vessel.Images.Archive;

/// <summary>A regular file of an incoming archive: small ones are kept in memory, large ones were streamed
/// straight into the content store (so their digest is known and nothing is extracted to disk).</summary>
internal sealed class ArchiveFile(string name, long size, byte[]? data, BlobInfo? blob)
{
    public string Name { get; } = name;
    public long Size { get; } = size;
    public byte[]? Data { get; } = data;
    public BlobInfo? Blob { get; } = blob;

    private Digest? _digest;
    public Digest Digest => _digest ??= Blob?.Digest ?? Digest.Compute(Data!);

    public Stream Open(ContentStore content) =>
        Data is not null ? new MemoryStream(Data, writable: false) : content.OpenRead(Blob!.Value.Digest, Blob.Value.Size);

    /// <summary>Puts the file into the content store (a no-op for ones already there).</summary>
    public BlobInfo Store(ContentStore content) => Blob ?? content.Write(Data!, Digest);
}

/// <summary>Reads an untrusted image archive (tar, optionally gzip/zstd compressed) in one streaming pass,
/// never touching the filesystem except the content store: names are normalised and refused when they
/// climb out of the archive root, symlinks and hard links are recorded as aliases and resolved lexically
/// inside the archive, device nodes and fifos are refused, sizes are capped at the header.</summary>
internal sealed class ArchiveReader
{
    /// <summary>Largest metadata file (manifest.json, index.json, repositories, oci-layout) accepted.</summary>
    public const long MaxMetadataSize = 16 * 1024 * 1024;
    private const long SmallFile = 1024 * 1024;
    private const long MemoryBudget = 256L * 1024 * 1024;
    private const int MaxLinkHops = 16;

    private static readonly ExtractionLimits Limits = new()
    {
        MaxEntries = 1_000_000,
        MaxTotalBytes = 1L << 40,
        MaxTrailingBytes = 16 * 1024 * 1024,
    };

    private static readonly HashSet<string> MetadataNames = new(StringComparer.Ordinal) { "manifest.json", "index.json", "oci-layout", "repositories" };

    public Dictionary<string, ArchiveFile> Files { get; } = new(StringComparer.Ordinal);
    public Dictionary<string, string> Links { get; } = new(StringComparer.Ordinal);
    private readonly string _what;

    private ArchiveReader(string what) => _what = what;

    public static ArchiveReader Read(Stream input, ContentStore content, string what)
    {
        var r = new ArchiveReader(what);
        r.ReadAll(input, content);
        return r;
    }

    private ArchiveException Fail(string? entry, string reason, Exception? inner = null)
    {
        string msg = entry is null ? $"{_what}: {reason}" : $"{_what}: entry {LayerException.Quote(entry)} {reason}";
        return inner is null ? new ArchiveException(msg) : new ArchiveException(msg, inner);
    }

    private void ReadAll(Stream input, ContentStore content)
    {
        Stream tar;
        try { tar = Decompression.Open(input, out _); }
        catch (InvalidDataException e) { throw Fail(null, e.Message, e); }
        string? current = null;
        long inMemory = 0;
        try
        {
            using var guard = new TarGuardStream(tar, Limits, (entry, reason) => new LayerException("archive", null, entry, reason));
            using (var reader = new TarReader(guard, leaveOpen: true))
            {
                TarEntry? entry;
                while ((entry = reader.GetNextEntry(copyData: false)) is not null)
                {
                    guard.Records.TryDequeue(out _);
                    current = entry.Name;
                    if (entry.EntryType == TarEntryType.GlobalExtendedAttributes) continue;
                    string name = Normalize(entry.Name, entry.Name);
                    switch (entry.EntryType)
                    {
                        case TarEntryType.Directory:
                            break;
                        case TarEntryType.RegularFile or TarEntryType.V7RegularFile or TarEntryType.ContiguousFile:
                            if (name.Length == 0) throw Fail(entry.Name, "is a file at the archive root");
                            if (Files.ContainsKey(name) || Links.ContainsKey(name)) throw Fail(entry.Name, "appears twice in the archive");
                            Files[name] = ReadFile(entry, name, content, ref inMemory);
                            break;
                        case TarEntryType.SymbolicLink:
                        case TarEntryType.HardLink:
                            if (Files.ContainsKey(name) || Links.ContainsKey(name)) throw Fail(entry.Name, "appears twice in the archive");
                            if (entry.LinkName.Length == 0) throw Fail(entry.Name, "is a link with an empty target");
                            string target = entry.EntryType == TarEntryType.HardLink || entry.LinkName.StartsWith('/')
                                ? entry.LinkName
                                : (name.Contains('/') ? name[..name.LastIndexOf('/')] + "/" : "") + entry.LinkName;
                            Links[name] = Normalize(target, entry.Name);
                            break;
                        default:
                            throw Fail(entry.Name, $"has tar entry type '{(char)entry.EntryType}', which has no place in an image archive");
                    }
                }
            }
            current = null;
            guard.Finish();
            input.CopyTo(Stream.Null);
        }
        catch (ArchiveException) { throw; }
        catch (LayerException e) { throw Fail(e.EntryName ?? current, e.Reason, e); }
        catch (DigestMismatchException e) { throw Fail(current, $"does not match its name: {e.Message}", e); }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or NotSupportedException or FormatException
                                      or InvalidOperationException or IOException or ArgumentException or ZstdSharp.ZstdException)
        {
            throw Fail(current, $"{(current is null ? "is" : "is in an archive that is")} not a valid tar stream: {e.Message}", e);
        }
        finally { tar.Dispose(); }
    }

    private ArchiveFile ReadFile(TarEntry entry, string name, ContentStore content, ref long inMemory)
    {
        long size = entry.Length;
        Digest? named = BlobNameDigest(name);
        bool metadata = MetadataNames.Contains(name);
        if (metadata && size > MaxMetadataSize)
            throw Fail(entry.Name, $"is {size} bytes, more than the {MaxMetadataSize} allowed for it");
        Stream data = entry.DataStream ?? Stream.Null;
        if (metadata || (size <= SmallFile && inMemory + size <= MemoryBudget))
        {
            byte[] buf = new byte[size];
            data.ReadExactly(buf);
            if (data.ReadByte() >= 0) throw Fail(entry.Name, "has more data than its header declares");
            if (!metadata) inMemory += size;
            var f = new ArchiveFile(name, size, buf, null);
            if (named is Digest d && f.Digest != d) throw Fail(entry.Name, $"hashes to {f.Digest}, not the digest its name promises");
            return f;
        }
        BlobInfo info = content.Write(data, named, size);
        if (named is null && info.Size != size) throw Fail(entry.Name, $"is {info.Size} bytes, its header declares {size}");
        return new ArchiveFile(name, size, null, info);
    }

    /// <summary>The digest a name of the form <c>blobs/sha256/&lt;hex&gt;</c> promises.</summary>
    public static Digest? BlobNameDigest(string name) =>
        name.StartsWith("blobs/sha256/", StringComparison.Ordinal) && Digest.TryParseHex(name["blobs/sha256/".Length..], out Digest d) ? d : null;

    /// <summary>Lexical normalisation: "./a//b/" → "a/b"; a leading "/" is dropped; ".." may not climb above the root.</summary>
    public string Normalize(string name, string entryName)
    {
        if (name.Contains('\0')) throw Fail(entryName, "has a NUL byte in its name");
        if (Encoding.UTF8.GetByteCount(name) > 4096) throw Fail(entryName, "has a name longer than 4096 bytes");
        var comps = new List<string>();
        foreach (string c in name.Split('/'))
        {
            if (c.Length == 0 || c == ".") continue;
            if (c == "..")
            {
                if (comps.Count == 0) throw Fail(entryName, "escapes the archive root");
                comps.RemoveAt(comps.Count - 1);
                continue;
            }
            comps.Add(c);
        }
        return string.Join('/', comps);
    }

    /// <summary>The regular file at <paramref name="path"/> (a path from a manifest: normalised, links followed
    /// inside the archive), or null with the reason.</summary>
    public ArchiveFile? Resolve(string path, out string? error)
    {
        error = null;
        string p;
        try { p = Normalize(path, path); }
        catch (ArchiveException) { error = "escapes the archive root"; return null; }
        for (int hop = 0; hop <= MaxLinkHops; hop++)
        {
            if (Files.TryGetValue(p, out ArchiveFile? f)) return f;
            if (!Links.TryGetValue(p, out string? next)) { error = "is not in the archive"; return null; }
            p = next;
        }
        error = $"is a chain of more than {MaxLinkHops} links";
        return null;
    }
}
