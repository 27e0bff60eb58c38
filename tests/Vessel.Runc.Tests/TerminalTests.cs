using System.Text;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

public sealed class TerminalTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private static string[] Lines(string text) => text.Replace("\r", "").Split('\n').Select(l => l.Trim()).ToArray();

    [Fact]
    public void Console_socket_receives_a_working_pty_master()
    {
        var b = NewBundle("sh");
        b.Process["terminal"] = true;
        using var socket = new ConsoleSocket(Path.Combine(NewTempDir("console"), "console.sock"));
        Create(b, "--console-socket", socket.Path).Ok();
        using var master = socket.Master(Patience);
        Runc["start", b.Id].Ok();

        master.Write(Encoding.UTF8.GetBytes("echo h''i; tty; exit 3\n"));
        master.Flush();
        var lines = Lines(ConsoleSocket.ReadToEnd(master, Patience));
        Assert.Contains("hi", lines);
        Assert.Contains("/dev/pts/0", lines);
        WaitForStatus(b.Id, "stopped");
    }

    [Fact]
    public void Exec_tty_with_console_socket()
    {
        var s = StartSleeper();
        using var socket = new ConsoleSocket(Path.Combine(NewTempDir("console"), "console.sock"));
        var pidFile = Path.Combine(NewTempDir("pid"), "exec.pid");
        Runc["exec", "--tty", "--detach", "--console-socket", socket.Path, "--pid-file", pidFile, s.Id, "sh", "-c", "tty; echo exec-on-tty"].Ok();
        using var master = socket.Master(Patience);
        var lines = Lines(ConsoleSocket.ReadToEnd(master, Patience));
        Assert.Contains("exec-on-tty", lines);
        Assert.Contains(lines, l => l.StartsWith("/dev/pts/"));
    }

    [Fact]
    public void Run_with_terminal_and_no_console_socket_proxies_when_stdin_is_not_a_tty()
    {
        var b = NewBundle("sh", "-c", "tty; read line; echo got:$line");
        b.Process["terminal"] = true;
        var r = Runc.Invoke(["run", "--bundle", b.Save().Dir, b.Id], stdin: "hello\n").Ok();
        var lines = Lines(r.Stdout);
        Assert.Contains("/dev/pts/0", lines);
        Assert.Contains("got:hello", lines);
    }

    [Fact]
    public void Create_with_terminal_but_no_console_socket_fails_clearly()
    {
        var b = NewBundle("sh");
        b.Process["terminal"] = true;
        Create(b).FailsWith(1, "console-socket");
        Assert.Empty(LeftoversOf(b.Id));
        var c = NewBundle("true");
        using var socket = new ConsoleSocket(Path.Combine(NewTempDir("console"), "console.sock"));
        Create(c, "--console-socket", socket.Path).FailsWith(1, "terminal");
    }
}
