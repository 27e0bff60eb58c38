using System.Buffers.Binary;
using System.Text;
using Microsoft.AspNetCore.Http.Features;

namespace Vessel.DockerApi;

/// <summary>docker's hijacked connections and its stdout/stderr framing.</summary>
internal static class Streams
{
    public const string Raw = "application/vnd.docker.raw-stream";
    public const byte Stdin = 0, Stdout = 1, Stderr = 2;

    /// <summary>Takes over the connection for attach and exec start. A client that asks for it (<c>Upgrade: tcp</c>, as
    /// the docker CLI, docker-py and Docker.DotNet do) gets <c>101 Switching Protocols</c> and the raw connection;
    /// one that does not gets a 200 whose body is the stream (HTTP/1.1 chunked by Kestrel) and whose request body is stdin.</summary>
    public static async Task<Stream> HijackAsync(HttpContext ctx)
    {
        ctx.Response.Headers.ContentType = Raw;
        if (ctx.Features.Get<IHttpUpgradeFeature>() is { IsUpgradableRequest: true } upgrade)
        {
            ctx.Response.Headers.Upgrade = "tcp";
            HalfCloseConnection.MarkHijacked(ctx);
            return await upgrade.UpgradeAsync();
        }
        ctx.Response.StatusCode = 200;
        Http.NoBuffering(ctx);
        await ctx.Response.StartAsync(ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
        return new Duplex(ctx.Request.Body, ctx.Response.Body);
    }

    /// <summary>One frame of the multiplexed stream: [stream, 0, 0, 0, size (big endian u32)] then the bytes.</summary>
    public static async Task FrameAsync(Stream s, byte stream, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        if (data.Length == 0) return;
        byte[] buf = new byte[8 + data.Length];
        buf[0] = stream;
        BinaryPrimitives.WriteUInt32BigEndian(buf.AsSpan(4), (uint)data.Length);
        data.CopyTo(buf.AsMemory(8));
        await s.WriteAsync(buf, ct);
        await s.FlushAsync(ct);
    }

    public static Task FrameAsync(Stream s, byte stream, string text, CancellationToken ct) => FrameAsync(s, stream, Encoding.UTF8.GetBytes(text), ct);

    /// <summary>Reads (and drops) what the client sends until it closes its side: Vessel has no stdin to give it to
    /// in this version. A read error means the client is gone, which cancels <paramref name="gone"/>.</summary>
    public static async Task DrainAsync(Stream s, CancellationTokenSource gone)
    {
        byte[] buf = new byte[4096];
        try
        {
            while (await s.ReadAsync(buf, gone.Token) > 0) { }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        {
            try { await gone.CancelAsync(); } catch (ObjectDisposedException) { }
        }
    }

    /// <summary>The legacy (non-upgraded) form: stdin from the request body, output to the response body.</summary>
    private sealed class Duplex(Stream input, Stream output) : Stream
    {
        public override bool CanRead => true;
        public override bool CanWrite => true;
        public override bool CanSeek => false;
        public override int Read(byte[] buffer, int offset, int count) => input.Read(buffer, offset, count);
        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken ct = default) => input.ReadAsync(buffer, ct);
        public override void Write(byte[] buffer, int offset, int count) => output.Write(buffer, offset, count);
        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken ct = default) => output.WriteAsync(buffer, ct);
        public override Task FlushAsync(CancellationToken ct) => output.FlushAsync(ct);
        public override void Flush() => output.Flush();
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
