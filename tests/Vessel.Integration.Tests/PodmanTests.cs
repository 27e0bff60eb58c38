using Vessel.Integration.Tests.Infrastructure;

namespace Vessel.Integration.Tests;

/// <summary>podman (Debian's 4.3, through conmon) with `--runtime vessel-runc` and vessel-runc in
/// runtime_supports_json, scenario by scenario against the same scenario with runc: each test computes an
/// outcome per runtime, checks it against what runc does, and requires vessel-runc's to be the same.</summary>
public sealed class PodmanTests(PodmanFixture podman) : IClassFixture<PodmanFixture>
{
    private const string Image = PodmanFixture.Image;
    private const string Sleeper = "trap 'exit 0' TERM; sleep 100000 & wait";

    private static string NewName(string runtime, string tag) => $"vt-{tag}-{runtime}-{Guid.NewGuid().ToString("N")[..6]}";

    private static void Same<T>(Func<string, T> scenario, T expected)
    {
        var outcomes = IntegrationEnvironment.Runtimes.ToDictionary(r => r, scenario);
        foreach (var (runtime, outcome) in outcomes) Assert.True(Equals(outcome, expected), $"{runtime}: expected {expected}, got {outcome}");
    }

    /// <summary>For outcomes that depend on the host (capability sets): vessel-runc's must equal runc's.</summary>
    private static void SameAsRunc<T>(Func<string, T> scenario)
    {
        var reference = scenario("runc");
        Assert.Equal(reference, scenario("vessel-runc"));
    }

    private sealed class Detached(PodmanFixture podman, string name) : IDisposable
    {
        public string Name => name;
        public void Dispose() => podman.Run("rm", "--force", "--time", "0", name);
    }

    private Detached Start(string runtime, string tag, params string[] extra)
    {
        var name = NewName(runtime, tag);
        podman.Run(["run", "-d", "--name", name, .. podman.RunFlags(runtime), .. extra, Image, "sh", "-c", Sleeper]).Ok();
        return new Detached(podman, name);
    }

    [Fact]
    public void Run_rm_passes_output_and_exit_status()
    {
        Same(runtime =>
        {
            var r = podman.Run(["run", "--rm", .. podman.RunFlags(runtime), Image, "sh", "-c", "echo hello; grep -c . /proc/self/cgroup >/dev/null; exit 3"]);
            var piped = podman.RunWithStdin("echo from-stdin\n", ["run", "--rm", "-i", .. podman.RunFlags(runtime), Image, "sh"]);
            return (r.ExitCode, r.Out.Trim(), r.Stderr.Trim(), piped.ExitCode, piped.Out.Trim());
        }, (3, "hello", "", 0, "from-stdin"));
    }

    [Fact]
    public void Run_interactive_with_a_tty()
    {
        Same(runtime =>
        {
            var r = podman.OnPty(["run", "--rm", "-it", .. podman.RunFlags(runtime), Image, "sh", "-c", "tty; test -t 0 && echo stdin-is-a-tty; exit 5"]);
            return (r.ExitCode, r.Out.Contains("/dev/pts/0\n"), r.Out.Contains("stdin-is-a-tty"));
        }, (5, true, true));
    }

    [Fact]
    public void Exec_with_and_without_a_tty()
    {
        Same(runtime =>
        {
            using var c = Start(runtime, "exec");
            var plain = podman.Run("exec", c.Name, "sh", "-c", "echo in-exec; exit 4");
            var tty = podman.OnPty("exec", "-it", c.Name, "sh", "-c", "tty; exit 6");
            var top = podman.Run("top", c.Name, "pid", "args").Ok().Out;
            return (plain.ExitCode, plain.Out.Trim(), tty.ExitCode, tty.Out.Contains("/dev/pts/"), top.Contains("sleep 100000"));
        }, (4, "in-exec", 6, true, true));
    }

    [Fact]
    public void Stop_sends_term_then_kill()
    {
        Same(runtime =>
        {
            using var trapping = Start(runtime, "stop");
            var name = NewName(runtime, "stubborn");
            // A bare pid 1 without a handler ignores SIGTERM: stop must fall back to SIGKILL (exit 137).
            podman.Run(["run", "-d", "--name", name, .. podman.RunFlags(runtime), Image, "sleep", "100000"]).Ok();
            using var stubborn = new Detached(podman, name);
            podman.Run("stop", "--time", "10", trapping.Name).Ok();
            podman.Run("stop", "--time", "1", stubborn.Name).Ok();
            return (podman.Run("inspect", "-f", "{{.State.ExitCode}}", trapping.Name).Out.Trim(),
                podman.Run("inspect", "-f", "{{.State.ExitCode}}", stubborn.Name).Out.Trim(), podman.Status(trapping.Name));
        }, ("0", "137", "exited"));
    }

    [Fact]
    public void Pause_and_unpause()
    {
        Same(runtime =>
        {
            using var c = Start(runtime, "pause");
            podman.Run("pause", c.Name).Ok();
            var paused = podman.Status(c.Name);
            var cgroup = podman.CgroupOf(c.Name);
            var frozen = HostCgroup.IsV2 ? HostCgroup.Read(cgroup, "", "", "cgroup.freeze") : HostCgroup.Read(cgroup, "freezer", "freezer.state", "");
            podman.Run("unpause", c.Name).Ok();
            return (paused, frozen is "FROZEN" or "1", podman.Status(c.Name), podman.Run("exec", c.Name, "echo", "alive").Out.Trim());
        }, ("paused", true, "running", "alive"));
    }

