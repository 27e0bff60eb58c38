using System.Security.Cryptography;

namespace Vessel.Images.Content;

/// <summary>What was stored: digest and size.</summary>
public readonly record struct BlobInfo(Digest Digest, long Size);

/// <summary>Content-addressed blob store: <c>&lt;root&gt;/blobs/sha256/&lt;hex&gt;</c>.
/// Writes stream through SHA-256 into <c>&lt;root&gt;/ingest/</c> (same filesystem), are fsynced, verified against
/// the expected digest/size and only then renamed into place; reads verify again at EOF, so a blob
/// corrupted on disk is never handed out silently.</summary>
public sealed class ContentStore
{
    /// <summary>The default state directory of Vessel.</summary>
    public const string DefaultRoot = "/var/lib/vessel";

    private const UnixFileMode DirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute;

    public string Root { get; }
    public string BlobsDir { get; }
    private readonly string _ingestDir;

    public ContentStore(string root)
    {
        Root = Path.GetFullPath(root);
        BlobsDir = Path.Combine(Root, "blobs", Digest.Sha256);
        _ingestDir = Path.Combine(Root, "ingest");
        Directory.CreateDirectory(Root);
        Unix.CreateDirectory(BlobsDir, DirMode);
        Unix.CreateDirectory(_ingestDir, DirMode);
    }

    public string BlobPath(Digest digest) => Path.Combine(BlobsDir, digest.Hex);

    public bool Exists(Digest digest) => File.Exists(BlobPath(digest));

    /// <summary>Size on disk, or null when absent.</summary>
    public long? GetSize(Digest digest)
    {
        var fi = new FileInfo(BlobPath(digest));
        return fi.Exists ? fi.Length : null;
    }

    /// <summary>Streams <paramref name="content"/> into the store. With <paramref name="expected"/> the content must
    /// hash to it (and with <paramref name="expectedSize"/> be exactly that long; reading stops as soon as it is
    /// exceeded); otherwise the digest is computed. A blob already present with the expected digest is not
    /// rewritten and the stream is not read.</summary>
    public BlobInfo Write(Stream content, Digest? expected = null, long? expectedSize = null)
    {
        if (expected is Digest e && Exists(e))
        {
            long size = GetSize(e) ?? 0;
            if (expectedSize is null || expectedSize == size) return new BlobInfo(e, size);
        }

        string tmp = Path.Combine(_ingestDir, Guid.NewGuid().ToString("N"));
        try
        {
            Digest actual;
            long written = 0;
            using (var fs = new FileStream(tmp, Unix.CreateNew(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead)))
            using (var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256))
            {
                byte[] buf = new byte[128 * 1024];
                int n;
                while ((n = content.Read(buf)) > 0)
                {
                    written += n;
                    if (expectedSize is long max && written > max)
                        throw new DigestMismatchException(expected ?? default,
                            $"blob {Describe(expected)}: content is larger than the expected {max} bytes");
                    hash.AppendData(buf, 0, n);
                    fs.Write(buf, 0, n);
                }
                fs.Flush(flushToDisk: true);
                actual = Digest.FromHash(hash.GetHashAndReset());
            }
            if (expectedSize is long want && written != want)
                throw new DigestMismatchException(expected ?? actual, $"blob {Describe(expected ?? actual)}: content is {written} bytes, expected {want}");
            if (expected is Digest exp && exp != actual)
                throw new DigestMismatchException(exp, $"blob {exp}: content hashes to {actual} (corrupt or tampered)");
            AtomicFile.Commit(tmp, BlobPath(actual));
            return new BlobInfo(actual, written);
        }
        finally
        {
            AtomicFile.TryDelete(tmp);
        }
    }

    /// <summary>A write stream into <c>ingest/</c> that hashes what it is given; <see cref="BlobWriter.Commit"/>
    /// fsyncs, verifies and renames it into place. Disposing without committing removes the temp file.</summary>
    public BlobWriter CreateWriter() => new(this, Path.Combine(_ingestDir, Guid.NewGuid().ToString("N")));

    internal string IngestDir => _ingestDir;

    public BlobInfo Write(ReadOnlySpan<byte> content, Digest? expected = null)
    {
        using var ms = new MemoryStream(content.ToArray(), writable: false);
        return Write(ms, expected, content.Length);
    }

    /// <summary>Opens a blob for reading through a <see cref="VerifyingStream"/>: reaching EOF throws
    /// <see cref="DigestMismatchException"/> if the stored bytes no longer match the digest.</summary>
    public VerifyingStream OpenRead(Digest digest, long? expectedSize = null)
    {
        string path = BlobPath(digest);
        FileStream fs;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        }
        catch (FileNotFoundException)
        {
            throw new ContentException($"blob {digest} is not in the content store {Root}");
        }
        return new VerifyingStream(fs, digest, expectedSize);
    }

    /// <summary>Reads a whole (small) blob, verified; refuses blobs larger than <paramref name="maxSize"/>.</summary>
    public byte[] ReadAllBytes(Digest digest, long maxSize, long? expectedSize = null)
    {
        long size = GetSize(digest) ?? throw new ContentException($"blob {digest} is not in the content store {Root}");
        if (size > maxSize)
            throw new ContentException($"blob {digest} is {size} bytes, more than the {maxSize} allowed for it");
        using VerifyingStream s = OpenRead(digest, expectedSize ?? size);
        var ms = new MemoryStream((int)size);
        s.CopyTo(ms);
        return ms.ToArray();
    }

    public bool Delete(Digest digest)
    {
        string path = BlobPath(digest);
        if (!File.Exists(path)) return false;
        File.Delete(path);
        return true;
    }

    public IEnumerable<Digest> List()
    {
        foreach (string f in Directory.EnumerateFiles(BlobsDir))
            if (Digest.TryParseHex(Path.GetFileName(f), out Digest d)) yield return d;
    }

    private static string Describe(Digest? d) => d is Digest x ? x.ToString() : "(unverified)";
}
