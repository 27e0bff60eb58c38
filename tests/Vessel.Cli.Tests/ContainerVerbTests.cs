using System.Text.Json;
using Vessel.Tests;

using static Vessel.Cli.Tests.Expect;

namespace Vessel.Cli.Tests;

/// <summary>top, stats, pause/unpause, update, rename, port, diff, commit and cp, end to end through the CLI.</summary>
public sealed class ContainerVerbTests(BusyboxFixture f) : IClassFixture<BusyboxFixture>
{
    private DaemonFixture D => f.D;
    private const string Image = BusyboxFixture.Image;

    private string RunDetached(string name, params string[] cmd)
    {
        var r = D.Vessel(["run", "-d", "--name", name, Image, .. cmd]);
        Ok(r);
        return r.Out.Trim();
    }

    private static bool V1 => Directory.Exists("/sys/fs/cgroup/memory");

    private static string Cgroup(string controller, string id, string file) =>
        File.ReadAllText(V1 ? $"/sys/fs/cgroup/{controller}/vessel/{id}/{file}" : $"/sys/fs/cgroup/vessel/{id}/{file}").Trim();

    [Fact]
    public void HelpReadsLikeDockers()
    {
        var ps = D.Vessel("ps", "--help");
        Ok(ps);
        Assert.StartsWith("\nUsage:  vessel ps [OPTIONS]\n\nList containers\n", ps.Out);
        Assert.Contains("vessel container ls, vessel container list, vessel container ps, vessel ps", ps.Out);
        Assert.Matches(@"\n  -a, --all +Show all containers", ps.Out);
        Assert.Matches(@"\n      --format string +", ps.Out);
        var commit = D.Vessel("container", "commit", "--help");
        Assert.Contains("Usage:  vessel container commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]", commit.Out);
        Assert.Contains("(default true)", commit.Out);
        var group = D.Vessel("container", "--help");
        Ok(group);
        Assert.Contains("Usage:  vessel container COMMAND", group.Out);
        Assert.Matches(@"\n  ls +List containers\n", group.Out);
        Assert.Contains("Management Commands:", D.Vessel("--help").Out);
        // the container group runs the same verbs
        var ls = D.Vessel("container", "ls", "-a", "--format", "json");
        Ok(ls);
    }

    [Fact]
    public void TopStatsPauseUnpause()
    {
        string id = RunDetached("verbs-top", "sleep", "1000");
        try
        {
            var top = D.Vessel("top", "verbs-top");
            Ok(top);
            Assert.Matches(@"^UID\s+PID\s+PPID\s+C\s+STIME\s+TTY\s+TIME\s+CMD\n", top.Out);
            Assert.Contains("sleep 1000", top.Out);
            var custom = D.Vessel("top", "verbs-top", "-o", "pid,comm");
            Ok(custom);
            Assert.Matches(@"PID\s+COMMAND", custom.Out);
            Assert.Contains("sleep", custom.Out);
            Assert.Equal(2, custom.OutLines.Length); // only the container's process, not the host's

            var stats = D.Vessel("stats", "--no-stream", "verbs-top");
            Ok(stats);
            Assert.Matches(@"^CONTAINER ID\s+NAME\s+CPU %\s+MEM USAGE / LIMIT\s+MEM %\s+NET I/O\s+BLOCK I/O\s+PIDS\n", stats.Out);
            Assert.Matches(id[..12] + @"\s+verbs-top\s+\d+\.\d\d%\s+[\d.]+\w?i?B / [\d.]+\w?i?B\s+\d+\.\d\d%\s+[\d.]+\w?B / [\d.]+\w?B\s+\S+ / \S+\s+1\n", stats.Out);
            var json = D.Vessel("stats", "--no-stream", "--format", "json");
            Ok(json);
            using (var doc = JsonDocument.Parse(json.OutLines.Single(l => l.Contains(id[..12]))))
                Assert.Equal("1", doc.RootElement.GetProperty("PIDs").GetString());

            Ok(D.Vessel("pause", "verbs-top"));
            Assert.Contains("FROZEN", V1 ? Cgroup("freezer", id, "freezer.state") : Cgroup("", id, "cgroup.freeze").Replace("1", "FROZEN"));
            Assert.Contains("(Paused)", D.Vessel("ps").Out);
            Assert.Contains("\"status\": \"paused\"", D.Vessel("inspect", "verbs-top").Out);
            Assert.Equal(125, D.Vessel("pause", "verbs-top").Code); // already paused
            Ok(D.Vessel("unpause", "verbs-top"));
            Assert.DoesNotContain("(Paused)", D.Vessel("ps").Out);
            Assert.Equal(125, D.Vessel("unpause", "verbs-top").Code);
            Assert.Contains("\"pause\"", D.Vessel("events", "--since", "5m", "--until", "now", "-f", "action=pause", "--format", "json").Out);
            Assert.Contains("\"unpause\"", D.Vessel("events", "--since", "5m", "--until", "now", "-f", "action=unpause", "--format", "json").Out);

            // A paused container still stops (thawed for its signal).
            Ok(D.Vessel("pause", "verbs-top"));
            Ok(D.Vessel("stop", "-t", "1", "verbs-top"));
        }
        finally { D.Vessel("rm", "-f", "verbs-top"); }
    }

