using System.Text.Json.Nodes;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

public sealed class LifecycleTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    private Bundle NewWaiter() => NewBundle().Shell("trap 'exit 0' TERM; sleep 100000 & wait");

    [Fact]
    public void Create_start_kill_delete_walks_through_the_states()
    {
        var b = NewWaiter();
        var pidFile = Path.Combine(NewTempDir("pid"), "init.pid");
        Create(b, "--pid-file", pidFile).Ok();

        var created = StateOf(b.Id);
        Assert.Equal("created", (string?)created["status"]);
        var pid = (int)created["pid"]!;
        Assert.True(pid > 0, created.ToJsonString());
        Assert.Equal(pid.ToString(), File.ReadAllText(pidFile).Trim());
        Assert.True(Directory.Exists($"/proc/{pid}"), "the init process exists while created");
        Assert.Equal(b.Id, (string?)created["id"]);
        Assert.Equal(b.Dir, (string?)created["bundle"]);
        Assert.False(string.IsNullOrEmpty((string?)created["ociVersion"]));
        Assert.Equal(pid, HostCgroups.ProcessesOf(b.Id).Single());

        Runc["start", b.Id].Ok();
        Assert.Equal("running", Status(b.Id));
        Assert.Equal(pid, (int)StateOf(b.Id)["pid"]!);
        Runc["start", b.Id].FailsWith(1);

        Runc["kill", b.Id, "TERM"].Ok();
        WaitForStatus(b.Id, "stopped");

        Runc["delete", b.Id].Ok();
        Runc["state", b.Id].FailsWith(1, "does not exist");
        Assert.Empty(LeftoversOf(b.Id));
    }

    [Theory]
    [InlineData("SIGTERM")]
    [InlineData("15")]
    [InlineData("KILL")]
    [InlineData("9")]
    [InlineData("SIGKILL")]
    public void Kill_accepts_signal_names_and_numbers(string signal)
    {
        var b = StartSleeper();
        Runc["kill", b.Id, signal].Ok();
        WaitForStatus(b.Id, "stopped");
        Runc["delete", b.Id].Ok();
    }

    [Fact]
    public void Kill_without_signal_sends_TERM_and_all_reaches_every_process()
    {
        var b = StartSleeper();
        Runc["kill", b.Id].Ok();
        WaitForStatus(b.Id, "stopped");

        var c = NewBundle().Shell("sleep 100000 & sleep 100000 & sleep 100000");
        Create(c).Ok();
        Runc["start", c.Id].Ok();
        Eventually(() => HostCgroups.ProcessesOf(c.Id).Count >= 3, "three sleeps");
        Runc["kill", "--all", c.Id, "KILL"].Ok();
        Eventually(() => HostCgroups.ProcessesOf(c.Id).Count == 0, "every process to die");
        WaitForStatus(c.Id, "stopped");
    }

    [Fact]
    public void Kill_with_an_unknown_signal_fails_clearly()
    {
        var b = StartSleeper();
        Runc["kill", b.Id, "SIGNOPE"].FailsWith(1, "SIGNOPE");
        Assert.Equal("running", Status(b.Id));
    }

    [Fact]
    public void List_shows_the_container()
    {
        var b = StartSleeper();
        var list = JsonNode.Parse(Runc["list", "--format", "json"].Ok().Stdout)!.AsArray();
        var entry = list.Single(e => (string?)e!["id"] == b.Id)!;
        Assert.Equal("running", (string?)entry["status"]);
        Assert.Equal(b.Dir, (string?)entry["bundle"]);

        var table = Runc["list"].Ok();
        Assert.StartsWith("ID", table.Stdout);
        Assert.Contains(table.StdoutLines, l => l.StartsWith(b.Id + " ") && l.Contains("running"));
        Assert.Contains(b.Id, Runc["list", "-q"].Ok().StdoutLines);
    }

    [Fact]
    public void Delete_of_a_running_container_needs_force()
    {
        var b = StartSleeper();
        Runc["delete", b.Id].FailsWith(1, b.Id, "running");
        Assert.Equal("running", Status(b.Id));
        Runc["delete", "--force", b.Id].Ok();
        Runc["state", b.Id].FailsWith(1, "does not exist");
        Assert.Empty(LeftoversOf(b.Id));
    }

    [Fact]
    public void Delete_of_a_created_container_needs_force_and_kills_its_init()
    {
        // The runtime-spec: delete of a container that is not stopped MUST fail and have no effect
        // (runtime-tools' delete test); --force then kills the waiting init.
        var b = NewWaiter();
        Create(b).Ok();
        var pid = (int)StateOf(b.Id)["pid"]!;
        Runc["delete", b.Id].FailsWith(1, b.Id, "created");
        Assert.Equal("created", Status(b.Id));
        Runc["delete", "--force", b.Id].Ok();
        Assert.Empty(LeftoversOf(b.Id));
        Eventually(() => !File.Exists($"/proc/{pid}/status") || File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ"), "the init to die");
    }

    [Fact]
    public void A_container_that_exits_by_itself_is_stopped()
    {
        var b = NewBundle("true");
        Create(b).Ok();
        Runc["start", b.Id].Ok();
        WaitForStatus(b.Id, "stopped");
        Runc["kill", b.Id, "KILL"].FailsWith(1, "not running");
        Runc["delete", b.Id].Ok();
    }

    [Theory]
    [InlineData("state")]
    [InlineData("start")]
    [InlineData("kill")]
    [InlineData("delete")]
    [InlineData("pause")]
    [InlineData("ps")]
    public void Unknown_id_does_not_exist(string command)
    {
        var id = NewId("missing");
        Runc[command, id].FailsWith(1, $"container {id} does not exist");
    }

    [Fact]
    public void Duplicate_id_already_exists_and_leaves_the_first_alone()
    {
        var b = NewWaiter();
        Create(b).Ok();
        var pid = (int)StateOf(b.Id)["pid"]!;
        var again = NewBundle("true");
        var r = Runc.Invoke(["create", "--bundle", again.Save().Dir, b.Id]);
        r.FailsWith(1, $"container with id {b.Id} already exists");
        var st = StateOf(b.Id);
        Assert.Equal("created", (string?)st["status"]);
        Assert.Equal(pid, (int)st["pid"]!);
        Assert.Equal(b.Dir, (string?)st["bundle"]);
    }

    [Theory]
    [InlineData("../escape")]
    [InlineData("a/b")]
    [InlineData("..")]
    public void Invalid_ids_are_refused(string id)
    {
        var b = NewBundle("true");
        Runc.Invoke(["create", "--bundle", b.Save().Dir, id]).FailsWith(1, "invalid container id");
        Assert.False(Directory.Exists(Path.GetFullPath(Path.Combine(State.Path, id))) && id != "..", "nothing made for the bad id");
    }
}
