using System.Text.Json.Nodes;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

public sealed class LimitsTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    private const long MiB = 1024 * 1024;

    private static string MemoryLimit(string id) => HostCgroups.Read(id, "memory", "memory.limit_in_bytes", "memory.max");

    [Fact]
    public void Memory_limit_gets_a_hog_OOM_killed()
    {
        // busybox tail keeps the last lines; /dev/zero has no newline, so its line buffer grows without end.
        var b = NewBundle("tail", "/dev/zero");
        b.Resources(new JsonObject { ["memory"] = new JsonObject { ["limit"] = 32 * MiB } });
        var r = Run(b);
        Assert.True(r.ExitCode == 137, $"expected the OOM killer's SIGKILL (137):\n{r}");
    }

    [Fact]
    public void Memory_limit_is_set_and_update_changes_it()
    {
        var b = StartSleeper(b => b.Resources(new JsonObject { ["memory"] = new JsonObject { ["limit"] = 32 * MiB } }));
        Assert.Equal((32 * MiB).ToString(), MemoryLimit(b.Id));

        Runc["update", "--memory", "64m", b.Id].Ok();
        Assert.Equal((64 * MiB).ToString(), MemoryLimit(b.Id));

        Runc.Invoke(["update", "--resources", "-", b.Id], stdin: "{\"memory\":{\"limit\":" + 96 * MiB + "},\"pids\":{\"limit\":77}}").Ok();
        Assert.Equal((96 * MiB).ToString(), MemoryLimit(b.Id));
        Assert.Equal("77", HostCgroups.Read(b.Id, "pids", "pids.max", "pids.max"));

        Runc["update", "--pids-limit", "50", b.Id].Ok();
        Assert.Equal("50", HostCgroups.Read(b.Id, "pids", "pids.max", "pids.max"));
        Assert.Equal("running", Status(b.Id));
        Assert.Equal(["still here"], Runc["exec", b.Id, "echo", "still here"].Ok().StdoutLines);
    }

    [Fact]
    public void Update_with_a_bad_value_fails_clearly()
    {
        var b = StartSleeper();
        Runc["update", "--memory", "lots", b.Id].FailsWith(1, "lots", "memory");
        Runc["update", "--memory", "64m", NewId("missing")].FailsWith(1, "does not exist");
    }

    [Fact]
    public void Pids_limit_stops_a_fork_loop()
    {
        var b = StartSleeper(b => b.Resources(new JsonObject { ["pids"] = new JsonObject { ["limit"] = 20 } }));
        Assert.Equal("20", HostCgroups.Read(b.Id, "pids", "pids.max", "pids.max"));
        var r = Runc["exec", b.Id, "sh", "-c", "i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done; echo looped"];
        var current = int.Parse(HostCgroups.Read(b.Id, "pids", "pids.current", "pids.current"));
        Assert.True(current <= 20, $"pids.current {current} > 20\n{r}");
        var events = HostCgroups.Read(b.Id, "pids", "pids.events", "pids.events");
        var denied = events.Split('\n').Select(l => l.Split(' ')).Where(p => p[0] == "max").Select(p => long.Parse(p[1])).Single();
        Assert.True(denied > 0, $"no fork was refused (pids.events: {events})\n{r}");
        Assert.Contains("fork", r.Stderr);
    }

    [Fact]
    public void Events_stats_reports_the_cgroup()
    {
        var b = StartSleeper(b => b.Resources(new JsonObject { ["memory"] = new JsonObject { ["limit"] = 48 * MiB } }));
        var r = Runc["events", "--stats", b.Id].Ok();
        var ev = JsonNode.Parse(r.Stdout)!;
        Assert.Equal("stats", (string?)ev["type"]);
        Assert.Equal(b.Id, (string?)ev["id"]);
        Assert.True((long)ev["data"]!["pids"]!["current"]! >= 2, r.Stdout);
        Assert.True(ev["data"]!["memory"] is JsonObject, r.Stdout);
    }
}
