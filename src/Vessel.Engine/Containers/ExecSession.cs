using System.Threading.Channels;
using Vessel.Linux;
using Vessel.Runtime;
using Vessel.Runtime.Spec;

namespace Vessel.Engine.Containers;

/// <summary>A process exec'd in a container by the daemon, with its stdio held by the daemon: a pty master (tty)
/// or pipes. The process is vesseld's child (CLONE_PARENT), so it is waited for here; an exec does not outlive the
/// daemon's knowledge of it (docker's execs do not survive a daemon restart either).</summary>
public sealed class ExecSession : StdioSession
{
    /// <summary>After the process has exited, how long its output may still take to reach EOF (a background child
    /// that keeps the pipe or the pty open does not hold the session forever).</summary>
    private static readonly TimeSpan Drain = TimeSpan.FromSeconds(1);

    private readonly SafeFd? _stdin;      // the pipe's write end (no tty); with a tty, the master
    private readonly SafeFd? _master;
    private readonly Channel<StdioFrame> _output = Channel.CreateBounded<StdioFrame>(64);
    private readonly Task<int> _exit;
    private readonly SemaphoreSlim _writing = new(1, 1);
    private bool _stdinClosed;

    public int Pid { get; }
    public override bool Tty => _master is not null;
    public override bool CloseStdinOnEnd => true;

    private ExecSession(int pid, SafeFd? stdin, SafeFd? master, IReadOnlyList<(SafeFd Fd, StdioStream Stream)> outputs, Action<int> exited)
    {
        Pid = pid;
        _stdin = stdin;
        _master = master;
        var readers = outputs.Select(o => Task.Factory.StartNew(() => ReadLoop(o.Fd, o.Stream), CancellationToken.None,
            TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();
        _exit = Task.Factory.StartNew(() =>
        {
            int code = Processes.WaitExit(pid);
            exited(code);
            return code;
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        _ = Task.Run(async () =>
        {
            await _exit;
            await Task.WhenAny(Task.WhenAll(readers), Task.Delay(Drain));
            _output.Writer.TryComplete();
        });
    }

    private void ReadLoop(SafeFd fd, StdioStream stream)
    {
        var buffer = new byte[32 * 1024];
        try
        {
            while (true)
            {
                int n;
                try { n = fd.Read(buffer); }
                catch (LinuxException) { break; } // EIO: the pty's last slave closed
                if (n <= 0) break;
                var frame = new StdioFrame(stream, buffer.AsSpan(0, n).ToArray());
                if (!_output.Writer.WaitToWriteAsync().AsTask().GetAwaiter().GetResult()) break;
                if (!_output.Writer.TryWrite(frame)) _output.Writer.WriteAsync(frame).AsTask().GetAwaiter().GetResult();
            }
        }
        catch (ChannelClosedException) { }
        finally
        {
            if (fd != _master) fd.Dispose();
        }
    }

    /// <summary>Starts <paramref name="process"/> in the container. With <paramref name="detach"/> its stdio is
    /// /dev/null and no output is kept (docker's exec -d). <paramref name="exited"/> gets the exit code.</summary>
    public static ExecSession Start(ContainerRuntime runtime, string containerId, ProcessSpec process, bool openStdin, bool detach, Action<int> exited)
    {
        bool tty = process.Terminal && !detach;
        process.Terminal = tty;
        using SafeFd devNull = SafeFd.Open("/dev/null", 2 /* O_RDWR */);
        SafeFd? consoleOurs = null, consoleTheirs = null, inR = null, inW = null, outR = null, outW = null, errR = null, errW = null;
        try
        {
            if (tty) (consoleOurs, consoleTheirs) = UnixSocket.StreamPair();
            else if (!detach)
            {
                if (openStdin) (inR, inW) = SafeFd.Pipe();
                (outR, outW) = SafeFd.Pipe();
                (errR, errW) = SafeFd.Pipe();
            }
            int pid = runtime.Exec(new ExecOptions(containerId, process, Console: consoleTheirs,
                Stdio: [inR ?? devNull, outW ?? devNull, errW ?? devNull]));
            SafeFd? master = null;
            if (consoleOurs is not null)
            {
                if (!consoleOurs.WaitReadable(10_000)) throw new IOException("the exec'd process sent no terminal");
                master = UnixSocket.ReceiveFd(consoleOurs).Fd;
            }
            var outputs = new List<(SafeFd, StdioStream)>();
            if (master is not null) outputs.Add((master, StdioStream.Stdout));
            if (outR is not null) outputs.Add((outR, StdioStream.Stdout));
            if (errR is not null) outputs.Add((errR, StdioStream.Stderr));
            var session = new ExecSession(pid, master ?? (openStdin ? inW : null), master, outputs, exited);
            outR = errR = inW = null; // the session owns them now
            return session;
        }
        finally
        {
            foreach (var fd in new[] { consoleOurs, consoleTheirs, inR, outW, errW, inW, outR, errR }) fd?.Dispose();
        }
    }

    public override async ValueTask<StdioFrame?> ReadAsync(CancellationToken ct)
    {
        while (await _output.Reader.WaitToReadAsync(ct))
            if (_output.Reader.TryRead(out var f)) return f;
        return null;
    }

    public override async ValueTask WriteStdinAsync(ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        if (_stdin is null || data.Length == 0) return;
        await _writing.WaitAsync(ct);
        try
        {
            if (_stdinClosed) return;
            // A pipe write blocks while the process does not read: off the async path.
            await Task.Run(() =>
            {
                try { _stdin.WriteAll(data.Span); }
                catch (LinuxException e) { throw new IOException(e.Message, e); }
            }, ct);
        }
        finally { _writing.Release(); }
    }

    public override async ValueTask CloseStdinAsync(CancellationToken ct)
    {
        if (_stdin is null || _master is not null) return; // a tty's input is never closed (docker)
        await _writing.WaitAsync(ct);
        try
        {
            _stdinClosed = true;
            _stdin.Dispose();
        }
        finally { _writing.Release(); }
    }

    public override ValueTask ResizeAsync(ushort rows, ushort columns, CancellationToken ct)
    {
        if (_master is not null && !_master.IsClosed) Terminal.SetSize(_master.Fd, rows, columns);
        return ValueTask.CompletedTask;
    }

    public override Task<int> ExitCodeAsync(CancellationToken ct) => _exit.WaitAsync(ct);

    public override async ValueTask DisposeAsync()
    {
        _output.Writer.TryComplete();
        while (_output.Reader.TryRead(out _)) { } // unblocks a reader waiting for room
        await _writing.WaitAsync();
        try
        {
            _stdinClosed = true;
            if (_master is null) _stdin?.Dispose();
        }
        finally { _writing.Release(); }
        // The master is closed once the process has ended (its reader may still be in read(2) on it until then).
        _ = _exit.ContinueWith(_ => _master?.Dispose(), TaskScheduler.Default);
    }
}
