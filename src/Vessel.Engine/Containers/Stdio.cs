using System.Buffers.Binary;

namespace Vessel.Engine.Containers;

/// <summary>Stream numbers, the same in the monitor's attach socket, the Vessel API's attach/exec streams and
/// docker's multiplexed framing: 0 stdin, 1 stdout, 2 stderr.</summary>
public enum StdioStream : byte { Stdin = 0, Stdout = 1, Stderr = 2 }

public readonly record struct StdioFrame(StdioStream Stream, ReadOnlyMemory<byte> Data);

/// <summary>A live connection to a container's or an exec's stdio, independent of any wire format: the Vessel
/// API (docs/api.md, "Attach and exec streams") and the Docker API wrap it, each with its own framing, through
/// <see cref="StdioPump"/>. A tty's output is all <see cref="StdioStream.Stdout"/>.</summary>
public abstract class StdioSession : IAsyncDisposable
{
    public abstract bool Tty { get; }

    /// <summary>Whether the process's stdin is closed when the client's input ends (docker's StdinOnce for attach,
    /// always for exec -i); never for a tty, as docker.</summary>
    public abstract bool CloseStdinOnEnd { get; }

    /// <summary>The next piece of output; null once the output has ended (the process and its stdio are gone).</summary>
    public abstract ValueTask<StdioFrame?> ReadAsync(CancellationToken ct);

    public abstract ValueTask WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken ct);

    public abstract ValueTask CloseStdinAsync(CancellationToken ct);

    /// <summary>Sets the tty's window size (nothing without a tty).</summary>
    public abstract ValueTask ResizeAsync(ushort rows, ushort columns, CancellationToken ct);

    /// <summary>The exit code of the process (the container's init, or the exec'd process), once it has ended.</summary>
    public abstract Task<int> ExitCodeAsync(CancellationToken ct);

    public abstract ValueTask DisposeAsync();
}

/// <summary>What a client sends: stdin bytes, the end of its stdin, a window size.</summary>
public abstract record StdioInput
{
    public sealed record Data(ReadOnlyMemory<byte> Bytes) : StdioInput;
    public sealed record End : StdioInput;
    public sealed record Resize(ushort Rows, ushort Columns) : StdioInput;
}

/// <summary>How a pump ended: the output ended (with the process's exit code), or the client detached with the
/// detach keys, or went away.</summary>
public sealed record StdioEnd(int? ExitCode, bool Detached);

/// <summary>docker's detach keys: "ctrl-p,ctrl-q" (the default), "ctrl-a,x", … (docker's term.ToBytes).</summary>
public static class DetachKeys
{
    public const string Default = "ctrl-p,ctrl-q";

    public static byte[] Parse(string? keys)
    {
        if (string.IsNullOrEmpty(keys)) keys = Default;
        var bytes = new List<byte>();
        foreach (var raw in keys.Split(','))
        {
            var k = raw.Trim();
            if (k.Length == 1 && k[0] < 128) { bytes.Add((byte)k[0]); continue; }
            if (k.Length == 6 && k.StartsWith("ctrl-", StringComparison.OrdinalIgnoreCase))
            {
                char c = char.ToLowerInvariant(k[5]);
                if (c is >= 'a' and <= 'z') { bytes.Add((byte)(c - 'a' + 1)); continue; }
                int i = "@[\\]^_".IndexOf(c);
                if (i >= 0) { bytes.Add((byte)(i == 0 ? 0 : 26 + i)); continue; }
            }
            throw EngineException.Invalid($"invalid detach keys \"{keys}\": expected keys like ctrl-p,ctrl-q (a letter, or ctrl- with a-z, @, [, \\, ], ^ or _)");
        }
        return [.. bytes];
    }
}

/// <summary>Watches stdin for the detach sequence, holding back a partial match until it is decided (docker's
/// escape proxy): what is not part of a completed sequence is passed on unchanged.</summary>
public sealed class DetachFilter(byte[] keys)
{
    private int _matched;

    /// <summary>The bytes to pass on, and whether the sequence was completed (then nothing after it counts).</summary>
    public (byte[] Pass, bool Detach) Feed(ReadOnlySpan<byte> input)
    {
        if (keys.Length == 0) return (input.ToArray(), false);
        var pass = new List<byte>(input.Length);
        foreach (byte b in input)
        {
            if (b == keys[_matched])
            {
                if (++_matched == keys.Length) return ([.. pass], true);
                continue;
            }
            pass.AddRange(keys.AsSpan(0, _matched).ToArray()); // the held-back prefix was not the sequence
            _matched = b == keys[0] ? 1 : 0;
            if (_matched == 0) pass.Add(b);
        }
        return ([.. pass], false);
    }
}

/// <summary>Options of a pump, from the attach or exec-start request.</summary>
/// <param name="Stdin">read the client's input at all</param>
/// <param name="DetachKeys">null: no detach sequence</param>
public sealed record StdioPumpOptions(bool Stdin, bool Stdout, bool Stderr, byte[]? DetachKeys);

