using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Vessel.Api;
using Vessel.Tests;

using static Vessel.Cli.Tests.Expect;

namespace Vessel.Cli.Tests;

/// <summary>A daemon with a busybox-static image "bb:1" (tests/fixtures/busybox-rootfs.sh, written as an OCI layout
/// and imported); every container is removed before the daemon stops.</summary>
public sealed class BusyboxFixture : IDisposable
{
    public DaemonFixture D { get; } = new();
    public const string Image = "bb:1";

    public BusyboxFixture()
    {
        string layout = WriteLayout(D.Tmp.Sub("bb"));
        var r = D.Vessel("image", "import-layout", layout, Image);
        if (r.Code != 0) throw new InvalidOperationException(r.ToString());
    }

    /// <param name="customize">adds files to the rootfs before it is packed (e.g. test programs).</param>
    public static string WriteLayout(string work, Action<string>? customize = null)
    {
        string rootfs = Path.Combine(work, "rootfs");
        Exec("bash", Path.Combine(RepoRoot(), "tests", "fixtures", "busybox-rootfs.sh"), rootfs);
        customize?.Invoke(rootfs);
        string layer = Path.Combine(work, "layer.tar");
        Exec("tar", "-C", rootfs, "-cf", layer, ".");
        string dir = Path.Combine(work, "layout");
        string blobs = Path.Combine(dir, "blobs", "sha256");
        Directory.CreateDirectory(blobs);
        (string l, long ls) = Blob(blobs, File.ReadAllBytes(layer));
        string arch = TestLayout.Arch;
        (string c, long cs) = Blob(blobs, Encoding.UTF8.GetBytes("{\"architecture\":\"" + arch + "\",\"os\":\"linux\",\"config\":{\"Cmd\":[\"sh\"],\"Env\":[\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\"]},\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" + l + "\"]}}"));
        (string m, long ms) = Blob(blobs, Encoding.UTF8.GetBytes("{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" + c + "\",\"size\":" + cs + "},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar\",\"digest\":\"" + l + "\",\"size\":" + ls + "}]}"));
        File.WriteAllText(Path.Combine(dir, "index.json"), "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"digest\":\"" + m + "\",\"size\":" + ms + "}]}");
        File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        return dir;
    }

    private static (string, long) Blob(string blobs, byte[] data)
    {
        string hex = Convert.ToHexStringLower(SHA256.HashData(data));
        File.WriteAllBytes(Path.Combine(blobs, hex), data);
        return ("sha256:" + hex, data.Length);
    }

    internal static void Exec(string file, params string[] args)
    {
        var r = Binaries.Run(file, args);
        if (r.Code != 0) throw new InvalidOperationException($"{file}: {r}");
    }

    public static string RepoRoot() => Path.GetFullPath(Path.Combine(Binaries.Dir, ".."));

    public void Dispose()
    {
        try
        {
            var ids = D.Vessel("ps", "-aq").OutLines;
            if (ids.Length > 0) D.Vessel(["rm", "-f", .. ids]);
        }
        finally { D.Dispose(); }
    }
}

public sealed class ContainerTests(BusyboxFixture f) : IClassFixture<BusyboxFixture>
{
    private DaemonFixture D => f.D;
    private const string Image = BusyboxFixture.Image;

    [Fact]
    public void ImagesThatContainersUseAreKeptByRmiPruneAndCountedByDf()
    {
        var create = D.Vessel("create", "--name", "image-user", Image, "true");
        Ok(create);
        try
        {
            var rmi = D.Vessel("rmi", Image);
            Assert.True(rmi.Code == 125 && rmi.Err.Contains("uses it"), rmi.ToString()); // names a container using it
            Ok(D.Vessel("image", "prune", "-a", "-f"));
            Assert.Contains(Image.Split(':')[0], D.Vessel("images").Out); // prune -a kept it
            var df = D.Vessel("system", "df", "--format", "json");
            Ok(df);
            Assert.Matches("\"containers\":\\s*[1-9]", df.Out);
        }
        finally
        {
            D.Vessel("rm", "-f", "image-user");
        }
    }

    [Fact]
    public void RunRmEchoPrintsAndLeavesNothing()
    {
        var r = D.Vessel("run", "--rm", Image, "echo", "hi");
        Ok(r);
        Assert.Equal("hi\n", r.Out);
        Assert.DoesNotContain(D.Vessel("ps", "-a", "--format", "json").OutLines, l => l.Contains("\"echo hi\""));
    }

