using System.Globalization;
using System.Text.Json;

using static Vessel.Cli.Tests.Expect;

namespace Vessel.Cli.Tests;

/// <summary>What a docker user types, through the built CLI and daemon: ps filters and Go templates on every listing,
/// events filtered by docker's keys, --env-file, size-based log rotation with --log-opt, --privileged.</summary>
public sealed class DockerParityTests(BusyboxFixture f) : IClassFixture<BusyboxFixture>
{
    private DaemonFixture D => f.D;
    private const string Image = BusyboxFixture.Image;

    [Fact]
    public void PsFiltersAndTemplatesOnEveryListing()
    {
        Ok(D.Vessel("run", "-d", "--name", "tpl-web", "-l", "app=tpl", "-l", "tier=front", Image, "sleep", "300"));
        Ok(D.Vessel("run", "-d", "--name", "tpl-db", "-l", "app=tpl", "-l", "tier=back", Image, "sleep", "300"));
        Assert.Equal(3, D.Vessel("run", "--name", "tpl-done", "-l", "app=tpl", Image, "sh", "-c", "exit 3").Code);
        try
        {
            Assert.Equal(["tpl-db back", "tpl-web front"],
                D.Vessel("ps", "--filter", "label=app=tpl", "--format", "{{.Names}} {{.Label \"tier\"}}").OutLines.Order().ToArray());
            Assert.Equal(["tpl-web"], D.Vessel("ps", "-f", "label=tier=front", "--format", "{{.Names}}").OutLines);
            Assert.Equal(["tpl-db"], D.Vessel("ps", "-f", "name=tpl-d", "-f", "label=app", "--format", "{{.Names}}").OutLines);
            // status and exited look at stopped containers without -a, as docker's do
            Assert.Equal(["tpl-done"], D.Vessel("ps", "-f", "status=exited", "-f", "label=app=tpl", "--format", "{{.Names}}").OutLines);
            Assert.Equal(["tpl-done exited"], D.Vessel("ps", "-a", "-f", "exited=3", "--format", "{{.Names}} {{.State}}").OutLines);
            Assert.Equal(["tpl-done"], D.Vessel("ps", "-n", "1", "--format", "{{.Names}}").OutLines);
            Assert.Empty(D.Vessel("ps", "-f", "label=app=nothing").OutLines.Skip(1));

            var table = D.Vessel("ps", "-f", "label=app=tpl", "--format", "table {{.ID}}\\t{{.Names}}");
            Ok(table);
            Assert.Matches(@"^CONTAINER ID\s+NAMES$", table.OutLines[0]);
            Assert.Equal(3, table.OutLines.Length);
            using (JsonDocument row = JsonDocument.Parse(D.Vessel("ps", "-f", "name=tpl-web", "--format", "{{json .}}").Out))
            {
                Assert.Equal("tpl-web", row.RootElement.GetProperty("Names").GetString());
                Assert.Equal("\"sleep 300\"", row.RootElement.GetProperty("Command").GetString());
                Assert.Contains("tier=front", row.RootElement.GetProperty("Labels").GetString());
            }

            // inspect -f: docker's PascalCase paths over Vessel's camelCase documents
            Assert.Equal(["exited 3 tpl-done <no value>"], D.Vessel("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.Name}} {{.Nope}}", "tpl-done").OutLines);
            using (JsonDocument state = JsonDocument.Parse(D.Vessel("container", "inspect", "--format", "{{json .State}}", "tpl-web").Out))
                Assert.True(state.RootElement.GetProperty("running").GetBoolean());
            Assert.StartsWith("sha256:", D.Vessel("image", "inspect", "-f", "{{.Id}}", Image).Out);

            Assert.Contains("bb:1", D.Vessel("images", "--format", "{{.Repository}}:{{.Tag}}").OutLines);
            Assert.Contains("bridge", D.Vessel("network", "ls", "--format", "{{.Name}}").OutLines);
            Ok(D.Vessel("volume", "create", "tpl-vol"));
            Assert.Contains("local tpl-vol", D.Vessel("volume", "ls", "--format", "{{.Driver}} {{.Name}}").OutLines);
            Assert.EndsWith("/tpl-vol/_data\n", D.Vessel("volume", "inspect", "-f", "{{.Mountpoint}}", "tpl-vol").Out);
            Assert.Equal(["bridge"], D.Vessel("network", "inspect", "-f", "{{.Driver}}", "bridge").OutLines);
            Ok(D.Vessel("volume", "rm", "tpl-vol"));
            Ok(D.Vessel("vm", "ls", "--format", "{{.Name}}"));
            var stats = D.Vessel("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "tpl-web");
            Ok(stats);
            Assert.Equal(["tpl-web 1"], stats.OutLines);

            FailsWithOneLine(D.Vessel("ps", "--format", "{{range .}}{{end}}"), "unsupported action");
            FailsWithOneLine(D.Vessel("ps", "--format", "{{.Nope}}"), "no field Nope");
            FailsWithOneLine(D.Vessel("ps", "-f", "colour=red"), "invalid filter 'colour'");
            FailsWithOneLine(D.Vessel("version", "--format", "{{.Server}}"), "takes no Go template");
        }
        finally
        {
            D.Vessel("rm", "-f", "tpl-web", "tpl-db", "tpl-done");
        }
    }

    [Fact]
    public void EventsFilterByDockerKeysAndCarryExitCodes()
    {
        string since = (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000m - 1).ToString(CultureInfo.InvariantCulture);
        Ok(D.Vessel("run", "-d", "--name", "ev-long", Image, "sleep", "300"));
        Ok(D.Vessel("stop", "-t", "0", "ev-long"));
        Ok(D.Vessel("rm", "ev-long"));
        Assert.Equal(3, D.Vessel("run", "--rm", "--name", "ev-short", Image, "sh", "-c", "exit 3").Code);

        string[] Events(params string[] filters) =>
            D.Vessel(["events", "--since", since, "--until", "now", "--format", "{{.Action}} {{.Actor.Attributes.exitCode}}", .. filters.SelectMany(x => new[] { "-f", x })])
                .OutLines.Select(l => l.Trim()).ToArray();

        string[] life = Events("container=ev-long");
        Assert.Equal(["create", "start"], life[..2]);
        Assert.Equal("destroy", life[^1]);
        Assert.Contains("die 137", life);
        Assert.Contains("stop", life);
        Assert.Equal(["die 3"], Events("container=ev-short", "event=die"));
        Assert.Equal(["die 137", "die 3"], Events("event=die", "image=" + Image, "container=ev-long", "container=ev-short"));
        Assert.Empty(Events("event=die", "image=other:1"));
        Assert.Equal(2, Events("type=container", "event=destroy", "container=ev-long", "container=ev-short").Length);
        var bad = D.Vessel("events", "--since", since, "--until", "now", "-f", "colour=red");
        FailsWithOneLine(bad, "unknown key \"colour\"");
    }

    [Fact]
    public void EnvFileAndClientVariables()
    {
        string file = Path.Combine(D.Tmp.Path, "app.env");
        File.WriteAllText(file, "# settings\nA=1\n\n  B=from-file\nFROM_CLIENT\nNOT_SET_ANYWHERE\nQ=\"kept as is\"\n");
        var r = Binaries.Run(Binaries.Vessel,
            ["-H", D.Host, "run", "--rm", "--env-file", file, "-e", "B=override", "-e", "ALSO_NOT_SET", Image, "env"],
            new Dictionary<string, string?> { ["FROM_CLIENT"] = "yes", ["NOT_SET_ANYWHERE"] = null, ["ALSO_NOT_SET"] = null });
        Ok(r);
        Assert.Contains("A=1", r.OutLines);
        Assert.Contains("B=override", r.OutLines);
        Assert.Contains("FROM_CLIENT=yes", r.OutLines);
        Assert.Contains("Q=\"kept as is\"", r.OutLines);
        Assert.DoesNotContain(r.OutLines, l => l.StartsWith("NOT_SET_ANYWHERE", StringComparison.Ordinal) || l.StartsWith("ALSO_NOT_SET", StringComparison.Ordinal));
        FailsWithOneLine(D.Vessel("run", "--rm", "--env-file", Path.Combine(D.Tmp.Path, "missing.env"), Image, "true"), "no such file or directory");
    }

    [Fact]
    public void LogsRotateBySizeAndStaySorted()
    {
        // 300 lines of ~60 bytes of JSON each (~18 KiB) into files of 2 KiB, 3 kept: the oldest fall off.
        var run = D.Vessel("run", "-d", "--name", "chatty", "--log-opt", "max-size=2k", "--log-opt", "max-file=3", Image,
            "sh", "-c", "i=0; while [ $i -lt 300 ]; do echo line-$i; i=$((i+1)); done");
        Ok(run);
        string id = run.Out.Trim();
        try
        {
            Assert.Equal("0", D.Vessel("wait", "chatty").Out.Trim());
            string dir = Path.Combine(D.Root, "containers", id);
            Assert.True(File.Exists(Path.Combine(dir, "container.log.2")));
            Assert.False(File.Exists(Path.Combine(dir, "container.log.3")));
            foreach (string log in Directory.GetFiles(dir, "container.log*")) Assert.True(new FileInfo(log).Length <= 2048, log);

            string[] lines = D.Vessel("logs", "chatty").OutLines;
            Assert.Equal("line-299", lines[^1]);
            Assert.NotEqual("line-0", lines[0]); // rotated away
            int first = int.Parse(lines[0]["line-".Length..], CultureInfo.InvariantCulture);
            Assert.Equal(Enumerable.Range(first, 300 - first).Select(i => $"line-{i}"), lines); // nothing lost between files
            Assert.Equal(["line-298", "line-299"], D.Vessel("logs", "--tail", "2", "chatty").OutLines);
            Assert.Empty(D.Vessel("logs", "--since", DateTimeOffset.UtcNow.AddMinutes(1).ToString("o", CultureInfo.InvariantCulture), "chatty").OutLines);
            Assert.Equal(lines, D.Vessel("logs", "--since", "10m", "chatty").OutLines);
            string lastStamp = D.Vessel("logs", "-t", "--tail", "1", "chatty").Out.Split(' ')[0];
            Assert.Equal(lines, D.Vessel("logs", "--until", lastStamp, "chatty").OutLines); // the line at the stamp is included
            Assert.Empty(D.Vessel("logs", "--until", "2000-01-01T00:00:00Z", "chatty").OutLines);

            FailsWithOneLine(D.Vessel("run", "--rm", "--log-opt", "max-size=lots", Image, "true"), "max-size");
            FailsWithOneLine(D.Vessel("run", "--rm", "--log-driver", "syslog", Image, "true"), "syslog");
        }
        finally
        {
            D.Vessel("rm", "-f", "chatty");
        }
    }

    /// <summary>A pull is an operation of the daemon: Ctrl-C of `vessel pull` cancels it there (not only the client),
    /// exits 130 and names the operation, which `operation show` then reports as cancelled.</summary>
    [Fact]
    public async Task CtrlCOfPullCancelsTheOperation()
    {
        // A "registry" that accepts connections and never answers: the pull waits until it is cancelled.
        using var stall = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        stall.Start();
        var held = new List<System.Net.Sockets.Socket>();
        using var stop = new CancellationTokenSource();
        Task accepting = Task.Run(async () =>
        {
            try { while (true) { var s = await stall.AcceptSocketAsync(stop.Token); lock (held) held.Add(s); } }
            catch (Exception e) when (e is OperationCanceledException or System.Net.Sockets.SocketException or ObjectDisposedException) { }
        });
        string target = $"127.0.0.1:{((System.Net.IPEndPoint)stall.LocalEndpoint).Port}/stall:1";
        // SIGINT back to its default: a test host started from a background job inherits it ignored.
        var psi = new System.Diagnostics.ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "--default-signal=INT", Binaries.Vessel, "-H", D.Host, "pull", target }) psi.ArgumentList.Add(a);
        using var pull = System.Diagnostics.Process.Start(psi)!;
        try
        {
            Task<string> err = pull.StandardError.ReadToEndAsync();
            _ = pull.StandardOutput.ReadToEndAsync();
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!D.Vessel("operation", "ls", "--format", "json").OutLines.Any(l => l.Contains(target, StringComparison.Ordinal) && l.Contains("\"running\"", StringComparison.Ordinal)))
            {
                Assert.True(DateTime.UtcNow < deadline, "the pull never showed up as a running operation");
                await Task.Delay(50);
            }
            Assert.Equal(0, Kill(pull.Id, 2));
            using (var limit = new CancellationTokenSource(TimeSpan.FromSeconds(30))) await pull.WaitForExitAsync(limit.Token);
            Assert.Equal(130, pull.ExitCode);
            var m = System.Text.RegularExpressions.Regex.Match(await err, @"^vessel: pull cancelled \(operation ([0-9a-f]+)\)\n$");
            Assert.True(m.Success, await err);
            var show = D.Vessel("operation", "show", m.Groups[1].Value);
            Ok(show);
            using JsonDocument op = JsonDocument.Parse(show.Out);
            Assert.Equal("cancelled", op.RootElement.GetProperty("status").GetString());
        }
        finally
        {
            if (!pull.HasExited) pull.Kill();
            stop.Cancel();
            stall.Stop();
            await accepting.WaitAsync(TimeSpan.FromSeconds(10));
            lock (held) foreach (var s in held) s.Dispose();
        }
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int sig);

    [Fact]
    public void PrivilegedGetsEveryCapabilityTheDaemonHas()
    {
        var r = D.Vessel("run", "--rm", "--privileged", Image, "sh", "-c", "grep CapEff /proc/self/status");
        Ok(r);
        string ours = File.ReadLines("/proc/self/status").First(l => l.StartsWith("CapBnd:", StringComparison.Ordinal)).Split('\t')[1];
        Assert.Equal(Convert.ToUInt64(ours, 16), Convert.ToUInt64(r.Out.Split('\t')[1].Trim(), 16));
    }
}

