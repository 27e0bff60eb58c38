using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace Vessel.Cli.Tests;

/// <summary>A pseudo-terminal opened by the test: the CLI runs with its slave as stdio and controlling terminal
/// (`setsid -c`), the test types on the master and reads what the CLI shows.</summary>
internal sealed class Pty : IDisposable
{
    private const int O_RDWR = 2, O_NOCTTY = 0x100, POLLIN = 1;
    private const ulong TIOCSWINSZ = 0x5414;

    [StructLayout(LayoutKind.Sequential)]
    private struct WinSize { public ushort Rows, Cols, X, Y; }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd { public int Fd; public short Events, Revents; }

    [DllImport("libc", SetLastError = true)] private static extern int posix_openpt(int flags);
    [DllImport("libc", SetLastError = true)] private static extern int grantpt(int fd);
    [DllImport("libc", SetLastError = true)] private static extern int unlockpt(int fd);
    [DllImport("libc", SetLastError = true)] private static extern int ptsname_r(int fd, [Out] byte[] buf, nint len);
    [DllImport("libc", SetLastError = true)] private static extern int ioctl(int fd, ulong request, ref WinSize ws);
    [DllImport("libc", SetLastError = true)] private static extern int open(string path, int flags);
    [DllImport("libc", SetLastError = true)] private static extern int close(int fd);
    [DllImport("libc", SetLastError = true)] private static extern nint read(int fd, [Out] byte[] buf, nint n);
    [DllImport("libc", SetLastError = true)] private static extern nint write(int fd, byte[] buf, nint n);
    [DllImport("libc", SetLastError = true)] private static extern int poll(ref PollFd fds, nuint n, int timeout);

    private readonly int _master, _slave;
    private readonly StringBuilder _out = new();
    private readonly Thread _reader;
    private volatile bool _stop;

    public string SlavePath { get; }

    public Pty(ushort rows, ushort cols)
    {
        _master = posix_openpt(O_RDWR | O_NOCTTY);
        if (_master < 0 || grantpt(_master) != 0 || unlockpt(_master) != 0) throw new InvalidOperationException("posix_openpt");
        var name = new byte[128];
        if (ptsname_r(_master, name, name.Length) != 0) throw new InvalidOperationException("ptsname_r");
        SlavePath = Encoding.ASCII.GetString(name, 0, Array.IndexOf(name, (byte)0));
        // Held open by the test too, so that reading the master never sees EIO between two openers.
        _slave = open(SlavePath, O_RDWR | O_NOCTTY);
        Resize(rows, cols);
        _reader = new Thread(ReadLoop) { IsBackground = true };
        _reader.Start();
    }

    public void Resize(ushort rows, ushort cols)
    {
        var ws = new WinSize { Rows = rows, Cols = cols };
        ioctl(_master, TIOCSWINSZ, ref ws);
    }

    private void ReadLoop()
    {
        var buf = new byte[4096];
        while (!_stop)
        {
            var p = new PollFd { Fd = _master, Events = POLLIN };
            if (poll(ref p, 1, 100) <= 0) continue;
            nint n = read(_master, buf, buf.Length);
            if (n <= 0) continue;
            lock (_out) _out.Append(Encoding.UTF8.GetString(buf, 0, (int)n));
        }
    }

    public string Output { get { lock (_out) return _out.ToString(); } }

    public void Type(string text)
    {
        byte[] b = Encoding.UTF8.GetBytes(text);
        write(_master, b, b.Length);
    }

    /// <summary>Waits (<paramref name="seconds"/> at most) until the output after <paramref name="from"/> contains <paramref name="text"/>.</summary>
    public bool WaitFor(string text, int from = 0, int seconds = 20)
    {
        var deadline = DateTime.UtcNow.AddSeconds(seconds);
        while (DateTime.UtcNow < deadline)
        {
            string o = Output;
            if (o.Length > from && o.IndexOf(text, from, StringComparison.Ordinal) >= 0) return true;
            Thread.Sleep(20);
        }
        return false;
    }

    /// <summary>Runs vessel on this terminal, as the leader of a session whose controlling terminal it is.</summary>
    public Process Start(DaemonFixture d, params string[] args) =>
        Start(Binaries.Vessel, new Dictionary<string, string?> { ["VESSEL_HOST"] = null }, ["-H", d.Host, .. args]);

    /// <summary>Runs <paramref name="program"/> on this terminal (session leader, controlling terminal), with
    /// <paramref name="env"/> changed (null: removed). The Docker API tests run the docker client so.</summary>
    public Process Start(string program, IDictionary<string, string?> env, params string[] args)
    {
        var psi = new ProcessStartInfo("sh") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-c", "exec setsid -w -c \"$0\" \"$@\" <>\"$PTS\" >&0 2>&0", program }.Concat(args))
            psi.ArgumentList.Add(a);
        psi.Environment["PTS"] = SlavePath;
        foreach (var (k, v) in env)
        {
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        }
        return Process.Start(psi)!;
    }

    public void Dispose()
    {
        _stop = true;
        _reader.Join();
        close(_slave);
        close(_master);
    }
}
