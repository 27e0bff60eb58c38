using System.Security.Cryptography;

namespace Vessel.Images.Content;

/// <summary>Streams a new blob into the content store's <c>ingest/</c> directory while hashing it. Nothing is
/// visible in <c>blobs/</c> until <see cref="Commit"/> (fsync, optional digest/size check, rename).</summary>
public sealed class BlobWriter : Stream
{
    private readonly ContentStore _store;
    private readonly string _tmp;
    private readonly FileStream _file;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long _written;
    private bool _done;

    internal BlobWriter(ContentStore store, string tmp)
    {
        _store = store;
        _tmp = tmp;
        _file = new FileStream(tmp, Unix.CreateNew(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead));
    }

    public long BytesWritten => _written;

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_done) throw new ObjectDisposedException(nameof(BlobWriter));
        _hash.AppendData(buffer);
        _file.Write(buffer);
        _written += buffer.Length;
    }

    public override void WriteByte(byte value) => Write([value]);

    /// <summary>Makes the blob durable and visible. With <paramref name="expected"/>, content hashing to
    /// anything else is refused (and discarded).</summary>
    public BlobInfo Commit(Digest? expected = null)
    {
        if (_done) throw new InvalidOperationException("blob writer already committed or disposed");
        _done = true;
        try
        {
            _file.Flush(flushToDisk: true);
            _file.Dispose();
            Digest actual = Digest.FromHash(_hash.GetHashAndReset());
            if (expected is Digest e && e != actual)
                throw new DigestMismatchException(e, $"blob {e}: content hashes to {actual} (corrupt or tampered)");
            AtomicFile.Commit(_tmp, _store.BlobPath(actual));
            return new BlobInfo(actual, _written);
        }
        finally
        {
            AtomicFile.TryDelete(_tmp);
        }
    }

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => !_done;
    public override long Length => _written;
    public override long Position { get => _written; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (!_done)
            {
                _done = true;
                _file.Dispose();
                AtomicFile.TryDelete(_tmp);
            }
            _hash.Dispose();
        }
        base.Dispose(disposing);
    }
}