    [Fact]
    public void ExitCodesPropagate()
    {
        var r = D.Vessel("run", "--rm", Image, "sh", "-c", "echo out; echo err >&2; exit 3");
        Assert.Equal(3, r.Code);
        Assert.Equal("out\n", r.Out);
        Assert.Contains("err", r.Err);
        var missing = D.Vessel("run", "--rm", Image, "no-such-command");
        Assert.True(missing.Code == 127, missing.ToString());
        Assert.Contains("executable file not found", missing.Err);
        Assert.DoesNotContain(D.Vessel("ps", "-a", "--format", "json").OutLines, l => l.Contains("no-such-command")); // --rm after a failed start too
        var noImage = D.Vessel("run", "--rm", "no-such-image:1", "true");
        Assert.True(noImage.Code == 125, noImage.ToString());
    }

    [Fact]
    public void DetachedPsLogsExecStopRm()
    {
        var run = D.Vessel("run", "-d", "--name", "ticker", "-e", "GREETING=hello", "--hostname", "boat", Image,
            "sh", "-c", "echo $GREETING; echo to-stderr >&2; while true; do sleep 0.1; done");
        Ok(run);
        string id = run.Out.Trim();
        Assert.Equal(64, id.Length);
        var ps = D.Vessel("ps", "--format", "json");
        Ok(ps);
        ContainerSummary s = ps.OutLines.Select(l => JsonSerializer.Deserialize(l, ContainerJson.Default.ContainerSummary)!).Single(x => x.Id == id);
        Assert.Equal("ticker", s.Name);
        Assert.Equal(ContainerStatus.Running, s.State.Status);
        Assert.Contains(id[..12], D.Vessel("ps", "-q").OutLines);

        var deadline = DateTime.UtcNow.AddSeconds(10);
        Binaries.Result logs;
        do logs = D.Vessel("logs", "ticker"); while (!logs.Err.Contains("to-stderr") && DateTime.UtcNow < deadline);
        Assert.Equal("hello\n", logs.Out);
        Assert.Equal("to-stderr\n", logs.Err);
        var stamped = D.Vessel("logs", "-t", "--tail", "1", "ticker");
        Assert.Matches(@"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z (hello|to-stderr)\n$", stamped.Out + stamped.Err);

        var exec = D.Vessel("exec", "ticker", "sh", "-c", "hostname; echo $GREETING; exit 4");
        Assert.Equal(4, exec.Code);
        Assert.Equal("boat\nhello\n", exec.Out);
        Assert.Equal(127, D.Vessel("exec", "ticker", "no-such-command").Code);

        var rmRunning = D.Vessel("rm", "ticker");
        Assert.Equal(125, rmRunning.Code);
        Ok(D.Vessel("stop", "-t", "1", "ticker"));
        var wait = D.Vessel("wait", "ticker");
        Ok(wait);
        Assert.Equal("137", wait.Out.Trim()); // sh as pid 1 ignores SIGTERM: killed after the timeout
        var inspect = D.Vessel("inspect", "ticker");
        Ok(inspect);
        Assert.Contains("\"status\": \"exited\"", inspect.Out);
        Ok(D.Vessel("rm", "ticker"));
        Assert.False(Directory.Exists(Path.Combine(D.Root, "containers", id)));
        Assert.DoesNotContain(File.ReadAllText("/proc/self/mountinfo"), id);
    }

    [Fact]
    public void CreateStartKillAndUser()
    {
        var create = D.Vessel("create", "--user", "user", "--read-only", "--cap-drop", "ALL", Image, "sh", "-c", "id -u; id -g; touch /x || echo ro; sleep 30");
        Ok(create);
        string id = create.Out.Trim();
        Assert.Contains("\"status\": \"created\"", D.Vessel("inspect", id).Out);
        Ok(D.Vessel("start", id));
        var deadline = DateTime.UtcNow.AddSeconds(10);
        Binaries.Result logs;
        do logs = D.Vessel("logs", id); while (!logs.Out.Contains("ro") && DateTime.UtcNow < deadline);
        Assert.StartsWith("1000\n1000\n", logs.Out);
        Assert.Contains("ro\n", logs.Out);
        Ok(D.Vessel("kill", "-s", "TERM", id));  // not ignored by a non-init... sh is pid 1: TERM is ignored
        Ok(D.Vessel("kill", id));
        Assert.Equal("137", D.Vessel("wait", id).Out.Trim());
        Ok(D.Vessel("rm", id));
    }
}

