using System.Text.Json;
using Vessel.Api;

using static Vessel.Cli.Tests.Expect;

namespace Vessel.Cli.Tests;

/// <summary>End to end through bin/vessel and bin/vesseld against real registries: import, push, pull, save, load,
/// history, df, prune, GC under concurrent pulls, login/logout, errors, skopeo interop. Tests use distinct repositories.</summary>
public sealed class ImageTransferTests(RegistryDaemonFixture f) : IClassFixture<RegistryDaemonFixture>
{
    private DaemonFixture D => f.Daemon;
    private string Reg => f.Open.Host;

    private string AuthText() => File.Exists(f.AuthFile) ? File.ReadAllText(f.AuthFile) : "";

    private static void FailsWithOneLine(Binaries.Result r, params string[] contains)
    {
        Assert.True(r.Code == 125, r.ToString());
        string line = Assert.Single(r.ErrLines);
        Assert.StartsWith("vessel: ", line);
        foreach (string c in contains) Assert.Contains(c, line);
    }

    private List<ImageSummary> Images()
    {
        var r = D.Vessel("images", "--format", "json");
        Ok(r);
        return r.OutLines.Select(l => JsonSerializer.Deserialize(l, ApiJson.Default.ImageSummary)!).ToList();
    }

    private DiskUsageResponse Df()
    {
        var r = D.Vessel("system", "df", "--format", "json");
        Ok(r);
        return JsonSerializer.Deserialize(r.Out, ApiJson.Default.DiskUsageResponse)!;
    }

    private long BlobBytes() =>
        Directory.Exists(Path.Combine(D.Root, "blobs")) ? Directory.EnumerateFiles(Path.Combine(D.Root, "blobs"), "*", SearchOption.AllDirectories).Sum(p => new FileInfo(p).Length) : 0;

    /// <summary>Imports the busybox rootfs as NAME (with a distinct label so each test has its own image) and pushes it.</summary>
    private string ImportAndPush(string name, string? rootfs = null)
    {
        Ok(D.Vessel("import", "-c", "CMD [\"sh\"]", "-c", $"LABEL test={name}", "-m", "busybox rootfs", rootfs ?? f.RootfsTar, name));
        var push = D.Vessel("push", name);
        Ok(push);
        Assert.Contains($"The push refers to repository [{name[..name.LastIndexOf(':')]}]", push.Out);
        Assert.Contains(push.OutLines, l => l.EndsWith(": Pushed") || l.EndsWith(": Layer already exists") || l.EndsWith(": Mounted from another repository"));
        Assert.Matches(@"digest: sha256:[0-9a-f]{64} size: \d+", push.Out);
        return name;
    }

    [Fact]
    public void ImportPushRmiPullRoundTrip()
    {
        string name = ImportAndPush($"{Reg}/busybox:1", f.UniqueRootfs("roundtrip"));
        ImageSummary pushed = Assert.Single(Images(), i => i.Name == name);
        long blobsBefore = BlobBytes();
        DiskUsageResponse dfBefore = Df();

        var rmi = D.Vessel("rmi", name);
        Ok(rmi);
        Assert.Contains($"Untagged: {name}", rmi.Out);
        Assert.Contains($"Deleted: {pushed.Digest}", rmi.Out);
        Assert.DoesNotContain(Images(), i => i.Name == name);
        Assert.True(BlobBytes() < blobsBefore, "rmi of the last name frees blobs");
        Assert.True(Df().ImagesSize < dfBefore.ImagesSize);

        // Not a terminal: plain docker-like lines per layer, then Digest/Status and the name.
        var pull = D.Vessel("pull", name);
        Ok(pull);
        Assert.Equal($"1: Pulling from {Reg}/busybox", pull.OutLines[0]);
        Assert.Contains(pull.OutLines, l => l.EndsWith(": Download complete"));
        Assert.Contains(pull.OutLines, l => l.EndsWith(": Pull complete"));
        Assert.Contains($"Digest: {pushed.Digest}", pull.OutLines);
        Assert.Contains($"Status: Downloaded newer image for {name}", pull.OutLines);
        Assert.Equal(name, pull.OutLines[^1]);
        Assert.DoesNotContain("\u001b", pull.Out); // no escape sequences when not a terminal

        ImageSummary pulled = Assert.Single(Images(), i => i.Name == name);
        Assert.Equal(pushed.Digest, pulled.Digest);
        Assert.Equal(pushed.Id, pulled.Id);
        Assert.True(Df().ImagesSize > 0);

        var quiet = D.Vessel("pull", "-q", name);
        Ok(quiet);
        Assert.Equal(name + "\n", quiet.Out);

        var digests = D.Vessel("images", "--digests", $"{Reg}/busybox");
        Ok(digests);
        Assert.Contains(pushed.Digest, digests.Out);

        // Every step told as an event.
        var ev = D.Vessel("events", "--since", "10m", "--until", "now", "--filter", "type=image", "--filter", $"name={name}", "--format", "json");
        Ok(ev);
        var actions = ev.OutLines.Select(l => JsonSerializer.Deserialize(l, ApiJson.Default.EventMessage)!.Action).ToList();
        foreach (string a in new[] { "import", "push", "untag", "delete", "pull" }) Assert.Contains(a, actions);

        // By digest.
        var byDigest = D.Vessel("pull", "-q", $"{Reg}/busybox@{pushed.Digest}");
        Ok(byDigest);
        Assert.Equal($"{Reg}/busybox@{pushed.Digest}", byDigest.Out.Trim());
    }

