using System.Text;
using Vessel.Api;
using Vessel.Engine.Images;
using Vessel.Engine.Operations;
using Vessel.Tests;

namespace Vessel.Engine.Tests;

public sealed class ImageTransferTests : IAsyncLifetime
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(30);
    private readonly TempDir _tmp = new();
    private Engine _engine = null!;

    public ValueTask InitializeAsync()
    {
        _engine = Engine.Open(new EngineOptions
        {
            Root = _tmp.Sub("root"), RunRoot = _tmp.Sub("run"), Socket = Path.Combine(_tmp.Path, "s.sock"),
            AuthFile = Path.Combine(_tmp.Path, "auth.json"),
        });
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _engine.DisposeAsync();
        _tmp.Dispose();
    }

    private async Task Import(string dir, string name)
    {
        Operation op = _engine.Images.StartImportLayout(_engine.Operations, dir, name);
        OperationInfo info = await _engine.Operations.WaitAsync(op.Id, CancellationToken.None).WaitAsync(T);
        Assert.Equal(OperationStatus.Succeeded, info.Status);
    }

    private long BlobBytes() => Directory.EnumerateFiles(Path.Combine(_engine.Options.Root, "blobs"), "*", SearchOption.AllDirectories).Sum(p => new FileInfo(p).Length);

    [Fact]
    public void ChangesParseLikeDockers()
    {
        var c = ImageTransfer.ParseChanges([
            "CMD [\"sh\", \"-c\", \"echo hi\"]", "ENTRYPOINT /bin/app --flag", "ENV A=1 B=\"two words\"", "ENV C three words",
            "WORKDIR /srv", "USER 1000:1000", "EXPOSE 80 53/udp", "LABEL a=b c=\"d e\"", "VOLUME /data", "STOPSIGNAL SIGINT",
        ]);
        Assert.Equal(["sh", "-c", "echo hi"], c.Cmd);
        Assert.Equal(["/bin/sh", "-c", "/bin/app --flag"], c.Entrypoint);
        Assert.Equal(["A=1", "B=two words", "C=three words"], c.Env);
        Assert.Equal("/srv", c.WorkingDir);
        Assert.Equal("1000:1000", c.User);
        Assert.Equal(["80", "53/udp"], c.ExposedPorts);
        Assert.Equal("d e", c.Labels!["c"]);
        Assert.Equal(["/data"], c.Volumes);
        Assert.Equal("SIGINT", c.StopSignal);
        Assert.Equal(ErrorCodes.Invalid, Assert.Throws<EngineException>(() => ImageTransfer.ParseChanges(["RUN rm -rf /"])).Code);
        Assert.Equal(ErrorCodes.Invalid, Assert.Throws<EngineException>(() => ImageTransfer.ParseChanges(["CMD [not json"])).Code);
    }

    [Fact]
    public void RegistryHostsNormalise()
    {
        Assert.Equal("docker.io", ImageTransfer.RegistryHost(null));
        Assert.Equal("docker.io", ImageTransfer.RegistryHost("https://index.docker.io/v1/"));
        Assert.Equal("127.0.0.1:5000", ImageTransfer.RegistryHost("http://127.0.0.1:5000/"));
        Assert.Throws<EngineException>(() => ImageTransfer.RegistryHost("a b"));
        Assert.True(ImageTransfer.IsIdName("sha256:" + new string('a', 64)));
        Assert.False(ImageTransfer.IsIdName("busybox:1"));
    }

    [Fact]
    public async Task RmiOfTheLastNameFreesOnlyWhatNoOtherImageShares()
    {
        TestLayout.Written a = TestLayout.Write(_tmp.Sub("a"), "1", "layer of a\n");
        TestLayout.Written b = TestLayout.Write(_tmp.Sub("b"), "1", "layer of b\n");
        await Import(a.Dir, "example.com/a:1");
        await Import(b.Dir, "example.com/b:1");
        _engine.Images.Tag("example.com/a:1", "example.com/a:2");
        long before = BlobBytes();

        ImageDeleteResponse first = _engine.Transfer.Remove("example.com/a:1", force: false);
        Assert.Empty(first.Deleted); // a:2 still names it
        Assert.Equal(before, BlobBytes());

        ImageDeleteResponse last = _engine.Transfer.Remove("example.com/a:2", force: false);
        Assert.Equal([a.ManifestDigest], last.Deleted);
        Assert.True(last.SpaceReclaimed > 0);
        Assert.Equal(before - a.TotalSize, BlobBytes());
        Assert.NotNull(_engine.Images.Inspect("example.com/b:1"));
        Assert.Equal(b.TotalSize, BlobBytes());
    }

    [Fact]
    public async Task ImportNamesAnUnnamedImageByIdAndPruneRemovesIt()
    {
        string rootfs = Path.Combine(_tmp.Path, "rootfs.tar");
        using (var fs = File.Create(rootfs))
        using (var w = new System.Formats.Tar.TarWriter(fs))
        {
            var e = new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "etc/hello")
            { DataStream = new MemoryStream(Encoding.UTF8.GetBytes("hello\n")) };
            w.WriteEntry(e);
        }
        LoadResult named;
        await using (var s = File.OpenRead(rootfs)) named = await _engine.Transfer.ImportAsync(s, "example.com/r", ["CMD [\"sh\"]"], "m", null, CancellationToken.None);
        Assert.Equal(["example.com/r:latest"], named.Images);
        LoadResult unnamed;
        await using (var s = File.OpenRead(rootfs)) unnamed = await _engine.Transfer.ImportAsync(s, null, ["LABEL x=y"], null, null, CancellationToken.None);
        Assert.Equal(unnamed.Ids, unnamed.Images);
        Assert.Contains(_engine.Images.List(), i => i.Name == unnamed.Images[0] && i.Repository == "<none>");

        DiskUsageResponse df = _engine.Transfer.DiskUsage();
        Assert.Equal(2, df.Images.Count);
        Assert.True(df.Images.All(i => i.SharedSize > 0)); // the same layer

        PruneResponse p = _engine.Transfer.Prune(all: false);
        Assert.Single(p.Deleted);
        Assert.Empty(p.Untagged); // an id name is not reported as untagged
        Assert.Single(_engine.Images.List());
        PruneResponse all = _engine.Transfer.Prune(all: true);
        Assert.Equal(["example.com/r:latest"], all.Untagged);
        Assert.Empty(_engine.Images.List());
        Assert.Equal(0, _engine.Transfer.DiskUsage().BlobsSize);
    }

    [Fact]
    public async Task HistoryIsNewestFirstWithTheIdOnTop()
    {
        TestLayout.Written a = TestLayout.Write(_tmp.Sub("h"), "1");
        await Import(a.Dir, "example.com/h:1");
        List<HistoryItem> h = _engine.Transfer.History("example.com/h:1");
        if (h.Count > 0) Assert.Equal(a.ConfigDigest, h[0].Id);
        Assert.Throws<EngineException>(() => _engine.Transfer.History("nope:1"));
    }
}