    [Fact]
    public void UpdateChangesTheCgroupAndTheRecord()
    {
        string id = RunDetached("verbs-update", "sleep", "1000");
        try
        {
            Ok(D.Vessel("update", "--memory", "64m", "--memory-swap", "128m", "--pids-limit", "50", "--cpus", "0.5", "--cpu-shares", "512", "verbs-update"));
            if (V1)
            {
                Assert.Equal("67108864", Cgroup("memory", id, "memory.limit_in_bytes"));
                if (File.Exists($"/sys/fs/cgroup/memory/vessel/{id}/memory.memsw.limit_in_bytes"))
                    Assert.Equal("134217728", Cgroup("memory", id, "memory.memsw.limit_in_bytes"));
                Assert.Equal("50", Cgroup("pids", id, "pids.max"));
                Assert.Equal("50000", Cgroup("cpu", id, "cpu.cfs_quota_us"));
                Assert.Equal("512", Cgroup("cpu", id, "cpu.shares"));
            }
            else
            {
                Assert.Equal("67108864", Cgroup("", id, "memory.max"));
                Assert.Equal("50", Cgroup("", id, "pids.max"));
                Assert.StartsWith("50000 ", Cgroup("", id, "cpu.max"));
            }
            string inspect = D.Vessel("inspect", "verbs-update").Out;
            Assert.Contains("\"memory\": 67108864", inspect);
            Assert.Contains("\"pidsLimit\": 50", inspect);
            Ok(D.Vessel("update", "--pids-limit", "-1", "verbs-update"));
            Assert.Equal("max", V1 ? Cgroup("pids", id, "pids.max") : Cgroup("", id, "pids.max"));
            var bad = D.Vessel("update", "--memory", "1k", "verbs-update");
            Assert.Equal(125, bad.Code);
            Assert.Contains("minimum memory", bad.Err);
            Assert.Equal(125, D.Vessel("update", "verbs-update").Code); // no flag
            Ok(D.Vessel("update", "--restart", "on-failure:3", "verbs-update"));
            Assert.Contains("\"restart\": \"on-failure:3\"", D.Vessel("inspect", "verbs-update").Out);
            Assert.Equal(125, D.Vessel("update", "--restart", "sometimes", "verbs-update").Code);

            // A stopped container keeps the new limits for its next start.
            Ok(D.Vessel("kill", "verbs-update"));
            D.Vessel("wait", "verbs-update");
            Ok(D.Vessel("update", "--memory", "32m", "verbs-update"));
            Ok(D.Vessel("start", "verbs-update"));
            Assert.Equal("33554432", V1 ? Cgroup("memory", id, "memory.limit_in_bytes") : Cgroup("", id, "memory.max"));
        }
        finally { D.Vessel("rm", "-f", "verbs-update"); }
    }