/// <summary>Runs a session against a client: the client's input (stdin filtered for the detach keys, its end, resizes)
/// goes in, the selected output comes out through <c>write</c>. Ends when the output ends (then with the exit
/// code), the client detaches, or the client goes away (its input ends and the output can no longer be written).</summary>
public static class StdioPump
{
    public static async Task<StdioEnd> RunAsync(StdioSession session, IAsyncEnumerable<StdioInput> input,
        Func<StdioFrame, CancellationToken, ValueTask> write, StdioPumpOptions options, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var detached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Task inputTask = Task.Run(() => PumpInput(session, input, options, detached, cts.Token), CancellationToken.None);
        try
        {
            Task<StdioFrame?>? read = null;
            while (true)
            {
                read ??= session.ReadAsync(cts.Token).AsTask();
                Task done = await Task.WhenAny(read, detached.Task);
                if (done == detached.Task) return new StdioEnd(null, true);
                StdioFrame? frame = await read;
                read = null;
                if (frame is null) break;
                var f = frame.Value;
                if (f.Stream == StdioStream.Stdout && !options.Stdout || f.Stream == StdioStream.Stderr && !options.Stderr) continue;
                await write(f, cts.Token);
            }
            return new StdioEnd(await session.ExitCodeAsync(cts.Token), false);
        }
        finally
        {
            await cts.CancelAsync();
            try { await inputTask; } catch (Exception e) when (e is OperationCanceledException or IOException) { }
        }
    }

    private static async Task PumpInput(StdioSession session, IAsyncEnumerable<StdioInput> input, StdioPumpOptions options,
        TaskCompletionSource detached, CancellationToken ct)
    {
        var filter = options.DetachKeys is { Length: > 0 } keys ? new DetachFilter(keys) : null;
        try
        {
            await foreach (StdioInput i in input.WithCancellation(ct))
            {
                switch (i)
                {
                    case StdioInput.Resize r:
                        await session.ResizeAsync(r.Rows, r.Columns, ct);
                        break;
                    case StdioInput.Data d when options.Stdin:
                        var (pass, detach) = filter is null ? (d.Bytes.ToArray(), false) : filter.Feed(d.Bytes.Span);
                        if (pass.Length > 0) await session.WriteStdinAsync(pass, ct);
                        if (detach)
                        {
                            detached.TrySetResult();
                            return;
                        }
                        break;
                    case StdioInput.End:
                        return;
                }
            }
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException) { }
        finally
        {
            // docker: the end of the client's stdin (EOF, detach, or the client gone) closes the process's stdin
            // only with StdinOnce and no tty.
            if (options.Stdin && session.CloseStdinOnEnd && !ct.IsCancellationRequested)
            {
                try { await session.CloseStdinAsync(CancellationToken.None); }
                catch (Exception e) when (e is IOException or ObjectDisposedException) { }
            }
        }
    }
}

/// <summary>The frame format of the monitor's attach socket and of the Vessel API's attach and exec streams:
/// u8 stream, u32 length (big endian), data. Stream 3 is a resize (u16 rows, u16 columns); 4 (Vessel API only,
/// server to client) the end, a JSON <c>StdioEndMessage</c>.</summary>
public static class StdioFrames
{
    public const byte Resize = 3;
    public const byte End = 4;
    public const int MaxFrame = 1 << 20;

    public static byte[] Header(byte stream, int length)
    {
        var h = new byte[5];
        h[0] = stream;
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(1), (uint)length);
        return h;
    }

    public static byte[] Encode(byte stream, ReadOnlySpan<byte> data)
    {
        var f = new byte[5 + data.Length];
        f[0] = stream;
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(1), (uint)data.Length);
        data.CopyTo(f.AsSpan(5));
        return f;
    }

    public static byte[] EncodeResize(ushort rows, ushort columns)
    {
        var d = new byte[4];
        BinaryPrimitives.WriteUInt16BigEndian(d, rows);
        BinaryPrimitives.WriteUInt16BigEndian(d.AsSpan(2), columns);
        return Encode(Resize, d);
    }

    /// <summary>One frame, or null at a clean end of stream (between frames).</summary>
    public static async ValueTask<(byte Stream, byte[] Data)?> ReadAsync(Stream s, CancellationToken ct)
    {
        var h = new byte[5];
        int got = 0;
        while (got < 5)
        {
            int n = await s.ReadAsync(h.AsMemory(got), ct);
            if (n == 0)
            {
                if (got == 0) return null;
                throw new IOException("the stream ended inside a frame header");
            }
            got += n;
        }
        uint len = BinaryPrimitives.ReadUInt32BigEndian(h.AsSpan(1));
        if (len > MaxFrame) throw new IOException($"a frame of {len} bytes is more than this end accepts");
        var data = new byte[len];
        await s.ReadExactlyAsync(data, ct);
        return (h[0], data);
    }

    /// <summary>The Vessel API's client input: frames 0 (stdin; empty: its end) and 3 (resize).</summary>
    public static async IAsyncEnumerable<StdioInput> ReadInput(Stream s, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        while (true)
        {
            (byte Stream, byte[] Data)? f;
            try { f = await ReadAsync(s, ct); }
            catch (IOException) { f = null; }
            if (f is null) { yield return new StdioInput.End(); yield break; }
            var (stream, data) = f.Value;
            if (stream == 0 && data.Length == 0) { yield return new StdioInput.End(); yield break; }
            if (stream == 0) yield return new StdioInput.Data(data);
            else if (stream == Resize && data.Length >= 4)
                yield return new StdioInput.Resize(BinaryPrimitives.ReadUInt16BigEndian(data), BinaryPrimitives.ReadUInt16BigEndian(data.AsSpan(2)));
        }
    }
}
