using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using Vessel.Images.Content;

namespace Vessel.Images.Layers;

/// <summary>Reads a source stream (a decompressor, and the digest-verifying blob stream beneath it) on a thread of
/// its own, ahead of the consumer, through a bounded set of chunks: decompression runs on one core while the
/// extractor works the filesystem on another. The consumer sees exactly the bytes the source produced, in order,
/// and then the source's end, or the exception the source threw at that point (rethrown with its original type
/// and stack), so errors surface at the same byte position as without read-ahead. At the source's end,
/// <c>atEnd</c> runs on the same thread (the extractor drains the raw blob there, which completes its digest
/// check). Disposing stops the thread and waits for it, so the source is never touched after Dispose returns.</summary>
internal sealed class ReadAheadStream : ReadOnlyStream
{
    private readonly record struct Chunk(byte[]? Buffer, int Length, ExceptionDispatchInfo? Error);

    private readonly Stream _source;
    private readonly Action? _atEnd;
    private readonly BlockingCollection<Chunk> _full;
    private readonly BlockingCollection<byte[]> _free;
    private readonly CancellationTokenSource _stop = new();
    private readonly Thread _thread;
    private Chunk _current;
    private int _pos;
    private bool _done;
    private ExceptionDispatchInfo? _error;

    public ReadAheadStream(Stream source, Action? atEnd = null, int chunkSize = 512 * 1024, int chunks = 4)
    {
        _source = source;
        _atEnd = atEnd;
        _full = new BlockingCollection<Chunk>(chunks + 1);
        _free = new BlockingCollection<byte[]>(chunks);
        for (int i = 0; i < chunks; i++) _free.Add(new byte[chunkSize]);
        _thread = new Thread(Produce) { IsBackground = true, Name = "layer read-ahead" };
        _thread.Start();
    }

    private void Produce()
    {
        CancellationToken ct = _stop.Token;
        try
        {
            while (true)
            {
                byte[] buf = _free.Take(ct);
                int len = 0;
                try
                {
                    int n;
                    while (len < buf.Length && (n = _source.Read(buf, len, buf.Length - len)) > 0) len += n;
                    if (len == 0)
                    {
                        _atEnd?.Invoke();
                        _full.Add(default, ct);
                        return;
                    }
                }
                catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
                {
                    // What was produced before the failure goes first, then the failure itself.
                    if (len > 0) _full.Add(new Chunk(buf, len, null), ct);
                    _full.Add(new Chunk(null, 0, ExceptionDispatchInfo.Capture(e)), ct);
                    return;
                }
                _full.Add(new Chunk(buf, len, null), ct);
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { } // the consumer stopped early
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        while (_current.Buffer is null || _pos == _current.Length)
        {
            _error?.Throw(); // again on every read after a failure
            if (_done) return 0;
            if (_current.Buffer is not null) _free.Add(_current.Buffer);
            _current = _full.Take();
            _pos = 0;
            if (_current.Error is not null)
            {
                _error = _current.Error;
                _current = default;
                _error.Throw();
            }
            if (_current.Buffer is null) _done = true;
        }
        int k = Math.Min(buffer.Length, _current.Length - _pos);
        _current.Buffer.AsSpan(_pos, k).CopyTo(buffer);
        _pos += k;
        return k;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _stop.Cancel();
            _thread.Join();
            _stop.Dispose();
            _full.Dispose();
            _free.Dispose();
        }
        base.Dispose(disposing);
    }
}
