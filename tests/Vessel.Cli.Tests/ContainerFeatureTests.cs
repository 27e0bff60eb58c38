using System.Diagnostics;
using System.Text.Json;
using Vessel.Api;

using static Vessel.Cli.Tests.Expect;

namespace Vessel.Cli.Tests;

/// <summary>Restart policies, stop signals, health checks, --init and OOM kills, through the CLI and a private daemon.</summary>
public sealed class ContainerFeatureTests(BusyboxFixture f) : IClassFixture<BusyboxFixture>
{
    private DaemonFixture D => f.D;
    private const string Image = BusyboxFixture.Image;

    private ContainerInspect Inspect(string id)
    {
        var r = D.Vessel("inspect", id);
        Ok(r);
        return JsonSerializer.Deserialize(JsonDocument.Parse(r.Out).RootElement[0].GetRawText(), ContainerJson.Default.ContainerInspect)!;
    }

    /// <summary>Polls until <paramref name="done"/> holds (at most 30 s: no timing is asserted).</summary>
    private static void Until(Func<bool> done, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!done())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException(what);
            Thread.Sleep(50);
        }
    }

    [Fact]
    public void OnFailureRestartsUpToItsCount()
    {
        var run = D.Vessel("run", "-d", "--restart", "on-failure:2", Image, "sh", "-c", "echo run; exit 3");
        Ok(run);
        string id = run.Out.Trim();
        Until(() => Inspect(id) is { State.Status: ContainerStatus.Exited, RestartCount: 2 }, "two restarts, then exited");
        Assert.Equal(["run", "run", "run"], D.Vessel("logs", id).OutLines);
        Assert.Equal("3", D.Vessel("wait", id).Out.Trim());
        var conflict = D.Vessel("run", "--rm", "--restart", "always", Image, "true");
        Assert.True(conflict.Code == 125 && conflict.Err.Contains("--restart and --rm"), conflict.ToString());
        var bad = D.Vessel("run", "-d", "--restart", "sometimes", Image, "true");
        Assert.True(bad.Code == 125 && bad.ErrLines.Length == 1, bad.ToString());
        Ok(D.Vessel("rm", id));
    }

    [Fact]
    public void StopSignalTimeoutAndRestartVerb()
    {
        var run = D.Vessel("run", "-d", "--restart", "always", "--stop-signal", "USR1", "--stop-timeout", "30", Image,
            "sh", "-c", "trap 'echo got usr1; exit 7' USR1; echo up; while true; do sleep 0.1; done");
        Ok(run);
        string id = run.Out.Trim();
        Until(() => D.Vessel("logs", id).Out.Contains("up"), "the trap is set");
        Ok(D.Vessel("stop", id)); // USR1, not TERM (sh as pid 1 ignores TERM: a TERM would wait the full 30 s)
        Assert.Equal("7", D.Vessel("wait", id).Out.Trim());
        Assert.Contains("got usr1", D.Vessel("logs", id).Out);
        var stopped = Inspect(id);
        Assert.Equal(ContainerStatus.Exited, stopped.State.Status); // stop suppresses the always policy
        Ok(D.Vessel("restart", "-t", "1", id));
        Until(() => Inspect(id).State.Status == ContainerStatus.Running, "running again");
        Ok(D.Vessel("rm", "-f", id));
    }

    [Fact]
    public void HealthTurnsHealthyThenUnhealthy()
    {
        var run = D.Vessel("run", "-d", "--health-cmd", "test -e /tmp/ok", "--health-interval", "100ms", "--health-retries", "2", Image,
            "sh", "-c", "touch /tmp/ok; while true; do sleep 0.1; done");
        Ok(run);
        string id = run.Out.Trim();
        Until(() => Inspect(id).State.Health?.Status == "healthy", "healthy");
        Assert.Contains("(healthy)", D.Vessel("ps").Out);
        Ok(D.Vessel("exec", id, "rm", "/tmp/ok"));
        Until(() => Inspect(id).State.Health?.Status == "unhealthy", "unhealthy");
        var h = Inspect(id).State.Health!;
        Assert.True(h.FailingStreak >= 2 && h.Log.Count is > 0 and <= 5, h.ToString());
        Assert.Contains("(unhealthy)", D.Vessel("ps").Out);
        var events = D.Vessel("events", "--since", "5m", "--until", "now", "--filter", "id=" + id);
        Assert.Contains("health_status: healthy", events.Out);
        Assert.Contains("health_status: unhealthy", events.Out);
        var none = D.Vessel("run", "-d", "--no-healthcheck", Image, "sleep", "30");
        Ok(none);
        Assert.Null(Inspect(none.Out.Trim()).State.Health);
        Ok(D.Vessel("rm", "-f", id, none.Out.Trim()));
    }

    [Fact]
    public void InitIsPid1AndReapsZombies()
    {
        // The subshell's sleep is orphaned; with --init tini (pid 1) reaps it, without, `sleep 30` as pid 1 never does.
        var with = D.Vessel("run", "-d", "--init", Image, "sh", "-c", "(sleep 0.2 &); exec sleep 30");
        var without = D.Vessel("run", "-d", Image, "sh", "-c", "(sleep 0.2 &); exec sleep 30");
        Ok(with);
        Ok(without);
        Until(() => D.Vessel("exec", without.Out.Trim(), "ps", "-o", "stat,comm").OutLines.Any(l => l.StartsWith('Z')), "a zombie without --init");
        var ps = D.Vessel("exec", with.Out.Trim(), "ps", "-o", "pid,stat,comm");
        Ok(ps);
        Assert.Matches(@"^\s*1 S\s+docker-init$", ps.OutLines[1]);
        Assert.DoesNotContain(ps.OutLines, l => l.Contains(" Z "));
        Assert.Equal(["/sbin/docker-init", "--", "sh"], Inspect(with.Out.Trim()).Args.Prepend(Inspect(with.Out.Trim()).Path).Take(3));
        Ok(D.Vessel("rm", "-f", with.Out.Trim(), without.Out.Trim()));
    }

    [Fact]
    public void OomKillIsRecorded()
    {
        var run = D.Vessel("run", "--name", "oom-victim", "-m", "16m", Image, "sh", "-c", "tail /dev/zero");
        Assert.Equal(137, run.Code);
        var i = Inspect("oom-victim");
        Assert.True(i.State.OomKilled, i.State.ToString());
        Assert.Contains(" oom ", D.Vessel("events", "--since", "5m", "--until", "now", "--filter", "name=oom-victim").Out);
        Ok(D.Vessel("rm", "oom-victim"));
        var calm = D.Vessel("run", "--name", "no-oom", "-m", "16m", Image, "true");
        Ok(calm);
        Assert.False(Inspect("no-oom").State.OomKilled);
        Ok(D.Vessel("rm", "no-oom"));
    }

    [Fact]
    public void SecurityOptions()
    {
        var r = D.Vessel("run", "--rm", "--security-opt", "no-new-privileges", "--security-opt", "seccomp=unconfined", "--security-opt", "label=disable",
            Image, "grep", "-E", "^(NoNewPrivs|Seccomp):", "/proc/self/status");
        Ok(r);
        Assert.Equal(["NoNewPrivs:\t1", "Seccomp:\t0"], r.OutLines);
        string profile = Path.Combine(D.Tmp.Path, "seccomp.json");
        File.WriteAllText(profile, """{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":1}]}""");
        var denied = D.Vessel("run", "--rm", "--security-opt", "seccomp=" + profile, Image, "sh", "-c", "mkdir /tmp/x || echo denied");
        Ok(denied);
        Assert.Contains("denied", denied.Out);
        var bad = D.Vessel("run", "--rm", "--security-opt", "bogus", Image, "true");
        Assert.True(bad.Code == 125 && bad.ErrLines.Length == 1 && bad.Err.StartsWith("vessel: invalid --security-opt", StringComparison.Ordinal), bad.ToString());
    }
}

