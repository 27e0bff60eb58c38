using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Vessel.Cli.Tests;

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
        var run = D.Vessel("run", "-d", "--name", "stop-signal", Image, "sh", "-c", "trap 'exit 5' USR1; echo up; while true; do sleep 0.1; done");
        Assert.True(run.Code == 0, run.ToString());
        try
        {
            // The shell is pid 1: a signal it has no handler for yet is dropped, so wait for the trap.
            for (int i = 0; i < 200 && !D.Vessel("logs", "stop-signal").Out.Contains("up"); i++) Thread.Sleep(50);
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
    public void RunRmDetachedFromTheForegroundIsRemovedWhenItExits()
    {
        try
        {
            using (var pty = new Pty(24, 80))
            {
                using Process p = pty.Start(D, "run", "-it", "--rm", "--name", "rm-detach", Image, "sh");
                pty.Type("echo here-$((6*7))\r");
                Assert.True(pty.WaitFor("here-42"), pty.Output);
                pty.Type("\x10\x11"); // ctrl-p ctrl-q
                Assert.Equal(0, Exit(p, pty));
            }
            Assert.Contains("rm-detach", D.Vessel("ps").Out); // detached: it goes on
            var stop = D.Vessel("stop", "-t", "1", "rm-detach");
            Assert.True(stop.Code == 0, stop.ToString());
            // --rm is the daemon's: the container goes once it has exited, with no client attached.
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (D.Vessel("ps", "-a").Out.Contains("rm-detach") && DateTime.UtcNow < deadline) Thread.Sleep(50);
            Assert.DoesNotContain("rm-detach", D.Vessel("ps", "-a").Out);
        }
        finally
        {
            D.Vessel("rm", "-f", "rm-detach");
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
