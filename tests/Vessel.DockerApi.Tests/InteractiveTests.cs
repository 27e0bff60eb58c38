using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Vessel.Cli.Tests;

namespace Vessel.DockerApi.Tests;

/// <summary>Interactive sessions through the real docker client: `run -it` on a pseudo-terminal the test holds (tty,
/// window size and its changes, typing, exit code), `run -i` with piped stdin, `attach` and the detach keys, `exec -it`
/// and `exec -i`, `start -ai`, docker-py's exec with stdin.</summary>
[Collection("docker")]
public sealed class InteractiveTests(DockerFixture f)
{
    private const string Image = DockerFixture.Image;

    private static Binaries.Result Ok(Binaries.Result r)
    {
        Assert.True(r.Code == 0, r.ToString());
        return r;
    }

    private Process OnPty(Pty pty, params string[] args) => pty.Start(f.DockerBinary, f.Env(), args);

    private static int Exit(Process p, Pty pty)
    {
        if (!p.WaitForExit(20_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail("docker did not end; its terminal showed:\n" + pty.Output);
        }
        return p.ExitCode;
    }

    /// <summary>docker with its stdin piped from <paramref name="input"/> (closed after it).</summary>
    private async Task<(int Code, string Out, string Err)> Piped(string input, params string[] args)
    {
        var psi = new ProcessStartInfo(f.DockerBinary) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in f.Env())
        {
            if (v is null) psi.Environment.Remove(k);
            else psi.Environment[k] = v;
        }
        using Process p = Process.Start(psi)!;
        Task<string> o = p.StandardOutput.ReadToEndAsync(), e = p.StandardError.ReadToEndAsync();
        await p.StandardInput.WriteAsync(input);
        p.StandardInput.Close();
        if (!p.WaitForExit(30_000))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"docker {string.Join(' ', args)} did not end when its stdin did");
        }
        return (p.ExitCode, await o, await e);
    }

    [Fact]
    public void RunItGivesAShellOnAPtyThatFollowsResizes()
    {
        using var pty = new Pty(30, 100);
        using Process p = OnPty(pty, "run", "-it", "--rm", "--name", "dock-it-run", Image, "sh");
        Assert.True(pty.WaitFor("# "), pty.Output);
        int mark = pty.Output.Length;
        pty.Type("tty; echo $TERM\r");
        Assert.True(pty.WaitFor("xterm", mark), pty.Output);
        Assert.Contains("/dev/pts/0", pty.Output[mark..]);
        // The 20.10 client sends its window size only once the container has started (API 1.41 has no size at create),
        // so the shell may see 0x0 first, as with dockerd.
        Assert.True(SizeBecomes(pty, "30 100"), pty.Output);
        pty.Resize(40, 120); // the kernel sends SIGWINCH to docker, which posts /containers/{id}/resize
        Assert.True(SizeBecomes(pty, "40 120"), pty.Output);
        pty.Type("exit 7\r");
        Assert.Equal(7, Exit(p, pty));
        Assert.DoesNotContain("dock-it-run", Ok(f.Docker("ps", "-a", "--format", "{{.Names}}")).Out);

        // -t without -i: the output is the terminal's (\r\n), raw rather than multiplexed.
        Assert.Equal("tty out\r\n", Ok(f.Docker("run", "--rm", "-t", Image, "echo", "tty out")).Out);
    }

    private static bool SizeBecomes(Pty pty, string size)
    {
        for (int i = 0; i < 50; i++)
        {
            int mark = pty.Output.Length;
            pty.Type("stty size\r");
            if (pty.WaitFor(size, mark, seconds: 1)) return true;
        }
        return false;
    }

    [Fact]
    public async Task RunIPipesStdinAndEndsWithIt()
    {
        var r = await Piped("hi\nthere\n", "run", "-i", "--rm", Image, "sh", "-c", "cat; echo done >&2; exit 3");
        Assert.Equal(3, r.Code);
        Assert.Equal("hi\nthere\n", r.Out);
        Assert.Equal("done\n", r.Err);
        var cat = await Piped("hi\n", "run", "-i", "--rm", Image, "cat");
        Assert.Equal((0, "hi\n"), (cat.Code, cat.Out));
    }

    [Fact]
    public async Task AttachDetachKeysAndExecWithTtyAndStdin()
    {
        Ok(f.Docker("run", "-d", "-it", "--name", "dock-attach", Image, "sh"));
        try
        {
            using JsonDocument config = JsonDocument.Parse(Ok(f.Docker("inspect", "-f", "{{json .Config}}", "dock-attach")).Out);
            Assert.True(config.RootElement.GetProperty("Tty").GetBoolean());
            Assert.True(config.RootElement.GetProperty("OpenStdin").GetBoolean());
            using (var pty = new Pty(24, 80))
            {
                using Process p = OnPty(pty, "attach", "dock-attach");
                pty.Type("echo attached-$((6*7))\r");
                Assert.True(pty.WaitFor("attached-42"), pty.Output);
                pty.Type("\x10\x11"); // ctrl-p ctrl-q
                Exit(p, pty);
                Assert.True(pty.WaitFor("read escape sequence"), pty.Output); // the docker CLI's word for a detach
            }
            using (var pty = new Pty(24, 80))
            {
                using Process p = OnPty(pty, "attach", "--detach-keys", "ctrl-a,x", "dock-attach");
                pty.Type("echo again-$((6*7))\r");
                Assert.True(pty.WaitFor("again-42"), pty.Output);
                pty.Type("\x01x");
                Exit(p, pty);
            }
            Assert.Equal("running", Ok(f.Docker("inspect", "-f", "{{.State.Status}}", "dock-attach")).Out.Trim());
            Assert.Contains("attached-42", Ok(f.Docker("logs", "dock-attach")).Out); // typed into the tty, logged as stdout

            using (var pty = new Pty(33, 101))
            {
                using Process p = OnPty(pty, "exec", "-it", "dock-attach", "sh");
                Assert.True(pty.WaitFor("# "), pty.Output);
                int mark = pty.Output.Length;
                pty.Type("tty\r");
                Assert.True(pty.WaitFor("/dev/pts/", mark), pty.Output);
                Assert.True(SizeBecomes(pty, "33 101"), pty.Output);
                pty.Type("exit 3\r");
                Assert.Equal(3, Exit(p, pty));
            }

            var wc = await Piped("a\nb\n", "exec", "-i", "dock-attach", "sh", "-c", "wc -l; echo to-err >&2; exit 4");
            Assert.Equal((4, "2", "to-err\n"), (wc.Code, wc.Out.Trim(), wc.Err));

            // The output streams while the process runs: "first" arrives before the exec's stdin (which it waits for) ends.
            var psi = new ProcessStartInfo(f.DockerBinary) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (string a in new[] { "exec", "-i", "dock-attach", "sh", "-c", "echo first; read x; echo got-$x" }) psi.ArgumentList.Add(a);
            foreach (var (k, v) in f.Env()) { if (v is null) psi.Environment.Remove(k); else psi.Environment[k] = v; }
            using (Process p = Process.Start(psi)!)
            {
                Task<string?> first = p.StandardOutput.ReadLineAsync();
                Assert.Equal("first", await first.WaitAsync(TimeSpan.FromSeconds(20)));
                await p.StandardInput.WriteAsync("line\n");
                p.StandardInput.Close();
                Assert.Equal("got-line", (await p.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(20))).Trim());
                Assert.True(p.WaitForExit(20_000));
                Assert.Equal(0, p.ExitCode);
            }
            Assert.Equal(127, f.Docker("exec", "dock-attach", "no-such-command").Code);
        }
        finally { f.Docker("rm", "-f", "dock-attach"); }
    }

    [Fact]
    public void AttachWithoutTtyIsMultiplexedAndTheDaemonWatchesTheDetachKeys()
    {
        Ok(f.Docker("run", "-d", "-i", "--name", "dock-cat", Image, "cat"));
        try
        {
            using var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified) { ReceiveTimeout = 20_000 };
            s.Connect(new UnixDomainSocketEndPoint(f.Socket));
            s.Send(Encoding.ASCII.GetBytes("POST /v1.41/containers/dock-cat/attach?stream=1&stdin=1&stdout=1&stderr=1&detachKeys=ctrl-x,q HTTP/1.1\r\n" +
                "Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"));
            var head = new StringBuilder();
            var one = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal) && s.Receive(one) == 1) head.Append((char)one[0]);
            Assert.StartsWith("HTTP/1.1 101", head.ToString());
            s.Send("hello\n"u8.ToArray());
            var frame = new byte[14];
            for (int got = 0, n; got < frame.Length && (n = s.Receive(frame, got, frame.Length - got, SocketFlags.None)) > 0;) got += n;
            Assert.Equal([1, 0, 0, 0, 0, 0, 0, 6, .. "hello\n"u8.ToArray()], frame); // stdout, 6 bytes
            s.Send([0x18, (byte)'q']); // ctrl-x q: without a tty the daemon watches for the keys and ends the attach
            Assert.Equal(0, s.Receive(new byte[16]));
            Assert.Equal("running", Ok(f.Docker("inspect", "-f", "{{.State.Status}}", "dock-cat")).Out.Trim());
        }
        finally { f.Docker("rm", "-f", "dock-cat"); }
    }

    [Fact]
    public void CreateItThenStartAiExitsWithTheContainersStatus()
    {
        Ok(f.Docker("create", "-it", "--name", "dock-start", Image, "sh"));
        try
        {
            using var pty = new Pty(24, 80);
            using Process p = OnPty(pty, "start", "-ai", "dock-start");
            Assert.True(pty.WaitFor("# "), pty.Output);
            pty.Type("echo started-$((6*7)); exit 9\r");
            Assert.True(pty.WaitFor("started-42"), pty.Output);
            Assert.Equal(9, Exit(p, pty));
            Assert.Equal("9", Ok(f.Docker("wait", "dock-start")).Out.Trim());
        }
        finally { f.Docker("rm", "-f", "dock-start"); }
    }

    [Fact]
    public void DockerPyExecWithStdin()
    {
        string script = $$"""
            import docker, socket
            c = docker.DockerClient(base_url="{{f.Host}}")
            k = c.containers.run("{{Image}}", ["sleep", "30"], detach=True, name="py-stdin")
            try:
                e = c.api.exec_create(k.id, ["sh", "-c", "tr a-z A-Z; exit 6"], stdin=True)
                s = c.api.exec_start(e["Id"], socket=True)
                s._sock.sendall(b"shout\n")
                s._sock.shutdown(socket.SHUT_WR)
                raw = b""
                while True:
                    b = s._sock.recv(4096)
                    if not b: break
                    raw += b
                out = b""
                while raw:
                    n = int.from_bytes(raw[4:8], "big")
                    out += raw[8:8 + n]; raw = raw[8 + n:]
                print(out.decode(), end="")
                print(c.api.exec_inspect(e["Id"])["ExitCode"])
            finally:
                k.remove(force=True)
            """;
        var r = Binaries.Run("python3", ["-c", script], timeout: TimeSpan.FromSeconds(60));
        Assert.True(r.Code == 0, r.ToString());
        Assert.Equal(["SHOUT", "6"], r.OutLines);
    }
}
