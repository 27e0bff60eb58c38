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

    /// <summary>Waits (20 s at most) until the output after <paramref name="from"/> contains <paramref name="text"/>.</summary>
    public bool WaitFor(string text, int from = 0)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline)
        {
            string o = Output;
            if (o.Length > from && o.IndexOf(text, from, StringComparison.Ordinal) >= 0) return true;
            Thread.Sleep(20);
        }
        return false;
    }

    /// <summary>Runs vessel on this terminal, as the leader of a session whose controlling terminal it is.</summary>
    public Process Start(DaemonFixture d, params string[] args)
    {
        var psi = new ProcessStartInfo("sh") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-c", "exec setsid -w -c \"$0\" \"$@\" <>\"$PTS\" >&0 2>&0", Binaries.Vessel, "-H", d.Host }.Concat(args))
            psi.ArgumentList.Add(a);
        psi.Environment["PTS"] = SlavePath;
        psi.Environment.Remove("VESSEL_HOST");
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

/// <summary>Interactive containers end to end: `run -it` through a real pseudo-terminal, stdin piped into `run -i`,
/// attach and docker's detach keys, `create -it` + `start -a -i`, `exec -it`/`-i`/`-d`, exit codes.</summary>
public sealed class InteractiveTests(BusyboxFixture f) : IClassFixture<BusyboxFixture>
{
    private DaemonFixture D => f.D;
    private const string Image = BusyboxFixture.Image;

    private static int Exit(Process p, Pty pty)
    {
        if (!p.WaitForExit(20_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("vessel did not end; its terminal showed:\n" + pty.Output);
        }
        return p.ExitCode;
    }

    [Fact]
    public void RunItGivesAShellOnAPtyThatFollowsResizes()
    {
        using var pty = new Pty(30, 100);
        using Process p = pty.Start(D, "run", "-it", "--rm", Image, "sh");
        Assert.True(pty.WaitFor("# "), pty.Output);
        int mark = pty.Output.Length;
        pty.Type("tty; stty size; echo $TERM\r");
        Assert.True(pty.WaitFor("xterm", mark), pty.Output);
        Assert.Contains("/dev/pts/0", pty.Output[mark..]);
        Assert.Contains("30 100", pty.Output[mark..]);

        pty.Resize(40, 120); // the kernel sends SIGWINCH to vessel, which sends the size on
        bool resized = false;
        for (int i = 0; i < 50 && !resized; i++)
        {
            mark = pty.Output.Length;
            pty.Type("stty size\r");
            resized = pty.WaitFor("40 120", mark);
        }
        Assert.True(resized, pty.Output);
        pty.Type("exit 7\r");
        Assert.Equal(7, Exit(p, pty));
    }

    [Fact]
    public async Task RunIPipesStdinAndEndsWithIt()
    {
        var psi = new ProcessStartInfo(Binaries.Vessel) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-H", D.Host, "run", "-i", "--rm", Image, "sh", "-c", "cat; echo done >&2; exit 3" }) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        p.StandardInput.Write("hi\nthere\n");
        p.StandardInput.Close();
        Task<string> o = p.StandardOutput.ReadToEndAsync(), e = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(20_000), "vessel run -i did not end when its stdin did");
        Assert.Equal("hi\nthere\n", await o);
        Assert.Equal("done\n", await e);
        Assert.Equal(3, p.ExitCode);
    }