    [Fact]
    public void SaveRmiLoadKeepsTheImageId()
    {
        string name = $"{Reg}/saved:1";
        Ok(D.Vessel("import", "-c", "LABEL test=save", f.RootfsTar, name));
        string id = Assert.Single(Images(), i => i.Name == name).Id;
        foreach (string format in new[] { "docker-archive", "oci-archive" })
        {
            string tar = Path.Combine(f.Dir, $"saved-{format}.tar");
            Ok(D.Vessel("save", "--format", format, "-o", tar, name));
            Assert.True(new FileInfo(tar).Length > 0);
            Ok(D.Vessel("rmi", name));
            var load = D.Vessel("load", "-i", tar);
            Ok(load);
            Assert.Contains($"Loaded image: {name}", load.OutLines);
            Assert.Equal(id, Assert.Single(Images(), i => i.Name == name).Id);
            File.Delete(tar);
        }
        var quiet = D.Vessel("load", "-q", "-i", f.RootfsTar);
        Assert.Equal(125, quiet.Code); // a rootfs is not an image archive: one line
        Assert.Single(quiet.ErrLines);
    }

    [Fact]
    public void HistoryShowsTheImportStep()
    {
        string name = $"{Reg}/hist:1";
        Ok(D.Vessel("import", "-m", "from the test", f.RootfsTar, name));
        var h = D.Vessel("history", name);
        Ok(h);
        Assert.Matches(@"^IMAGE\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$", h.OutLines[0]);
        Assert.Contains("vessel import", h.OutLines[1]);
        Assert.Contains("from the test", h.OutLines[1]);
        var j = D.Vessel("history", "--no-trunc", "--format", "json", name);
        Ok(j);
        HistoryItem item = JsonSerializer.Deserialize(Assert.Single(j.OutLines), ApiJson.Default.HistoryItem)!;
        Assert.Equal(Assert.Single(Images(), i => i.Name == name).Id, item.Id);
        Assert.True(item.Size > 0);
    }

    [Fact]
    public void ImagePruneRemovesDanglingImagesOnly()
    {
        var imp = D.Vessel("import", "-c", "LABEL test=dangling", f.RootfsTar);
        Ok(imp);
        string id = imp.Out.Trim();
        Assert.Contains(Images(), i => i.Id == id && i.Repository == "<none>");
        Ok(D.Vessel("import", f.RootfsTar, $"{Reg}/keep:1"));
        var prune = D.Vessel("image", "prune", "-f");
        Ok(prune);
        Assert.Contains("Total reclaimed space:", prune.Out);
        Assert.DoesNotContain(Images(), i => i.Id == id);
        Assert.Contains(Images(), i => i.Name == $"{Reg}/keep:1");
        Assert.Equal(125, D.Vessel("image", "prune").Code); // no terminal to confirm on, no -f
    }

