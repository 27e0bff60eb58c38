using System.Security.Cryptography;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

/// <summary>Regression tests for published container-runtime escapes, rebuilt against vessel-runc.</summary>
public sealed class AttackRegressionTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    private const string Marker = "VESSEL-HOST-SECRET";

    /// <summary>A host dir with a marker file, opened as an fd every child of this process inherits
    /// (what a leaky caller would hand to vessel-runc). Closed by the returned disposable.</summary>
    private (string Dir, int Fd, IDisposable Close) LeakHostDirectory()
    {
        var dir = NewTempDir("host-secret");
        File.WriteAllText(Path.Combine(dir, Marker), "secret");
        var fd = Native.OpenInheritableDirectory(dir);
        return (dir, fd, new Closer(fd));
    }

    private sealed class Closer(int fd) : IDisposable
    {
        public void Dispose() => Native.close(fd);
    }

    private static HashSet<string> FdNames(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet();

    private static string[] HostFdsOf(int pid) => Directory.GetFileSystemEntries($"/proc/{pid}/fd").Select(Path.GetFileName).OfType<string>().ToArray();

    private static string Describe(int pid) => string.Join(", ", HostFdsOf(pid).Select(fd =>
    {
        try { return $"{fd} -> {new FileInfo($"/proc/{pid}/fd/{fd}").LinkTarget}"; }
        catch (IOException) { return fd; }
    }));

    [Fact]
    public void CVE_2024_21626_no_host_fd_reaches_the_container()
    {
        var (_, fd, close) = LeakHostDirectory();
        using (close)
        {
            // ls has its stdio and the directory it reads (3).
            var r = Run(NewBundle().Shell("ls /proc/self/fd | tr '\\n' ' '")).Ok();
            Assert.True(FdNames(r.StdoutLines[0]).IsSubsetOf(["0", "1", "2", "3"]), $"fds of ls: {r.StdoutLines[0]} (leaked host fd was {fd})\n{r}");
            Assert.DoesNotContain("host-secret", r.Stdout);

            // Seen from the host, without racing the shell: the idle init and an idle exec'd process hold stdio only.
            var sleeper = StartSleeper();
            var init = (int)StateOf(sleeper.Id)["pid"]!;
            Assert.True(HostFdsOf(init).ToHashSet().SetEquals(["0", "1", "2"]), $"fds of the init: {Describe(init)}");
            var pidFile = Path.Combine(NewTempDir("pid"), "exec.pid");
            Runc["exec", "--detach", "--pid-file", pidFile, sleeper.Id, "sleep", "4243"].Ok();
            var exec = int.Parse(File.ReadAllText(pidFile).Trim());
            Eventually(() => File.ReadAllText($"/proc/{exec}/cmdline").StartsWith("sleep"), "the exec'd process to exec");
            Assert.True(HostFdsOf(exec).ToHashSet().SetEquals(["0", "1", "2"]), $"fds of the exec'd process: {Describe(exec)}");
        }
    }

    [Fact]
    public void CVE_2024_21626_cwd_through_proc_self_fd_stays_inside_the_root()
    {
        var (_, leaked, close) = LeakHostDirectory();
        using (close)
        {
            foreach (var n in Enumerable.Range(3, 6).Append(leaked).Distinct())
            {
                var b = NewBundle().Shell($"pwd; ls -a; ls -a ..; cat {Marker} ../{Marker} 2>&1");
                b.Process["cwd"] = $"/proc/self/fd/{n}";
                var r = Run(b);
                Assert.DoesNotContain(Marker, r.Stdout);
                Assert.DoesNotContain("unreachable", r.Stdout);
                if (r.ExitCode != 0) r.FailsWith(r.ExitCode); // refused: one clear line
            }
            var sleeper = StartSleeper();
            foreach (var n in Enumerable.Range(3, 6).Append(leaked).Distinct())
            {
                var e = Runc["exec", "--cwd", $"/proc/self/fd/{n}", sleeper.Id, "sh", "-c", $"pwd; ls -a; cat {Marker} 2>&1"];
                Assert.DoesNotContain(Marker, e.Stdout);
                Assert.DoesNotContain("unreachable", e.Stdout);
            }
        }
    }

    private Dictionary<string, string> HashHostBinaries() =>
        new[] { "vessel-runc", "vessel-executor", "vessel-runc.dll" }
            .Select(n => Path.Combine(Env.BinDir, n)).Where(File.Exists)
            .ToDictionary(p => p, p => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(p))));

    private const string OverwriteEveryExe = "for p in /proc/[0-9]*; do echo pwned >> $p/exe; done 2>/dev/null; true";

    [Fact]
    public void CVE_2019_5736_privileged_container_cannot_overwrite_host_binaries()
    {
        var before = HashHostBinaries();
        var b = NewBundle().AllCapabilities().Writable().Shell(OverwriteEveryExe);
        b.Process["noNewPrivileges"] = false;
        Run(b).Ok();

        // While a container keeps trying, exec into it several times: each exec'd process is, until its execve,
        // a copy of the host executor inside the container's pid namespace.
        var s = StartSleeper(x => x.AllCapabilities().Shell($"while :; do {OverwriteEveryExe}; done"));
        for (var i = 0; i < 5; i++) Runc["exec", s.Id, "true"].Ok();
        Runc["kill", s.Id, "KILL"].Ok();

        // /proc/self/exe as the container's command: whatever that runs, it must not be a door to the host file.
        var c = NewBundle("/proc/self/exe").AllCapabilities();
        Run(c);
        Assert.Equal(before, HashHostBinaries());
    }

    [Fact]
    public void CVE_2019_5736_fd_to_a_created_containers_init_cannot_write_the_executor()
    {
        // While created, pid 1 is still the runtime's own process waiting for `start`. A process exec'd into
        // the created container holds /proc/1/exe open, waits for pid 1 to exec the real command, then
        // writes through the fd: with a leaky runtime that rewrites the host binary.
        var before = HashHostBinaries();
        var b = NewBundle().AllCapabilities().Shell("sleep 100000");
        Create(b).Ok();
        var pidFile = Path.Combine(NewTempDir("pid"), "attacker.pid");
        var attack = Runc["exec", "--detach", "--pid-file", pidFile, b.Id, "sh", "-c",
            "exec 3</proc/1/exe || exit 1; while [ \"$(readlink /proc/1/exe)\" != /bin/busybox ]; do sleep 0.05; done; " +
            "i=0; while [ $i -lt 100 ]; do echo pwned >> /proc/self/fd/3 && exit 0; i=$((i+1)); sleep 0.05; done; exit 2"];
        if (attack.ExitCode == 0)
        {
            var pid = int.Parse(File.ReadAllText(pidFile).Trim());
            Runc["start", b.Id].Ok();
            Eventually(() => !File.Exists($"/proc/{pid}/status") || File.ReadAllText($"/proc/{pid}/status").Contains("State:\tZ"), "the attacker to finish", 60);
        }
        else attack.FailsWith(attack.ExitCode); // exec into a created container refused: fine, one line
        Assert.Equal(before, HashHostBinaries());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Mount_destination_through_a_rootfs_symlink_stays_in_the_rootfs(bool absolute)
    {
        var target = NewTempDir("host-target");
        var b = NewBundle().Shell("grep ' /tmp/vessel-test-host-target' /proc/self/mountinfo | cut -d' ' -f5,9; touch /mnt/x/made-in-container && echo wrote");
        File.CreateSymbolicLink(Path.Combine(b.Rootfs, "mnt"), absolute ? target : "../../../../../../.." + target);
        var source = NewTempDir("bind-src");
        b.AddMount("/mnt/x", "tmpfs", "tmpfs", "size=1m");
        b.AddMount("/mnt/y", "bind", source, "rbind", "ro");
        var r = Run(b);

        Assert.Empty(Directory.GetFileSystemEntries(target));
        Assert.Empty(TempDirs.MountsUnder(target));
        if (r.ExitCode == 0)
        {
            // Resolved inside the rootfs: the mount points were made under rootfs/tmp/vessel-test-host-target-*.
            Assert.True(Directory.Exists(Path.Combine(b.Rootfs + target, "x")), r.ToString());
            Assert.Contains(r.StdoutLines, l => l.StartsWith(target + "/x tmpfs"));
            Assert.Contains("wrote", r.StdoutLines);
        }
        else r.FailsWith(r.ExitCode);
    }

    [Theory]
    [InlineData("file")]
    [InlineData("core_pattern")]
    public void CVE_2025_31133_dev_null_symlink_is_never_used_to_mask(string kind)
    {
        var hostFile = Path.Combine(NewTempDir("host-file"), "precious");
        File.WriteAllText(hostFile, "precious\n");
        var corePattern = File.ReadAllText("/proc/sys/kernel/core_pattern");
        var b = NewBundle().AllCapabilities().Shell("echo '|/bin/true pwned' > /proc/kcore; echo '|/bin/true pwned' > /proc/timer_list; cat /proc/kcore | head -c 20; true");
        // Without the /dev tmpfs, the rootfs's own /dev is used, and its null is a symlink out.
        var mounts = b.Config["mounts"]!.AsArray();
        mounts.Remove(mounts.Single(m => (string?)m!["destination"] == "/dev"));
        foreach (var m in mounts.Where(m => ((string?)m!["destination"])!.StartsWith("/dev/")).ToList()) mounts.Remove(m);
        File.CreateSymbolicLink(Path.Combine(b.Rootfs, "dev", "null"), kind == "file" ? hostFile : "/proc/sys/kernel/core_pattern");
        try
        {
            var r = Run(b);
            Assert.Equal("precious\n", File.ReadAllText(hostFile));
            Assert.Equal(corePattern, File.ReadAllText("/proc/sys/kernel/core_pattern"));
            Assert.DoesNotContain("precious", r.Stdout);
            if (r.ExitCode != 0) r.FailsWith(r.ExitCode);
        }
        finally
        {
            if (File.ReadAllText("/proc/sys/kernel/core_pattern") != corePattern) File.WriteAllText("/proc/sys/kernel/core_pattern", corePattern);
        }
    }
}
