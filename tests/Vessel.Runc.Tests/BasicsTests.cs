using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

public sealed class BasicsTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    [Fact]
    public void Process_is_pid_1_in_its_namespace()
    {
        var r = Run(NewBundle().Shell("echo $$")).Ok();
        Assert.Equal(["1"], r.StdoutLines);
    }

    [Fact]
    public void Hostname_comes_from_config()
    {
        var b = NewBundle("hostname");
        b.Config["hostname"] = "vessel-box";
        Assert.Equal(["vessel-box"], Run(b).Ok().StdoutLines);
    }

    [Fact]
    public void Run_exits_with_the_container_status()
    {
        var r = Run(NewBundle().Shell("exit 42"));
        Assert.True(r.ExitCode == 42, r.ToString());
    }

    [Fact]
    public void Stdout_and_stderr_pass_through_separately()
    {
        var r = Run(NewBundle().Shell("echo to-out; echo to-err >&2")).Ok();
        Assert.Equal(["to-out"], r.StdoutLines);
        Assert.Equal("to-err", r.Stderr.Trim());
    }

    [Fact]
    public void Stdin_passes_through()
    {
        var b = NewBundle("tr", "a-z", "A-Z");
        var r = Runc.Invoke(["run", "--bundle", b.Save().Dir, b.Id], stdin: "shout\n").Ok();
        Assert.Equal(["SHOUT"], r.StdoutLines);
    }

    [Fact]
    public void Environment_and_cwd_come_from_config()
    {
        var b = NewBundle().Shell("echo $GREETING; pwd");
        b.Process["env"]!.AsArray().Add("GREETING=hello");
        b.Process["cwd"] = "/etc";
        Assert.Equal(["hello", "/etc"], Run(b).Ok().StdoutLines);
    }
}
