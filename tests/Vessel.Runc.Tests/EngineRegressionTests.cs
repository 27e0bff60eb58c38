using System.Text.Json.Nodes;
using Vessel.Runc.Tests.Infrastructure;

namespace Vessel.Runc.Tests;

/// <summary>Bugs that running vessel-runc under podman and containerd found (tests/Vessel.Integration.Tests
/// has the end-to-end scenarios). Each test drives vessel-runc the way the engine did, so it needs neither.</summary>
public sealed class EngineRegressionTests(TestEnvironment env, StateRoot state) : ContainerTest(env, state), IClassFixture<StateRoot>
{
    [Fact]
    public void Delete_force_of_a_missing_container_succeeds_as_in_runc()
    {
        // podman runs `delete --force ID` after every failed create, whose container is already gone; runc
        // exits 0 there, and a failure made podman log "Removing container … from runtime after creation failed".
        var id = NewId("missing");
        var r = Runc["delete", "--force", id];
        Assert.True(r.ExitCode == 0 && r.Stderr.Length == 0, r.ToString());
        // Without --force it still reports the missing container, and a bad id is still refused.
        Runc["delete", id].FailsWith(1, $"container {id} does not exist");
        Assert.NotEqual(0, Runc["delete", "--force", "../etc"].ExitCode);
    }

    [Fact]
    public void Read_only_cgroup_mount_shows_the_containers_own_hierarchies()
    {
        // podman's and runc spec's "cgroup" mount is read-only. vessel-runc used to make it read-only by binding
        // the host's /sys/fs/cgroup over the container's view: the per-hierarchy binds vanished (cgroup v1), and
        // in a user namespace create failed with "mount /sys/fs/cgroup: invalid argument".
        if (HostCgroups.IsV2) Assert.Skip("cgroup v1 layout only");
        var b = NewBundle().Shell("ls /sys/fs/cgroup/memory/memory.limit_in_bytes && grep ' /sys/fs/cgroup ' /proc/self/mountinfo");
        Assert.Contains(b.Config["mounts"]!.AsArray(), m => (string?)m!["type"] == "cgroup" && m["options"]!.AsArray().Any(o => (string?)o == "ro"));
        var r = Run(b).Ok();
        var line = r.StdoutLines.Single(l => l.Contains(" /sys/fs/cgroup "));
        Assert.Contains(" - tmpfs ", line); // the container's own tmpfs, not the host's
        Assert.StartsWith("ro,", line.Split(' ')[5]);
    }

    [Fact]
    public void Read_only_cgroup_mount_works_in_a_user_namespace()
    {
        // What `podman run --uidmap 0:100000:65536` asks for (the default spec's read-only "cgroup" mount included).
        if (HostCgroups.IsV2) Assert.Skip("cgroup v1 layout only");
        var b = NewBundle().Shell("cat /proc/self/uid_map; ls /sys/fs/cgroup/pids/pids.max");
        Exec.Run("chown", ["-R", "100000:100000", b.Rootfs], TimeSpan.FromSeconds(60));
        b.Linux["namespaces"]!.AsArray().Add(new JsonObject { ["type"] = "user" });
        b.Linux["uidMappings"] = JsonNode.Parse("""[{"containerID":0,"hostID":100000,"size":65536}]""");
        b.Linux["gidMappings"] = JsonNode.Parse("""[{"containerID":0,"hostID":100000,"size":65536}]""");
        var r = Run(b).Ok();
        Assert.Contains("100000", r.Stdout);
        Assert.Contains("/sys/fs/cgroup/pids/pids.max", r.Stdout);
    }

    [Fact]
    public void Tmpfs_with_tmpcopyup_starts_with_the_covered_directory()
    {
        // `podman run --read-only` mounts /tmp, /run and /var/tmp as tmpfs with runc's "tmpcopyup" extension;
        // vessel-runc passed it to the kernel as tmpfs data and every such create failed with EINVAL.
        var b = NewBundle().Shell("cat /seed/file; readlink /seed/link; stat -c '%a %u' /seed /seed/dir; touch /seed/new && echo writable; grep ' /seed ' /proc/self/mountinfo");
        Directory.CreateDirectory(Path.Combine(b.Rootfs, "seed", "dir"));
        File.WriteAllText(Path.Combine(b.Rootfs, "seed", "file"), "seeded\n");
        File.CreateSymbolicLink(Path.Combine(b.Rootfs, "seed", "link"), "/etc/passwd");
        File.SetUnixFileMode(Path.Combine(b.Rootfs, "seed"), (UnixFileMode)Convert.ToInt32("1777", 8));
        Exec.Run("chown", ["1000:1000", Path.Combine(b.Rootfs, "seed", "dir")], TimeSpan.FromSeconds(10));
        b.AddMount("/seed", "tmpfs", "tmpfs", "rw", "rprivate", "nosuid", "nodev", "tmpcopyup");
        var r = Run(b).Ok();
        Assert.Equal(["seeded", "/etc/passwd", "1777 0", "755 1000", "writable"], r.StdoutLines.Take(5));
        Assert.Contains(" - tmpfs ", r.StdoutLines[5]);
        Assert.DoesNotContain("tmpcopyup", r.StdoutLines[5]);
        // The copy lives in the tmpfs: the bundle's directory is untouched.
        Assert.False(File.Exists(Path.Combine(b.Rootfs, "seed", "new")));
    }
}
