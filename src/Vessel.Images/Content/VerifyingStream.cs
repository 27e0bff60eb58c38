using System.Security.Cryptography;

namespace Vessel.Images.Content;

/// <summary>A read-only pass-through stream that hashes what is read and, when the inner stream reaches
/// EOF, throws <see cref="DigestMismatchException"/> if the content does not match the expected digest
/// (or size). Reading more than the expected size throws at once, so a lying source cannot feed an
/// unbounded stream. Callers that stop early must call <see cref="VerifyToEnd"/> to check the rest.</summary>
public sealed class VerifyingStream : ReadOnlyStream
{
    private readonly Stream _inner;
    private readonly bool _leaveOpen;
    private readonly IncrementalHash _hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private readonly string _what;
    private long _read;
    private bool _verified;

    public Digest Expected { get; }
    public long? ExpectedSize { get; }
    public long BytesRead => _read;

    public VerifyingStream(Stream inner, Digest expected, long? expectedSize, string? what = null, bool leaveOpen = false)
    {
        _inner = inner;
        Expected = expected;
        ExpectedSize = expectedSize;
        _leaveOpen = leaveOpen;
        _what = what ?? $"blob {expected}";
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        if (_verified) return 0;
        int n = _inner.Read(buffer);
        Account(buffer[..n]);
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty || _verified) return 0;
        int n = await _inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        Account(buffer.Span[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private void Account(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) { Finish(); return; }
        _read += data.Length;
        if (ExpectedSize is long max && _read > max)
            throw new DigestMismatchException(Expected, $"{_what}: content is larger than the expected {max} bytes");
        _hash.AppendData(data);
    }

    private void Finish()
    {
        if (_verified) return;
        _verified = true;
        if (ExpectedSize is long size && _read != size)
            throw new DigestMismatchException(Expected, $"{_what}: content is {_read} bytes, expected {size}");
        Digest actual = Digest.FromHash(_hash.GetHashAndReset());
        if (actual != Expected)
            throw new DigestMismatchException(Expected, $"{_what}: content hashes to {actual}, expected {Expected} (corrupt or tampered)");
    }

    /// <summary>Reads (and discards) whatever is left, then verifies.</summary>
    public void VerifyToEnd()
    {
        byte[] buf = new byte[81920];
        while (Read(buf) > 0) { }
    }

    public override long Position { get => _read; set => throw new NotSupportedException(); }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _hash.Dispose();
            if (!_leaveOpen) _inner.Dispose();
        }
        base.Dispose(disposing);
    }
}
