using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Vessel.Api;
using Vessel.Linux;

namespace Vessel.Cli;

/// <summary>The client side of the attach and exec streams (docs/api.md, "Attach and exec streams"): an HTTP/1.1
/// upgrade on the daemon's socket, then frames both ways (u8 stream, u32 length, data). This terminal's stdin goes in
/// (raw mode for a tty), the output comes out, SIGWINCH becomes a resize frame; the last frame (4) says how it ended.</summary>
internal sealed class StdioConnection : IAsyncDisposable
{
    private readonly Stream _stream;
    private readonly SemaphoreSlim _writing = new(1, 1);

    private StdioConnection(Stream stream) => _stream = stream;

    /// <summary>POSTs <paramref name="path"/> with <c>Upgrade: tcp</c>; a refusal becomes the daemon's one-line error.</summary>
    public static async Task<StdioConnection> Open(Client client, string path, CancellationToken ct)
    {
        Stream s = await client.ConnectRaw(ct);
        try
        {
            string request = $"POST /{path} HTTP/1.1\r\nHost: vessel\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n";
            await s.WriteAsync(Encoding.ASCII.GetBytes(request), ct);
            await s.FlushAsync(ct);
            // The response head, a byte at a time: whatever follows it is already the stream.
            var head = new List<byte>();
            var one = new byte[1];
            while (head.Count < 4 || !(head[^4] == '\r' && head[^3] == '\n' && head[^2] == '\r' && head[^1] == '\n'))
            {
                if (await s.ReadAsync(one, ct) == 0) throw new CliException("the daemon closed the connection before answering");
                head.Add(one[0]);
                if (head.Count > 64 * 1024) throw new CliException("the daemon's answer has no end of headers");
            }
            string[] lines = Encoding.ASCII.GetString([.. head]).Split("\r\n");
            string[] status = lines[0].Split(' ', 3);
            if (status.Length >= 2 && status[1] == "101") return new StdioConnection(s);
            string? Header(string name) => lines.Select(l => l.Split(':', 2))
                .FirstOrDefault(p => p.Length == 2 && p[0].Trim().Equals(name, StringComparison.OrdinalIgnoreCase))?[1].Trim();
            byte[] body;
            if (Header("Transfer-Encoding") is { } te && te.Contains("chunked", StringComparison.OrdinalIgnoreCase))
                body = await ReadChunked(s, ct);
            else
            {
                body = new byte[Math.Min(int.TryParse(Header("Content-Length"), out int n) ? n : 0, 1 << 20)];
                await s.ReadExactlyAsync(body, ct);
            }
            ErrorResponse? err = null;
            try { err = JsonSerializer.Deserialize(body, ApiJson.Default.ErrorResponse); }
            catch (JsonException) { }
            throw new CliException(err?.Message is { Length: > 0 } m ? m : $"{lines[0]} from POST /{path}");
        }
        catch
        {
            await s.DisposeAsync();
            throw;
        }
    }

    /// <summary>A chunked body (an error answer: small).</summary>
    private static async Task<byte[]> ReadChunked(Stream s, CancellationToken ct)
    {
        var body = new MemoryStream();
        var one = new byte[1];
        while (body.Length < 1 << 20)
        {
            var line = new StringBuilder();
            while (!line.ToString().EndsWith("\r\n", StringComparison.Ordinal))
            {
                if (await s.ReadAsync(one, ct) == 0) return body.ToArray();
                line.Append((char)one[0]);
            }
            int size = Convert.ToInt32(line.ToString().Trim().Split(';')[0], 16);
            if (size == 0) break;
            var chunk = new byte[size + 2];
            await s.ReadExactlyAsync(chunk, ct);
            body.Write(chunk, 0, size);
        }
        return body.ToArray();
    }

    private async Task Send(byte stream, ReadOnlyMemory<byte> data)
    {
        var frame = new byte[5 + data.Length];
        frame[0] = stream;
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)data.Length);
        data.Span.CopyTo(frame.AsSpan(5));
        await _writing.WaitAsync();
        try
        {
            await _stream.WriteAsync(frame);
            await _stream.FlushAsync();
        }
        finally { _writing.Release(); }
    }

    public Task Resize(ushort rows, ushort columns)
    {
        var d = new byte[4];
        BinaryPrimitives.WriteUInt16BigEndian(d, rows);
        BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(2), columns);
        return Send(3, d);
    }

    /// <summary>The window size of this terminal (stdout's, else stdin's), or null when neither is one.</summary>
    public static (ushort Rows, ushort Columns)? TerminalSize()
    {
        foreach (int fd in new[] { 1, 0, 2 })
            if (Terminal.IsTerminal(fd) && Terminal.GetSize(fd) is { } size && size.Rows > 0) return size;
        return null;
    }

    /// <summary>Copies until the stream's end frame. <paramref name="stdin"/>: this process's stdin is sent (its end too);
    /// <paramref name="tty"/>: the container has a terminal (raw mode here while stdin is one, resizes follow SIGWINCH).</summary>
    public async Task<StdioEndMessage> Run(bool stdin, bool tty, CancellationToken ct)
    {
        byte[]? saved = null;
        PosixSignalRegistration? winch = null;
        try
        {
            if (tty)
            {
                if (stdin && Terminal.IsTerminal(0)) saved = Terminal.MakeRaw(0);
                winch = PosixSignalRegistration.Create(PosixSignal.SIGWINCH, c =>
                {
                    c.Cancel = true;
                    if (TerminalSize() is { } s) _ = Resize(s.Rows, s.Columns).ContinueWith(_ => { }, TaskScheduler.Default);
                });
                if (TerminalSize() is { } size) await Resize(size.Rows, size.Columns);
            }
            if (stdin)
            {
                // A thread of its own: a read of a terminal or a pipe blocks, and may stay blocked after the end.
                var t = new Thread(CopyStdin) { IsBackground = true, Name = "stdin" };
                t.Start();
            }
            using Stream stdout = Console.OpenStandardOutput(), stderr = Console.OpenStandardError();
            while (true)
            {
                var h = new byte[5];
                try
                {
                    await _stream.ReadExactlyAsync(h, ct);
                }
                catch (EndOfStreamException) { throw new CliException("the daemon closed the stream"); }
                catch (IOException e) { throw new CliException($"the daemon closed the stream: {e.Message}"); }
                var data = new byte[BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(1))];
                await _stream.ReadExactlyAsync(data, ct);
                switch (h[0])
                {
                    case 1:
                        await stdout.WriteAsync(data, ct);
                        await stdout.FlushAsync(ct);
                        break;
                    case 2:
                        await stderr.WriteAsync(data, ct);
                        await stderr.FlushAsync(ct);
                        break;
                    case 4:
                        return JsonSerializer.Deserialize(data, StdioJson.Default.StdioEndMessage) ?? new StdioEndMessage();
                }
            }
        }
        finally
        {
            winch?.Dispose();
            if (saved is not null) Terminal.Restore(0, saved);
        }
    }

    private void CopyStdin()
    {
        var input = new SafeFd(0, ownsHandle: false);
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n;
                try { n = input.Read(buffer); }
                catch (LinuxException) { n = 0; }
                if (n <= 0) break;
                Send(0, buffer.AsMemory(0, n).ToArray()).GetAwaiter().GetResult();
            }
            Send(0, ReadOnlyMemory<byte>.Empty).GetAwaiter().GetResult(); // the end of stdin
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or SocketException) { }
    }

    public async ValueTask DisposeAsync()
    {
        await _stream.DisposeAsync();
        _writing.Dispose();
    }
}
