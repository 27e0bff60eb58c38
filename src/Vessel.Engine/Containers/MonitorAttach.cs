using System.Net.Sockets;
using Vessel.Linux;

namespace Vessel.Engine.Containers;

/// <summary>A connection to a container monitor's DIR/attach.sock (src/executor/attach.c): live output, stdin,
/// resizes. The socket is reached through /proc/self/fd of the directory, as the monitor bound it, so a long
/// state root does not overflow sun_path.</summary>
public sealed class MonitorAttachSession : StdioSession
{
    private readonly Socket? _socket;
    private readonly NetworkStream? _stream;
    private readonly Func<CancellationToken, Task<int>> _exit;
    private readonly SemaphoreSlim _writing = new(1, 1);

    public override bool Tty { get; }
    public override bool CloseStdinOnEnd { get; }

    private MonitorAttachSession(Socket? socket, bool tty, bool closeStdinOnEnd, Func<CancellationToken, Task<int>> exit)
    {
        _socket = socket;
        _stream = socket is null ? null : new NetworkStream(socket, ownsSocket: true);
        Tty = tty;
        CloseStdinOnEnd = closeStdinOnEnd;
        _exit = exit;
    }

    /// <summary>Connects; a monitor that is already gone gives a session whose output has ended.</summary>
    public static MonitorAttachSession Connect(string dir, bool tty, bool closeStdinOnEnd, Func<CancellationToken, Task<int>> exit)
    {
        Socket? socket = null;
        try
        {
            using SafeFd d = SafeFd.OpenPath(dir);
            socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            socket.Connect(new UnixDomainSocketEndPoint($"/proc/self/fd/{d.Fd}/attach.sock"));
        }
        catch (Exception e) when (e is SocketException or LinuxException or IOException)
        {
            socket?.Dispose();
            socket = null;
        }
        return new MonitorAttachSession(socket, tty, closeStdinOnEnd, exit);
    }

    public override async ValueTask<StdioFrame?> ReadAsync(CancellationToken ct)
    {
        if (_stream is null) return null;
        while (true)
        {
            (byte Stream, byte[] Data)? f;
            try { f = await StdioFrames.ReadAsync(_stream, ct); }
            catch (IOException) { return null; }
            catch (SocketException) { return null; }
            if (f is null) return null;
            if (f.Value.Stream is 1 or 2) return new StdioFrame((StdioStream)f.Value.Stream, f.Value.Data);
        }
    }

    private async ValueTask Send(byte[] frame, CancellationToken ct)
    {
        if (_stream is null) return;
        await _writing.WaitAsync(ct);
        try { await _stream.WriteAsync(frame, ct); }
        catch (SocketException e) { throw new IOException(e.Message, e); }
        finally { _writing.Release(); }
    }

    public override ValueTask WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken ct) =>
        data.Length == 0 ? ValueTask.CompletedTask : Send(StdioFrames.Encode(0, data.Span), ct);

    public override ValueTask CloseStdinAsync(CancellationToken ct) => Send(StdioFrames.Encode(0, []), ct);

    public override ValueTask ResizeAsync(ushort rows, ushort columns, CancellationToken ct) =>
        Tty ? Send(StdioFrames.EncodeResize(rows, columns), ct) : ValueTask.CompletedTask;

    public override Task<int> ExitCodeAsync(CancellationToken ct) => _exit(ct);

    public override async ValueTask DisposeAsync()
    {
        if (_stream is not null) await _stream.DisposeAsync();
        _socket?.Dispose();
        _writing.Dispose();
    }
}