    [Fact]
    public void RenameAndPort()
    {
        Ok(D.Vessel("create", "--name", "verbs-old", Image, "true"));
        Ok(D.Vessel("create", "--name", "verbs-other", Image, "true"));
        try
        {
            Ok(D.Vessel("rename", "verbs-old", "verbs-new"));
            Ok(D.Vessel("inspect", "verbs-new"));
            Assert.Equal(125, D.Vessel("inspect", "verbs-old").Code);
            var taken = D.Vessel("rename", "verbs-new", "verbs-other");
            Assert.Equal(125, taken.Code);
            Assert.Contains("already in use", taken.Err);
            Assert.Equal(125, D.Vessel("rename", "verbs-new", "bad name").Code);
            Assert.Contains("\"rename\"", D.Vessel("events", "--since", "5m", "--until", "now", "-f", "action=rename", "--format", "json").Out);

            var port = D.Vessel("port", "verbs-new");
            Ok(port);
            Assert.Equal("", port.Out);
            var none = D.Vessel("port", "verbs-new", "80/tcp");
            Assert.Equal(125, none.Code);
            Assert.Contains("no public port '80/tcp'", none.Err);
        }
        finally { D.Vessel("rm", "-f", "verbs-new", "verbs-old", "verbs-other"); }
    }

    [Fact]
    public void DiffThenCommitAndRunTheNewImage()
    {
        Ok(D.Vessel("run", "--name", "verbs-diff", Image, "sh", "-c", "echo committed > /newfile; rm /bin/vi; mkdir /tmp/d"));
        try
        {
            var diff = D.Vessel("diff", "verbs-diff");
            Ok(diff);
            Assert.Equal(["C /bin", "D /bin/vi", "A /newfile", "C /tmp", "A /tmp/d"], diff.OutLines);

            var commit = D.Vessel("commit", "-m", "a message", "-a", "someone", "-c", "CMD [\"cat\", \"/newfile\"]", "verbs-diff", "verbs-img:1");
            Ok(commit);
            Assert.StartsWith("sha256:", commit.Out.Trim());
            var run = D.Vessel("run", "--rm", "verbs-img:1");
            Ok(run);
            Assert.Equal("committed\n", run.Out);
            Assert.Equal(1, D.Vessel("run", "--rm", "verbs-img:1", "test", "-e", "/bin/vi").Code);
            Assert.Contains("a message", D.Vessel("history", "verbs-img:1").Out);
            Assert.Contains("\"commit\"", D.Vessel("events", "--since", "5m", "--until", "now", "-f", "action=commit", "--format", "json").Out);

            // A running container is paused for the commit and keeps running.
            RunDetached("verbs-live", "sh", "-c", "echo live > /live; sleep 1000");
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (!D.Vessel("diff", "verbs-live").Out.Contains("A /live") && DateTime.UtcNow < deadline) Thread.Sleep(50);
            Ok(D.Vessel("commit", "verbs-live", "verbs-img:2"));
            Assert.Contains("\"status\": \"running\"", D.Vessel("inspect", "verbs-live").Out);
            var live = D.Vessel("run", "--rm", "verbs-img:2", "cat", "/live");
            Assert.Equal("live\n", live.Out);
        }
        finally
        {
            D.Vessel("rm", "-f", "verbs-diff", "verbs-live");
            D.Vessel("rmi", "verbs-img:1", "verbs-img:2");
        }
    }