/// <summary>vesseld --group: the socket is root:GROUP 0660, so a user in that group may use vessel and others may not.</summary>
public sealed class SocketGroupTests
{
    [Fact]
    public void TheGroupMayUseTheSocketAndNobodyElse()
    {
        const uint daemonGid = 1; // Debian's "daemon" group: present on every Debian system
        using var d = new DaemonFixture(["--group", "daemon"]);
        File.SetUnixFileMode(d.Tmp.Path, (UnixFileMode)0x1ed); // the test's temp dir is 0700: let nobody reach the socket
        Assert.Equal($"0 {daemonGid} 660", Binaries.Run("stat", ["-c", "%u %g %a", d.Socket]).Out.Trim());

        // A user (nobody) with the group as a supplementary group may; without it the CLI says why in one line.
        var member = Binaries.Run("setpriv", ["--reuid=65534", "--regid=65534", $"--groups={daemonGid}", Binaries.Vessel, "-H", d.Host, "version", "--format", "json"]);
        Assert.True(member.Code == 0, member.ToString());
        Assert.Contains("\"server\"", member.Out);
        var stranger = Binaries.Run("setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", Binaries.Vessel, "-H", d.Host, "ps"]);
        Assert.True(stranger.Code == 125, stranger.ToString());
        Assert.StartsWith("vessel: ", Assert.Single(stranger.ErrLines));
        Assert.Contains("permission denied", stranger.Err, StringComparison.OrdinalIgnoreCase);
    }
}
