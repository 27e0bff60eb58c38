using System.Text.RegularExpressions;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

public sealed class ExecTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    [Fact]
    public void Exec_runs_a_command_and_propagates_its_status()
    {
        var b = StartSleeper();
        Assert.Equal(["hi"], Runc["exec", b.Id, "echo", "hi"].Ok().StdoutLines);
        var r = Runc["exec", b.Id, "sh", "-c", "exit 7"];
        Assert.True(r.ExitCode == 7, r.ToString());
        Assert.Equal("running", Status(b.Id));
    }

    [Fact]
    public void Exec_takes_env_cwd_and_user()
    {
        var b = StartSleeper();
        var r = Runc["exec", "--env", "FOO=bar", "--cwd", "/etc", "--user", "1000:1000", b.Id, "sh", "-c", "echo $FOO; pwd; id -u; id -g"].Ok();
        Assert.Equal(["bar", "/etc", "1000", "1000"], r.StdoutLines);
        Assert.Equal(["1000"], Runc["exec", "-u", "1000", b.Id, "id", "-u"].Ok().StdoutLines);
    }

    [Fact]
    public void Exec_sees_the_container_pid_namespace()
    {
        var b = StartSleeper();
        var r = Runc["exec", b.Id, "ps", "-o", "pid,args"].Ok();
        Assert.Contains(r.StdoutLines, l => Regex.IsMatch(l, @"^\s*1\s+sh -c trap"));
        Assert.Contains(r.StdoutLines, l => Regex.IsMatch(l, @"^\s*\d+\s+sleep 100000"));
        Assert.Equal(["vessel"], Runc["exec", b.Id, "hostname"].Ok().StdoutLines);
    }

    [Fact]
    public void Exec_process_json()
    {
        var b = StartSleeper();
        var file = Path.Combine(NewTempDir("proc"), "process.json");
        File.WriteAllText(file, """{"args":["sh","-c","echo $X; pwd"],"env":["X=from-json","PATH=/bin"],"cwd":"/tmp","user":{"uid":65534,"gid":65534}}""");
        Assert.Equal(["from-json", "/tmp"], Runc["exec", "--process", file, b.Id].Ok().StdoutLines);
    }

    [Fact]
    public void Exec_detach_writes_the_pid_file()
    {
        var b = StartSleeper();
        var pidFile = Path.Combine(NewTempDir("pid"), "exec.pid");
        Runc["exec", "--detach", "--pid-file", pidFile, b.Id, "sleep", "4242"].Ok();
        var pid = int.Parse(File.ReadAllText(pidFile).Trim());
        Assert.Contains(pid, HostCgroups.ProcessesOf(b.Id));
        Assert.Contains("sleep\04242", File.ReadAllText($"/proc/{pid}/cmdline"));
        Assert.Contains(pid, JsonArrayOfInts(Runc["ps", "--format", "json", b.Id].Ok().Stdout));
    }

    private static List<int> JsonArrayOfInts(string json) =>
        System.Text.Json.Nodes.JsonNode.Parse(json)!.AsArray().Select(n => (int)n!).ToList();

    [Fact]
    public void Exec_of_a_missing_command_fails_with_127()
    {
        var b = StartSleeper();
        Runc["exec", b.Id, "no-such-command"].FailsWith(127, "executable file not found in $PATH");
        Assert.Equal("running", Status(b.Id));
    }

    [Fact]
    public void Exec_into_a_stopped_container_fails_clearly()
    {
        var b = NewBundle("true");
        Create(b).Ok();
        Runc["start", b.Id].Ok();
        WaitForStatus(b.Id, "stopped");
        Runc["exec", b.Id, "echo", "hi"].FailsWith(1, "stopped");
    }

    [Fact]
    public void Exec_into_a_created_container_works_or_fails_clearly()
    {
        // runc allows exec into a created container; it must at least not hang or half-work.
        var b = NewBundle().Shell("trap 'exit 0' TERM; sleep 100000 & wait");
        Create(b).Ok();
        var r = Runc["exec", b.Id, "echo", "hi"];
        if (r.ExitCode == 0) Assert.Equal(["hi"], r.StdoutLines);
        else r.FailsWith(1);
    }
}