    [Fact]
    public void Update_changes_the_cgroup_limits()
    {
        Same(runtime =>
        {
            using var c = Start(runtime, "update", "--memory", "128m");
            var cgroup = podman.CgroupOf(c.Name);
            var update = podman.Run("update", "--memory", "64m", "--cpu-shares", "512", c.Name);
            return (update.ExitCode,
                HostCgroup.Read(cgroup, "memory", "memory.limit_in_bytes", "memory.max"),
                HostCgroup.IsV2 ? "512" : HostCgroup.Read(cgroup, "cpu", "cpu.shares", ""));
        }, (0, (64L << 20).ToString(), "512"));
    }

    [Fact]
    public void Exit_codes_come_from_the_runtimes_json_log()
    {
        // podman passes --log-format=json to runtimes in runtime_supports_json and classifies the "msg" of the
        // runtime's error: not found → 127, permission denied → 126, any other runtime error → 126. podman's own
        // errors are 125 (an unknown image), and exec in a stopped container is 255 in podman 4.3 (runc too).
        Same(runtime =>
        {
            var missing = podman.Run(["run", "--rm", .. podman.RunFlags(runtime), Image, "/nonexistent"]);
            var notExecutable = podman.Run(["run", "--rm", .. podman.RunFlags(runtime), Image, "/etc/passwd"]);
            var badSysctl = podman.Run(["run", "--rm", .. podman.RunFlags(runtime), "--sysctl", "kernel.shm_rmid_forced=7", Image, "true"]);
            var name = NewName(runtime, "exited");
            podman.Run(["run", "--name", name, .. podman.RunFlags(runtime), Image, "true"]).Ok();
            using var exited = new Detached(podman, name);
            var execStopped = podman.Run("exec", name, "true");
            var noImage = podman.Run(["run", "--rm", .. podman.RunFlags(runtime), "localhost/vessel-test-no-such-image", "true"]);
            using var c = Start(runtime, "execcodes");
            var execMissing = podman.Run("exec", c.Name, "/nonexistent");
            var execNotExecutable = podman.Run("exec", c.Name, "/etc/passwd");
            // Nothing but podman's own one-line error: no "container … does not exist" from a failed cleanup.
            var quiet = missing.Stderr.Trim().Split('\n').Length == 1;
            return (missing.ExitCode, missing.Stderr.Contains("exec: \"/nonexistent\""), quiet, notExecutable.ExitCode,
                badSysctl.ExitCode, badSysctl.Stderr.Contains("shm_rmid_forced"), noImage.ExitCode, execStopped.ExitCode, execMissing.ExitCode, execNotExecutable.ExitCode);
        }, (127, true, true, 126, 126, true, 125, 255, 127, 126));
    }

    [Fact]
    public void Read_only_root_with_tmpcopyup_tmpfs()
    {
        // --read-only gives /tmp, /run and /var/tmp tmpfs mounts with runc's tmpcopyup (a bug vessel-runc had).
        Same(runtime =>
        {
            var r = podman.Run(["run", "--rm", "--read-only", "--tmpfs", "/scratch", .. podman.RunFlags(runtime), Image,
                "sh", "-c", "touch /tmp/a /run/b /scratch/c && echo writable; stat -c %a /tmp; touch /x 2>/dev/null || echo read-only-root"]);
            return (r.ExitCode, r.Out.Trim().Replace("\n", " "));
        }, (0, "writable 1777 read-only-root"));
    }

    [Fact]
    public void User_namespace_with_uidmap()
    {
        // A user namespace and podman's read-only cgroup mount together (a bug vessel-runc had).
        Same(runtime =>
        {
            var r = podman.Run(["run", "--rm", "--uidmap", "0:200000:65536", "--gidmap", "0:200000:65536", .. podman.RunFlags(runtime), Image,
                "sh", "-c", "awk '{print $1, $2, $3}' /proc/self/uid_map; id -u; ls /sys/fs/cgroup/pids/pids.max"]);
            return (r.ExitCode, r.Out.Trim().Replace("\n", "|"));
        }, (0, "0 200000 65536|0|/sys/fs/cgroup/pids/pids.max"));
    }

    [Fact]
    public void Common_run_options_match_runc()
    {
        // Privileges, capabilities, user, workdir, hostname, limits, podman's default seccomp profile.
        SameAsRunc(runtime =>
        {
            var r = podman.Run(["run", "--rm", "--user", "1000:1000", "--workdir", "/tmp", "--hostname", "vt", "--cap-add", "SYS_ADMIN",
                "--cap-drop", "CHOWN", "--memory", "64m", "--pids-limit", "50", "-e", "X=y", .. podman.RunFlags(runtime), Image,
                "sh", "-c", "id; pwd; hostname; echo $X; grep -E 'Seccomp:|NoNewPrivs|CapBnd' /proc/self/status | tr -s '\\t' ' '"]);
            var privileged = podman.Run(["run", "--rm", "--privileged", .. podman.RunFlags(runtime), Image, "sh", "-c", "grep Seccomp: /proc/self/status | tr -s '\\t' ' '"]);
            Assert.Equal(0, r.ExitCode);
            Assert.StartsWith("uid=1000(user) gid=1000(user) groups=1000(user)\n/tmp\nvt\ny\n", r.Out);
            return (r.Out.Trim(), privileged.Out.Trim());
        });
    }
}
