using System.Runtime.CompilerServices;
using Vessel.Engine.Containers;

namespace Vessel.DockerApi;

/// <summary>docker's side of an engine stdio session (<see cref="StdioSession"/>) on a hijacked connection: stdin is the
/// raw bytes the client sends (its half-close is the end of its stdin), output is raw with a tty and docker's
/// multiplexed frames without one, resizes come as separate requests. Nothing of the engine's own frame format (the
/// Vessel API's) shows here; the Docker layer only translates.</summary>
internal static class DockerStdio
{
    /// <summary>Runs <paramref name="session"/> against the client until the output ends, the client detaches (the
    /// detach keys in <paramref name="options"/>) or goes away. Never throws for a client that is gone.</summary>
    public static async Task<StdioEnd?> PumpAsync(Stream conn, StdioSession session, StdioPumpOptions options, CancellationToken ct)
    {
        try { return await StdioPump.RunAsync(session, ReadInput(conn, ct), Writer(conn, session.Tty), options, ct); }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException) { return null; }
    }

    /// <summary>The client's stdin: raw bytes until it half-closes (or the connection fails), then the end.</summary>
    public static async IAsyncEnumerable<StdioInput> ReadInput(Stream conn, [EnumeratorCancellation] CancellationToken ct)
    {
        byte[] buf = new byte[16 * 1024];
        while (true)
        {
            int n;
            try { n = await conn.ReadAsync(buf, ct); }
            catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException) { n = 0; }
            if (n == 0)
            {
                yield return new StdioInput.End();
                yield break;
            }
            yield return new StdioInput.Data(buf.AsSpan(0, n).ToArray());
        }
    }

    /// <summary>Output as docker's clients read it: a tty's bytes as they are, else [stream, 0, 0, 0, size] frames.</summary>
    public static Func<StdioFrame, CancellationToken, ValueTask> Writer(Stream conn, bool tty) => async (f, ct) =>
    {
        if (tty)
        {
            await conn.WriteAsync(f.Data, ct);
            await conn.FlushAsync(ct);
        }
        else await Streams.FrameAsync(conn, (byte)f.Stream, f.Data, ct);
    };

    /// <summary>Text for the client (an error after the hijack), in the stream's format.</summary>
    public static async Task WriteTextAsync(Stream conn, bool tty, byte stream, string text, CancellationToken ct)
    {
        try { await Writer(conn, tty)(new StdioFrame((StdioStream)stream, System.Text.Encoding.UTF8.GetBytes(text)), ct); }
        catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException) { }
    }

    /// <summary>docker's resize query: <c>h</c> and <c>w</c>, both needed.</summary>
    public static (ushort Rows, ushort Columns) Size(HttpContext ctx)
    {
        static ushort One(HttpContext ctx, string k) => Http.Query(ctx, k) is { Length: > 0 } v
            ? ushort.TryParse(v, out ushort n) ? n : throw Engine.EngineException.Invalid($"{k}={v}: expected a number from 0 to 65535")
            : throw Engine.EngineException.Invalid($"{k} is missing (resize needs h and w)");
        return (One(ctx, "h"), One(ctx, "w"));
    }
}
