using System.Globalization;
using System.Text.Json.Nodes;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

public sealed class SecurityTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    private static Dictionary<string, string> StatusFields(RuncResult r) =>
        r.StdoutLines.Select(l => l.Split(':', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1].Trim());

    [Fact]
    public void Default_capabilities_are_the_configured_three()
    {
        var b = NewBundle("grep", "-E", "^(Cap|NoNewPrivs)", "/proc/self/status");
        var expected = Capabilities.Mask(["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        var f = StatusFields(Run(b).Ok());
        Assert.Equal(expected, ulong.Parse(f["CapBnd"], NumberStyles.HexNumber));
        Assert.Equal(expected, ulong.Parse(f["CapEff"], NumberStyles.HexNumber));
        Assert.Equal(expected, ulong.Parse(f["CapPrm"], NumberStyles.HexNumber));
        Assert.Equal(0UL, ulong.Parse(f["CapEff"], NumberStyles.HexNumber) & 1UL << 21); // CAP_SYS_ADMIN
        Assert.Equal("1", f["NoNewPrivs"]);
    }

    [Fact]
    public void Capabilities_follow_a_custom_config_and_are_enforced()
    {
        var b = NewBundle().Writable().Shell("grep -E '^Cap(Eff|Bnd)' /proc/self/status; touch /tmp/f; chown 1000 /tmp/f && echo chown-ok; kill -0 1 && echo kill-ok");
        b.Process["capabilities"] = new JsonObject
        {
            ["bounding"] = Bundle.Strings(["CAP_KILL", "CAP_SETUID"]),
            ["effective"] = Bundle.Strings(["CAP_KILL"]),
            ["permitted"] = Bundle.Strings(["CAP_KILL"]),
        };
        b.Process["noNewPrivileges"] = false;
        var r = Run(b).Ok();
        var f = StatusFields(r);
        Assert.Equal(Capabilities.Mask(["CAP_KILL", "CAP_SETUID"]), ulong.Parse(f["CapBnd"], NumberStyles.HexNumber));
        Assert.Equal(0UL, ulong.Parse(f["CapEff"], NumberStyles.HexNumber) & Capabilities.Mask(["CAP_CHOWN"]));
        Assert.DoesNotContain("chown-ok", r.StdoutLines);
        Assert.Contains("Operation not permitted", r.Stderr);
        Assert.Contains("kill-ok", r.StdoutLines);
    }

    [Fact]
    public void No_new_privileges_follows_the_config()
    {
        var b = NewBundle("grep", "NoNewPrivs", "/proc/self/status");
        b.Process["noNewPrivileges"] = false;
        Assert.Equal(["NoNewPrivs:\t0"], Run(b).Ok().StdoutLines);
    }

    [Fact]
    public void Seccomp_errno_rule_blocks_mkdir_only()
    {
        var b = NewBundle().Writable().Shell("mkdir /tmp/d; echo mkdir=$?; touch /tmp/f && echo touch-ok; ls /tmp");
        b.Linux["seccomp"] = JsonNode.Parse("""
            {"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
             "syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}
            """);
        var r = Run(b).Ok();
        Assert.Equal(["mkdir=1", "touch-ok", "f"], r.StdoutLines);
        Assert.Contains("Operation not permitted", r.Stderr);
        Assert.False(Directory.Exists(Path.Combine(b.Rootfs, "tmp", "d")));
    }

    [Fact]
    public void Seccomp_errnoRet_is_returned()
    {
        var b = NewBundle().Writable().Shell("touch /tmp/f; chmod 600 /tmp/f");
        b.Linux["seccomp"] = JsonNode.Parse("""
            {"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["chmod","fchmodat","fchmodat2","fchmod"],"action":"SCMP_ACT_ERRNO","errnoRet":13}]}
            """);
        var r = Run(b);
        Assert.True(r.ExitCode != 0, r.ToString());
        Assert.Contains("Permission denied", r.Stderr);
    }

    [Fact]
    public void Masked_paths_are_empty()
    {
        // The config's masked paths that exist on this kernel: files become /dev/null (empty), dirs an empty tmpfs.
        var b = NewBundle();
        var masked = b.Linux["maskedPaths"]!.AsArray().Select(n => (string)n!).ToList();
        var files = masked.Where(File.Exists).ToList();
        var dirs = masked.Where(Directory.Exists).ToList();
        Assert.NotEmpty(files);
        b.Shell(string.Join("; ", files.Select(f => $"test -c {f} && echo {f}=$(wc -c < {f})")
            .Concat(dirs.Select(d => $"echo {d}=$(ls -A {d} | wc -l)"))));
        var r = Run(b).Ok();
        Assert.Equal(files.Concat(dirs).Select(p => $"{p}=0"), r.StdoutLines);
    }

    [Fact]
    public void Readonly_paths_and_readonly_root_refuse_writes()
    {
        // /proc/sys/kernel/hostname is per UTS namespace: harmless even if the write went through.
        var b = NewBundle().Shell("echo h > /proc/sys/kernel/hostname; echo sys=$?; touch /x; echo root=$?; touch /tmp/y; echo tmp=$?; touch /dev/shm/z; echo shm=$?");
        var r = Run(b).Ok();
        Assert.Equal(["sys=1", "root=1", "tmp=1", "shm=0"], r.StdoutLines);
        Assert.Contains("Read-only file system", r.Stderr);
        Assert.False(File.Exists(Path.Combine(b.Rootfs, "x")));
    }

    [Fact]
    public void Process_user_sets_uid_gid_and_groups()
    {
        var b = NewBundle().Shell("id -u; id -g; id -G; grep -E '^Cap(Eff|Prm)' /proc/self/status");
        b.Process["user"] = new JsonObject { ["uid"] = 1000, ["gid"] = 1000, ["additionalGids"] = new JsonArray(5) };
        var r = Run(b).Ok();
        Assert.Equal("1000", r.StdoutLines[0]);
        Assert.Equal("1000", r.StdoutLines[1]);
        Assert.Contains("5", r.StdoutLines[2].Split(' '));
    }

    [Fact]
    public void Namespaces_are_new()
    {
        var b = NewBundle().Shell("for n in pid net mnt uts ipc; do readlink /proc/self/ns/$n; done; ip link 2>/dev/null | grep -c '^[0-9]'");
        var r = Run(b).Ok();
        foreach (var ns in new[] { "pid", "net", "mnt", "uts", "ipc" })
        {
            var host = new FileInfo($"/proc/self/ns/{ns}").LinkTarget;
            var line = r.StdoutLines.Single(l => l.StartsWith(ns + ":"));
            Assert.NotEqual(host, line);
        }
        Assert.Equal("1", r.StdoutLines[^1]); // only lo in a new network namespace
    }
}
