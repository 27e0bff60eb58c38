namespace Vessel.Images.Content;

/// <summary>Lets a synchronous writer (the archive writers) write to an async response body from a worker thread.</summary>
public sealed class SyncWriteStream(Stream inner, CancellationToken cancel) : Stream
{
    public override void Write(byte[] buffer, int offset, int count) => inner.WriteAsync(buffer.AsMemory(offset, count), cancel).AsTask().GetAwaiter().GetResult();
    public override void Write(ReadOnlySpan<byte> buffer) => inner.WriteAsync(buffer.ToArray(), cancel).AsTask().GetAwaiter().GetResult();
    public override void Flush() => inner.FlushAsync(cancel).GetAwaiter().GetResult();
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
}
