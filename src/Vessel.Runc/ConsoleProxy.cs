using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Vessel.Linux;

namespace Vessel.Runc;

/// <summary>For `run -t` and `exec -t` without --console-socket: we are our own console socket, receive
/// the pty master and copy between it and our stdio (raw mode when stdin is a terminal, resizes followed).</summary>
public sealed class ConsoleProxy : IDisposable
{
    private readonly SafeFd _ours;
    private SafeFd? _master;
    private byte[]? _savedTerminal;
    private PosixSignalRegistration? _winch;

    public ConsoleProxy()
    {
        (_ours, Theirs) = UnixSocket.StreamPair();
    }

    /// <summary>The end handed to the executor as its console socket.</summary>
    public SafeFd Theirs { get; }

    /// <summary>Receives the master and starts copying. Call after create/exec returned.</summary>
    public void Start()
    {
        Theirs.Dispose();
        (_master, _) = UnixSocket.ReceiveFd(_ours);
        if (Terminal.IsTerminal(0))
        {
            Terminal.CopySize(0, _master.Fd);
            _savedTerminal = Terminal.MakeRaw(0);
            _winch = PosixSignalRegistration.Create((PosixSignal)Signals.SIGWINCH, _ => Terminal.CopySize(0, _master.Fd));
        }
        var master = new FileStream(new SafeFileHandle(_master.DangerousGetHandle(), false), FileAccess.ReadWrite, 1, false);
        var stdin = new FileStream(new SafeFileHandle(0, false), FileAccess.Read, 1, false);
        var stdout = new FileStream(new SafeFileHandle(1, false), FileAccess.Write, 1, false);
        new Thread(() => Copy(stdin, master)) { IsBackground = true, Name = "console-in" }.Start();
        Output = new Thread(() => Copy(master, stdout)) { IsBackground = true, Name = "console-out" };
        Output.Start();
    }

    /// <summary>Ends when the container side of the pty is closed (its processes exited).</summary>
    public Thread? Output { get; private set; }

    private static void Copy(Stream from, Stream to)
    {
        var buffer = new byte[8192];
        try
        {
            int n;
            while ((n = from.Read(buffer)) > 0)
            {
                to.Write(buffer, 0, n);
                to.Flush();
            }
        }
        catch (IOException) { } // EIO on the master once the slave is closed: the normal end
    }

    public void Dispose()
    {
        Output?.Join(TimeSpan.FromSeconds(1));
        _winch?.Dispose();
        if (_savedTerminal is not null) Terminal.Restore(0, _savedTerminal);
        _master?.Dispose();
        _ours.Dispose();
        Theirs.Dispose();
    }
}