/// <summary>kill -9 of vesseld: an `always` container whose init died meanwhile is started again by the next daemon;
/// an `unless-stopped` one a user stopped stays stopped.</summary>
public sealed class RestartRecoveryTests
{
    [Fact]
    public void PoliciesHoldAcrossKill9OfTheDaemon()
    {
        using var f = new BusyboxFixture();
        DaemonFixture d = f.D;
        string always = Run(d, "--restart", "always", BusyboxFixture.Image, "sleep", "1000");
        string stopped = Run(d, "--restart", "unless-stopped", BusyboxFixture.Image, "sleep", "1000");
        Assert.Equal(0, d.Vessel("stop", "-t", "0", stopped).Code);
        int init = JsonDocument.Parse(d.Vessel("inspect", always).Out).RootElement[0].GetProperty("state").GetProperty("pid").GetInt32();

        d.Process.Kill(); // SIGKILL
        d.Process.WaitForExit();
        Assert.Equal(0, Binaries.Run("kill", ["-9", init.ToString()]).Code); // the container's init dies while no daemon runs

        var psi = new ProcessStartInfo(Binaries.Vesseld) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in d.Args) psi.ArgumentList.Add(a); // the same bridge and nftables table as the first daemon
        using Process again = Process.Start(psi)!;
        again.BeginErrorReadLine();
        again.BeginOutputReadLine();
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!Binaries.Answers(d.Socket) && DateTime.UtcNow < deadline) Thread.Sleep(20);
            JsonElement State(string id) => JsonDocument.Parse(d.Vessel("inspect", id).Out).RootElement[0];
            deadline = DateTime.UtcNow.AddSeconds(30);
            while (State(always).GetProperty("state").GetProperty("status").GetString() != "running" && DateTime.UtcNow < deadline) Thread.Sleep(50);
            var a = State(always);
            Assert.Equal("running", a.GetProperty("state").GetProperty("status").GetString());
            Assert.NotEqual(init, a.GetProperty("state").GetProperty("pid").GetInt32());
            Assert.Equal(1, a.GetProperty("restartCount").GetInt32());
            Assert.Equal("exited", State(stopped).GetProperty("state").GetProperty("status").GetString());
        }
        finally
        {
            var ids = d.Vessel("ps", "-aq").OutLines;
            if (ids.Length > 0) d.Vessel(["rm", "-f", .. ids]);
            Binaries.Stop(again.Id);
        }
    }

    private static string Run(DaemonFixture d, params string[] args)
    {
        var r = d.Vessel(["run", "-d", .. args]);
        Assert.True(r.Code == 0, r.ToString());
        return r.Out.Trim();
    }
}
