using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

public sealed class PauseTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    private static string Freezer(string id) => HostCgroups.IsV2
        ? (HostCgroups.Read(id, "", "", "cgroup.freeze") == "1" ? "FROZEN" : "THAWED")
        : HostCgroups.Read(id, "freezer", "freezer.state", "");

    [Fact]
    public void Pause_freezes_and_resume_thaws()
    {
        var b = StartSleeper();
        Runc["exec", "--detach", b.Id, "sleep", "100001"].Ok();
        Runc["pause", b.Id].Ok();
        Assert.Equal("paused", Status(b.Id));
        Assert.Equal("FROZEN", Freezer(b.Id));
        Runc["exec", b.Id, "true"].FailsWith(1, "paused");
        Runc["pause", b.Id].FailsWith(1, "not running");

        Runc["resume", b.Id].Ok();
        Assert.Equal("running", Status(b.Id));
        Assert.Equal("THAWED", Freezer(b.Id));
        Assert.Equal(["ok"], Runc["exec", b.Id, "echo", "ok"].Ok().StdoutLines);
        Runc["resume", b.Id].FailsWith(1, "not paused");
    }

    [Fact]
    public void A_paused_container_can_be_killed_and_force_deleted()
    {
        var b = StartSleeper();
        Runc["pause", b.Id].Ok();
        Runc["delete", b.Id].FailsWith(1, "paused");
        Runc["delete", "--force", b.Id].Ok();
        Assert.Empty(LeftoversOf(b.Id));

        var c = StartSleeper();
        Runc["pause", c.Id].Ok();
        Runc["kill", c.Id, "KILL"].Ok();
        WaitForStatus(c.Id, "stopped");
    }
}