    [Fact]
    public void CpBothWaysStaysInsideTheContainer()
    {
        using var tmp = new TempDir();
        string host = tmp.Path;
        File.WriteAllText(Path.Combine(host, "hello.txt"), "hello from the host\n");
        Directory.CreateDirectory(Path.Combine(host, "tree", "sub"));
        File.WriteAllText(Path.Combine(host, "tree", "sub", "f"), "deep\n");
        RunDetached("verbs-cp", "sh", "-c",
            "ln -s / /tmp/to-root; ln -s ../../../../../../etc /tmp/to-etc; ln -s /etc/shadow /tmp/shadow; echo inside > /tmp/inside; sleep 1000");
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (D.Vessel("exec", "verbs-cp", "test", "-e", "/tmp/inside").Code != 0 && DateTime.UtcNow < deadline) Thread.Sleep(50);

            // host → container: a file into a directory, a file to a new name, a tree, a tar on stdin.
            Ok(D.Vessel("cp", Path.Combine(host, "hello.txt"), "verbs-cp:/tmp/"));
            Assert.Equal("hello from the host\n", D.Vessel("exec", "verbs-cp", "cat", "/tmp/hello.txt").Out);
            Ok(D.Vessel("cp", Path.Combine(host, "hello.txt"), "verbs-cp:/tmp/renamed"));
            Assert.Equal("hello from the host\n", D.Vessel("exec", "verbs-cp", "cat", "/tmp/renamed").Out);
            Ok(D.Vessel("cp", Path.Combine(host, "tree"), "verbs-cp:/tmp/"));
            Assert.Equal("deep\n", D.Vessel("exec", "verbs-cp", "cat", "/tmp/tree/sub/f").Out);

            // container → host.
            Ok(D.Vessel("cp", "verbs-cp:/tmp/inside", host));
            Assert.Equal("inside\n", File.ReadAllText(Path.Combine(host, "inside")));
            Ok(D.Vessel("cp", "verbs-cp:/tmp/tree", Path.Combine(host, "copy")));
            Assert.Equal("deep\n", File.ReadAllText(Path.Combine(host, "copy", "sub", "f")));
            var tar = D.Vessel("cp", "verbs-cp:/tmp/inside", "-");
            Ok(tar);
            Assert.Contains("inside\n", tar.Out);

            // Symlinks the container planted resolve inside it, never on the host.
            string marker = "vessel-cp-escape-" + Guid.NewGuid().ToString("N")[..8];
            File.WriteAllText(Path.Combine(host, marker), "x");
            Ok(D.Vessel("cp", Path.Combine(host, marker), "verbs-cp:/tmp/to-root/"));
            Assert.False(File.Exists("/" + marker), "cp followed a container symlink onto the host's /");
            Ok(D.Vessel("exec", "verbs-cp", "test", "-f", "/" + marker));
            Ok(D.Vessel("cp", "verbs-cp:/tmp/to-etc/passwd", Path.Combine(host, "passwd")));
            Assert.Contains("user:x:1000", File.ReadAllText(Path.Combine(host, "passwd"))); // the container's passwd
            Ok(D.Vessel("cp", "verbs-cp:/tmp/shadow", Path.Combine(host, "shadow")));
            Assert.Equal("/etc/shadow", new FileInfo(Path.Combine(host, "shadow")).LinkTarget); // the link itself, not its target
            var follow = D.Vessel("cp", "-L", "verbs-cp:/tmp/shadow", Path.Combine(host, "shadow2"));
            Assert.Equal(125, follow.Code); // the container has no /etc/shadow; the host's is never read
            Assert.False(File.Exists(Path.Combine(host, "shadow2")));
            var missing = D.Vessel("cp", "verbs-cp:/no/such/file", host);
            Assert.Equal(125, missing.Code);
            Assert.Contains("could not find", missing.Err);

            // A stopped container: cp works on its root file system.
            Ok(D.Vessel("kill", "verbs-cp"));
            D.Vessel("wait", "verbs-cp");
            Ok(D.Vessel("cp", Path.Combine(host, "hello.txt"), "verbs-cp:/stopped.txt"));
            Ok(D.Vessel("cp", "verbs-cp:/stopped.txt", Path.Combine(host, "back.txt")));
            Assert.Equal("hello from the host\n", File.ReadAllText(Path.Combine(host, "back.txt")));
            Assert.Contains("A /stopped.txt", D.Vessel("diff", "verbs-cp").Out);
        }
        finally { D.Vessel("rm", "-f", "verbs-cp"); }
    }
}