    [Fact]
    public async Task GcRunningDuringPullsNeverBreaksThem()
    {
        string name = ImportAndPush($"{Reg}/gcrace:1", f.UniqueRootfs("gcrace"));
        for (int round = 0; round < 3; round++)
        {
            Ok(D.Vessel("rmi", name));
            using var stop = new CancellationTokenSource();
            Task pruner = Task.Run(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    Ok(D.Vessel("system", "prune", "-f"));
                }
            });
            var pull = D.Vessel("pull", "-q", name);
            stop.Cancel();
            await pruner.WaitAsync(TimeSpan.FromSeconds(60));
            Ok(pull);
            // Complete: every blob is there (save reads them all, verified) and every layer is unpacked.
            Ok(D.Vessel("save", "-o", Path.Combine(f.Dir, "gcrace.tar"), name));
            var inspect = D.Vessel("image", "inspect", name);
            Ok(inspect);
        }
        Ok(D.Vessel("system", "prune", "-f"));
        Assert.Contains(Images(), i => i.Name == name);
        Ok(D.Vessel("save", "-o", Path.Combine(f.Dir, "gcrace.tar"), name));
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(D.Root, "snapshots"), ".complete", SearchOption.AllDirectories));
        File.Delete(Path.Combine(f.Dir, "gcrace.tar"));
    }

    [Fact]
    public void LoginLogoutAgainstAnHtpasswdRegistry()
    {
        string reg = f.Auth.Host;
        string name = $"{reg}/private/busybox:1";
        Ok(D.Vessel("import", f.RootfsTar, name));

        FailsWithOneLine(D.Vessel("push", name), "not authorized", $"vessel login {reg}");
        FailsWithOneLine(D.Vessel("pull", name), $"pull {name}", "not authorized", $"vessel login {reg}");
        FailsWithOneLine(D.Vessel("login", "-u", RegistryDaemonFixture.User, "-p", "wrong", reg), "wrong username or password");
        Assert.DoesNotContain(reg, AuthText());

        var login = D.Vessel("login", "-u", RegistryDaemonFixture.User, "-p", RegistryDaemonFixture.Password, reg);
        Ok(login);
        Assert.Equal("Login Succeeded", login.Out.Trim());
        Assert.Contains(reg, AuthText());
        Assert.DoesNotContain(RegistryDaemonFixture.Password, AuthText()); // base64 in "auth", as docker

        Ok(D.Vessel("push", "-q", name));
        Ok(D.Vessel("rmi", name));
        Ok(D.Vessel("pull", "-q", name));

        var logout = D.Vessel("logout", reg);
        Ok(logout);
        Assert.Contains($"Removing login credentials for {reg}", logout.Out);
        Assert.DoesNotContain(reg, AuthText());
        FailsWithOneLine(D.Vessel("pull", name), "not authorized");
    }

    [Fact]
    public void UnknownImageAndUnreachableRegistryAreOneLine()
    {
        FailsWithOneLine(D.Vessel("pull", $"{Reg}/nope:1"), $"pull {Reg}/nope:1: image {Reg}/nope:1 not found in {Reg}");
        int port = RegistryProcess.FreePort();
        FailsWithOneLine(D.Vessel("pull", $"127.0.0.1:{port}/x:1"), $"cannot reach registry 127.0.0.1:{port}");
        FailsWithOneLine(D.Vessel("push", "no-such-local:1"), "no such image");
        FailsWithOneLine(D.Vessel("pull", "UPPER/case"), "invalid reference");
        var save = D.Vessel("save", "nope:1");
        FailsWithOneLine(save, "no such image: nope:1");
    }

    [Fact]
    public void VesseldRefusesABadInsecureRegistry()
    {
        var r = Binaries.Run(Binaries.Vesseld, ["--insecure-registry", "http://x/y", "--socket", Path.Combine(f.Dir, "never.sock")]);
        Assert.Equal(125, r.Code);
        Assert.Contains("--insecure-registry http://x/y: expected HOST[:PORT]", r.Err);
    }

    [Fact]
    public void SkopeoPushedImagePullsWithVessel()
    {
        string local = $"{Reg}/skopeo-src:1";
        Ok(D.Vessel("import", "-c", "LABEL test=skopeo", f.RootfsTar, local));
        string archive = Path.Combine(f.Dir, "skopeo.tar");
        Ok(D.Vessel("save", "--format", "oci-archive", "-o", archive, local));
        string dest = $"{Reg}/skopeo/busybox:1";
        var copy = Binaries.Run("skopeo", ["copy", "--dest-tls-verify=false", "--insecure-policy", $"oci-archive:{archive}", $"docker://{dest}"], timeout: TimeSpan.FromSeconds(120));
        Ok(copy);
        File.Delete(archive);

        var pull = D.Vessel("pull", dest);
        Ok(pull);
        Assert.Contains($"Status: Downloaded newer image for {dest}", pull.Out);
        var inspect = D.Vessel("image", "inspect", dest);
        Ok(inspect);
        using JsonDocument doc = JsonDocument.Parse(inspect.Out);
        Assert.Equal("skopeo", doc.RootElement[0].GetProperty("config").GetProperty("Labels").GetProperty("test").GetString());
    }
}