    [Fact]
    public async Task SignalsToAnAttachedClientReachTheContainer()
    {
        // --sig-proxy (the default without a tty): the client's SIGTERM goes to the container's process.
        var psi = new ProcessStartInfo(Binaries.Vessel) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-H", D.Host, "run", "--rm", "--name", "sig-proxy", Image, "sh", "-c",
                     "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done" }) psi.ArgumentList.Add(a);
        using Process p = Process.Start(psi)!;
        Task<string> e = p.StandardError.ReadToEndAsync();
        Assert.Equal("ready", await p.StandardOutput.ReadLineAsync());
        Assert.Equal(0, kill(p.Id, 15));
        Task<string> rest = p.StandardOutput.ReadToEndAsync();
        Assert.True(p.WaitForExit(20_000), "vessel run did not end after its container's process got the signal");
        Assert.True(p.ExitCode == 3, $"exit {p.ExitCode}: {await rest} {await e}");
        Assert.Equal("got-term\n", await rest);

        // stop -s: the given signal instead of the image's stop signal.
        var run = D.Vessel("run", "-d", "--name", "stop-signal", Image, "sh", "-c", "trap 'exit 5' USR1; while true; do sleep 0.1; done");
        Assert.True(run.Code == 0, run.ToString());
        try
        {
            var stop = D.Vessel("stop", "-s", "USR1", "-t", "30", "stop-signal");
            Assert.True(stop.Code == 0, stop.ToString());
            Assert.Equal("5", D.Vessel("wait", "stop-signal").Out.Trim());
        }
        finally
        {
            D.Vessel("rm", "-f", "stop-signal");
        }
    }

    [DllImport("libc", SetLastError = true)] private static extern int kill(int pid, int sig);

    [Fact]
    public async Task AttachAndDetachKeysLeaveTheContainerRunning()
    {
        var run = D.Vessel("run", "-d", "-it", "--name", "attach-me", Image, "sh");
        Assert.True(run.Code == 0, run.ToString());
        try
        {
            using (var pty = new Pty(24, 80))
            {
                using Process p = pty.Start(D, "attach", "attach-me");
                pty.Type("echo attached-$((6*7))\r");
                Assert.True(pty.WaitFor("attached-42"), pty.Output);
                pty.Type("\x10\x11"); // ctrl-p ctrl-q
                Assert.Equal(0, Exit(p, pty));
            }
            using (var pty = new Pty(24, 80))
            {
                using Process p = pty.Start(D, "attach", "--detach-keys", "ctrl-a,x", "attach-me");
                pty.Type("echo again-$((6*7))\r");
                Assert.True(pty.WaitFor("again-42"), pty.Output);
                pty.Type("\x01x");
                Assert.Equal(0, Exit(p, pty));
            }
            Assert.Contains("attach-me", D.Vessel("ps").Out);
            // What was typed went to the container's terminal, whose output is logged as stdout.
            Assert.Contains("attached-42", D.Vessel("logs", "attach-me").Out);

            using (var pty = new Pty(24, 80))
            {
                using Process p = pty.Start(D, "exec", "-it", "attach-me", "sh");
                Assert.True(pty.WaitFor("# "), pty.Output);
                pty.Type("tty; exit 3\r");
                Assert.True(pty.WaitFor("/dev/pts/"), pty.Output);
                Assert.Equal(3, Exit(p, pty));
            }

            var psi = new ProcessStartInfo(Binaries.Vessel) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in new[] { "-H", D.Host, "exec", "-i", "attach-me", "sh", "-c", "wc -l; exit 4" }) psi.ArgumentList.Add(a);
            using (Process p = Process.Start(psi)!)
            {
                p.StandardInput.Write("a\nb\n");
                p.StandardInput.Close();
                Task<string> o = p.StandardOutput.ReadToEndAsync();
                Assert.True(p.WaitForExit(20_000), "vessel exec -i did not end when its stdin did");
                Assert.Equal("2", (await o).Trim());
                Assert.Equal(4, p.ExitCode);
            }

            var bg = D.Vessel("exec", "-d", "attach-me", "sh", "-c", "echo from-background > /tmp/bg");
            Assert.True(bg.Code == 0 && bg.Out.Length == 0, bg.ToString());
            var deadline = DateTime.UtcNow.AddSeconds(20);
            Binaries.Result cat;
            do cat = D.Vessel("exec", "attach-me", "cat", "/tmp/bg"); while (cat.Code != 0 && DateTime.UtcNow < deadline);
            Assert.Equal("from-background\n", cat.Out);
            var missing = D.Vessel("exec", "-it", "attach-me", "no-such-command");
            Assert.True(missing.Code == 125, missing.ToString()); // -it without a terminal on stdin
            missing = D.Vessel("exec", "attach-me", "no-such-command");
            Assert.True(missing.Code == 127 && missing.Err.Contains("executable file not found"), missing.ToString());
        }
        finally
        {
            D.Vessel("rm", "-f", "attach-me");
        }
    }

    [Fact]
    public void CreateItThenStartAttachedExitsWithTheContainersStatus()
    {
        var create = D.Vessel("create", "-it", "--name", "start-me", Image, "sh");
        Assert.True(create.Code == 0, create.ToString());
        try
        {
            Assert.Equal(125, D.Vessel("attach", "start-me").Code); // not running: docker says start it first
            using var pty = new Pty(24, 80);
            using Process p = pty.Start(D, "start", "-a", "-i", "start-me");
            Assert.True(pty.WaitFor("# "), pty.Output);
            pty.Type("echo started-$((6*7)); exit 9\r");
            Assert.True(pty.WaitFor("started-42"), pty.Output);
            Assert.Equal(9, Exit(p, pty));
            Assert.Equal("9", D.Vessel("wait", "start-me").Out.Trim());
        }
        finally
        {
            D.Vessel("rm", "-f", "start-me");
        }
    }
}
