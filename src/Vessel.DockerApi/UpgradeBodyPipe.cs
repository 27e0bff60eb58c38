using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Text;

namespace Vessel.DockerApi;

/// <summary>docker's exec start is an upgrade request with a JSON body (<c>Connection: Upgrade</c>, <c>Upgrade: tcp</c>,
/// <c>Content-Length: 27</c>). Kestrel only upgrades requests without a body, so this pipe sits between the socket and
/// Kestrel and rewrites such a request head: the body moves into an <c>X-Vessel-Body</c> header (base64) and
/// Content-Length becomes 0. It follows HTTP/1.1 framing (Content-Length and chunked bodies) to find each request head
/// on a keep-alive connection; after an upgrade request everything is passed through untouched (it is the raw stream).</summary>
internal sealed class UpgradeBodyPipe : IDuplexPipe
{
    public const string BodyHeader = "X-Vessel-Body";
    private const int MaxHead = 64 * 1024, MaxBody = 1024 * 1024;
    private static readonly byte[] HeadEnd = "\r\n\r\n"u8.ToArray();

    private enum Mode { Head, UpgradeBody, Fixed, ChunkLine, Trailer, Passthrough }

    private readonly Pipe _pipe = new(new PipeOptions(useSynchronizationContext: false));
    private readonly IDuplexPipe _inner;
    private Mode _mode = Mode.Head;
    private Mode _afterFixed;
    private long _remaining;
    private readonly List<byte> _pending = [];
    private byte[] _head = [];

    public UpgradeBodyPipe(IDuplexPipe inner)
    {
        _inner = inner;
        _ = Task.Run(PumpAsync);
    }

    public PipeReader Input => _pipe.Reader;
    public PipeWriter Output => _inner.Output;

    private async Task PumpAsync()
    {
        Exception? error = null;
        PipeReader src = _inner.Input;
        PipeWriter dst = _pipe.Writer;
        try
        {
            while (true)
            {
                ReadResult r = await src.ReadAsync();
                foreach (ReadOnlyMemory<byte> segment in r.Buffer) Feed(segment.Span, dst);
                src.AdvanceTo(r.Buffer.End);
                FlushResult f = await dst.FlushAsync();
                if (r.IsCompleted || r.IsCanceled || f.IsCompleted) break;
            }
            if (_pending.Count > 0) { dst.Write(_pending.ToArray()); await dst.FlushAsync(); }
        }
        catch (Exception e) { error = e; }
        finally
        {
            await dst.CompleteAsync(error);
            await src.CompleteAsync();
        }
    }

    private void Feed(ReadOnlySpan<byte> data, PipeWriter dst)
    {
        while (!data.IsEmpty)
        {
            switch (_mode)
            {
                case Mode.Passthrough:
                    dst.Write(data);
                    return;
                case Mode.Fixed:
                {
                    int n = (int)Math.Min(_remaining, data.Length);
                    dst.Write(data[..n]);
                    data = data[n..];
                    _remaining -= n;
                    if (_remaining == 0) _mode = _afterFixed;
                    break;
                }
                case Mode.UpgradeBody:
                {
                    int n = (int)Math.Min(_remaining, data.Length);
                    _pending.AddRange(data[..n]);
                    data = data[n..];
                    _remaining -= n;
                    if (_remaining == 0)
                    {
                        dst.Write(RewriteHead(_head, _pending.ToArray()));
                        _pending.Clear();
                        _mode = Mode.Passthrough;
                    }
                    break;
                }
                default: // Head, ChunkLine, Trailer: byte by byte until the terminator
                {
                    _pending.Add(data[0]);
                    data = data[1..];
                    if (_mode == Mode.Head) HeadByte(dst);
                    else LineByte(dst);
                    break;
                }
            }
        }
    }

    private void HeadByte(PipeWriter dst)
    {
        int c = _pending.Count;
        if (_pending[c - 1] != '\n') { if (c > MaxHead) { Emit(dst); _mode = Mode.Passthrough; } return; } // Kestrel will refuse it
        // Lines end with CRLF or (Docker.DotNet on Linux, which Kestrel accepts) a bare LF; the head ends with an empty line.
        if (c <= 2 && (c == 1 || _pending[0] == '\r')) { Emit(dst); return; } // stray line end between requests
        bool end = c >= 2 && _pending[c - 2] == '\n' || c >= 3 && _pending[c - 2] == '\r' && _pending[c - 3] == '\n';
        if (!end) return;
        byte[] head = _pending.ToArray();
        _pending.Clear();
        string text = Encoding.ASCII.GetString(head);
        long length = 0;
        bool chunked = false, upgrade = false;
        foreach (string raw in text.Split('\n').Skip(1))
        {
            string line = raw.TrimEnd('\r');
            int colon = line.IndexOf(':');
            if (colon <= 0) continue;
            string name = line[..colon].Trim(), value = line[(colon + 1)..].Trim();
            if (name.Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out length);
            else if (name.Equals("Transfer-Encoding", StringComparison.OrdinalIgnoreCase)) chunked |= value.Contains("chunked", StringComparison.OrdinalIgnoreCase);
            else if (name.Equals("Connection", StringComparison.OrdinalIgnoreCase)) upgrade |= value.Contains("upgrade", StringComparison.OrdinalIgnoreCase);
        }
        if (upgrade && !chunked && length > 0 && length <= MaxBody)
        {
            _head = head;
            _remaining = length;
            _mode = Mode.UpgradeBody;
            return;
        }
        dst.Write(head);
        if (upgrade) _mode = Mode.Passthrough;
        else if (chunked) _mode = Mode.ChunkLine;
        else if (length > 0) { _remaining = length; _afterFixed = Mode.Head; _mode = Mode.Fixed; }
    }

    private void LineByte(PipeWriter dst)
    {
        int c = _pending.Count;
        if (c > MaxHead) { Emit(dst); _mode = Mode.Passthrough; return; }
        if (_pending[c - 1] != '\n') return;
        string line = Encoding.ASCII.GetString(_pending.ToArray(), 0, c - 1).TrimEnd('\r');
        Emit(dst);
        if (_mode == Mode.Trailer)
        {
            if (line.Length == 0) _mode = Mode.Head;
            return;
        }
        int semi = line.IndexOf(';');
        string hex = (semi >= 0 ? line[..semi] : line).Trim();
        if (!long.TryParse(hex, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out long size) || size < 0) { _mode = Mode.Passthrough; return; }
        if (size == 0) { _mode = Mode.Trailer; return; }
        _remaining = size + 2; // the data and its CRLF
        _afterFixed = Mode.ChunkLine;
        _mode = Mode.Fixed;
    }

    private void Emit(PipeWriter dst)
    {
        dst.Write(_pending.ToArray());
        _pending.Clear();
    }

    /// <summary>Content-Length: 0 and the body as a header, so that Kestrel sees an upgradable request.</summary>
    private static byte[] RewriteHead(byte[] head, byte[] body)
    {
        string text = Encoding.ASCII.GetString(head);
        var sb = new StringBuilder();
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            int colon = line.IndexOf(':');
            if (colon > 0 && line[..colon].Trim().Equals("Content-Length", StringComparison.OrdinalIgnoreCase)) sb.Append("Content-Length: 0\r\n");
            else sb.Append(line).Append("\r\n");
        }
        sb.Append(BodyHeader).Append(": ").Append(Convert.ToBase64String(body)).Append("\r\n\r\n");
        return Encoding.ASCII.GetBytes(sb.ToString());
    }
}