/// <summary>kill -9 of vesseld while containers run: a new vesseld re-adopts the one still running and records the
/// exit of the one that ended meanwhile, whose logs it still serves.</summary>
public sealed class DaemonCrashTests
{
    [Fact]
    public void ContainersSurviveKill9OfTheDaemon()
    {
        using var f = new BusyboxFixture();
        DaemonFixture d = f.D;
        string longId = Run(d, "sh", "-c", "echo started; while true; do sleep 0.1; done");
        string shortId = Run(d, "sh", "-c", "sleep 1; echo finished while the daemon was down; exit 5");
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!d.Vessel("logs", longId).Out.Contains("started") && DateTime.UtcNow < deadline) Thread.Sleep(50);
        // An exec session running when the daemon dies: its stdio went through vesseld, so the CLI ends with one line
        // and the process ends at its next write (docs/containers.md); nothing of it is left behind.
        var execPsi = new ProcessStartInfo(Binaries.Vessel) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "-H", d.Host, "exec", longId, "sh", "-c", "echo exec-up; while true; do echo tick; sleep 0.1; done" }) execPsi.ArgumentList.Add(a);
        using Process exec = Process.Start(execPsi)!;
        Assert.Equal("exec-up", exec.StandardOutput.ReadLine());
        _ = exec.StandardOutput.ReadToEndAsync();

        d.Process.Kill(); // SIGKILL
        d.Process.WaitForExit();
        Assert.True(exec.WaitForExit(30_000), "vessel exec did not end when the daemon died");
        Assert.Equal(125, exec.ExitCode);
        Assert.StartsWith("vessel: ", Assert.Single(exec.StandardError.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries)));
        Thread.Sleep(2500); // the short container exits meanwhile
        // Container leases are written without fsyncs: what a power loss could do to them is mended at start-up.
        string leases = Path.Combine(d.Root, "leases");
        File.Delete(Path.Combine(leases, $"container-{longId}.json"));
        string stray = Path.Combine(leases, "container-" + new string('f', 64) + ".json");
        File.WriteAllText(stray, File.ReadAllText(Path.Combine(leases, $"container-{shortId}.json")).Replace(shortId, new string('f', 64)));

        var psi = new ProcessStartInfo(Binaries.Vesseld) { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (string a in d.Args) psi.ArgumentList.Add(a);
        using Process again = Process.Start(psi)!;
        again.BeginErrorReadLine();
        again.BeginOutputReadLine();
        try
        {
            deadline = DateTime.UtcNow.AddSeconds(30);
            while (!Binaries.Answers(d.Socket) && DateTime.UtcNow < deadline) Thread.Sleep(20);
            var inspectShort = d.Vessel("inspect", shortId);
            Assert.Contains("\"status\": \"exited\"", inspectShort.Out);
            Assert.Contains("\"exitCode\": 5", inspectShort.Out);
            Assert.Equal("5", d.Vessel("wait", shortId).Out.Trim());
            Assert.Equal("finished while the daemon was down\n", d.Vessel("logs", shortId).Out);

            Assert.Contains("\"status\": \"running\"", d.Vessel("inspect", longId).Out);
            Assert.True(File.Exists(Path.Combine(leases, $"container-{longId}.json")), "the lost lease was not recreated");
            Assert.False(File.Exists(stray), "the lease of a container that does not exist was kept");
            deadline = DateTime.UtcNow.AddSeconds(30);
            while (d.Vessel("top", longId).Out.Contains("exec-up", StringComparison.Ordinal))
            {
                Assert.True(DateTime.UtcNow < deadline, "the exec's process outlived its session:\n" + d.Vessel("top", longId).Out);
                Thread.Sleep(100);
            }
            Assert.Equal("started\n", d.Vessel("exec", longId, "echo", "started").Out);
            Assert.Equal(0, d.Vessel("stop", "-t", "0", longId).Code);
            Assert.Equal("137", d.Vessel("wait", longId).Out.Trim());
            Assert.Equal(0, d.Vessel("rm", longId, shortId).Code);
        }
        finally
        {
            var ids = d.Vessel("ps", "-aq").OutLines;
            if (ids.Length > 0) d.Vessel(["rm", "-f", .. ids]);
            Binaries.Stop(again.Id);
        }
    }

    private static string Run(DaemonFixture d, params string[] cmd)
    {
        var r = d.Vessel(["run", "-d", BusyboxFixture.Image, .. cmd]);
        Assert.True(r.Code == 0, r.ToString());
        return r.Out.Trim();
    }
}
