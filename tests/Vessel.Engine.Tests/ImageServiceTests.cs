using Vessel.Api;
using Vessel.Engine.Events;
using Vessel.Engine.Operations;
using Vessel.Tests;

namespace Vessel.Engine.Tests;

public sealed class ImageServiceTests : IAsyncLifetime
{
    private static readonly TimeSpan T = TimeSpan.FromSeconds(30);
    private readonly TempDir _tmp = new();
    private Engine _engine = null!;

    public ValueTask InitializeAsync()
    {
        _engine = Engine.Open(new EngineOptions { Root = _tmp.Sub("root"), RunRoot = _tmp.Sub("run"), Socket = Path.Combine(_tmp.Path, "s.sock") });
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        await _engine.DisposeAsync();
        _tmp.Dispose();
    }

    private async Task<OperationInfo> Import(string dir, string? name)
    {
        Operation op = _engine.Images.StartImportLayout(_engine.Operations, dir, name);
        return await _engine.Operations.WaitAsync(op.Id, CancellationToken.None).WaitAsync(T);
    }

    [Fact]
    public async Task ImportListInspectTagUntag()
    {
        TestLayout.Written layout = TestLayout.Write(_tmp.Sub("layout"), "1.0");
        Operation op = _engine.Images.StartImportLayout(_engine.Operations, layout.Dir, "example.com/app");
        var progress = new List<ProgressEvent>();
        await foreach (ProgressEvent e in op.Progress(CancellationToken.None)) progress.Add(e);
        OperationInfo done = await _engine.Operations.WaitAsync(op.Id, CancellationToken.None).WaitAsync(T);
        Assert.Equal(OperationStatus.Succeeded, done.Status);
        Assert.Equal("image.import-layout", done.Kind);
        ImportLayoutResult result = System.Text.Json.JsonSerializer.Deserialize(done.Result!.Value, ApiJson.Default.ImportLayoutResult)!;
        Assert.Equal(["example.com/app:1.0"], result.Images);
        Assert.Equal(3, result.BlobsImported);
        // One "copying" and one "done" per blob: layer, config, manifest.
        Assert.Equal(3, progress.Count(p => p.Action == "copying"));
        Assert.Equal(new HashSet<string> { layout.LayerDigest, layout.ConfigDigest, layout.ManifestDigest },
            progress.Where(p => p.Action == "done").Select(p => p.Item!).ToHashSet());

        ImageSummary s = Assert.Single(_engine.Images.List());
        Assert.Equal(("example.com/app", "1.0", layout.ConfigDigest, layout.ManifestDigest, layout.TotalSize),
            (s.Repository, s.Tag, s.Id, s.Digest, s.Size));
        Assert.Equal(new DateTimeOffset(2024, 5, 6, 7, 8, 9, TimeSpan.Zero), s.Created);

        ImageInspect i = _engine.Images.Inspect("example.com/app:1.0");
        Assert.Equal(layout.ConfigDigest, i.Id);
        Assert.Equal([layout.LayerDigest], i.Layers!);
        Assert.Equal("/bin/sh", i.Config!.Value.GetProperty("Cmd")[0].GetString());
        Assert.Equal(TestLayout.Arch, i.Architecture);
        // By id prefix and by full digest.
        Assert.Equal(i.Id, _engine.Images.Inspect(layout.ConfigDigest[7..19]).Id);
        Assert.Equal(i.Id, _engine.Images.Inspect(layout.ManifestDigest).Id);

        _engine.Images.Tag("example.com/app:1.0", "mine");
        Assert.Equal(["example.com/app:1.0", "mine:latest"], _engine.Images.List().Select(x => x.Name).Order(StringComparer.Ordinal));
        Assert.Equal(["example.com/app:1.0", "mine:latest"], _engine.Images.Inspect("mine").RepoTags.Order(StringComparer.Ordinal));

        // An id matching two names needs force; a name is simply untagged; the last name deletes.
        var conflict = Assert.Throws<EngineException>(() => _engine.Images.Remove(layout.ConfigDigest[7..19], force: false));
        Assert.Equal(ErrorCodes.Conflict, conflict.Code);
        ImageDeleteResponse r1 = _engine.Images.Remove("mine", force: false);
        Assert.Equal(["mine:latest"], r1.Untagged);
        Assert.Empty(r1.Deleted);
        ImageDeleteResponse r2 = _engine.Images.Remove(layout.ConfigDigest[7..19], force: false);
        Assert.Equal(["example.com/app:1.0"], r2.Untagged);
        Assert.Equal([layout.ManifestDigest], r2.Deleted);
        Assert.Empty(_engine.Images.List());

        var events = _engine.Events.History(0, long.MaxValue, EventFilter.Parse(["type=image"]));
        Assert.Equal(["import", "tag", "untag", "untag", "delete"], events.Select(e => e.Action));
        Assert.Equal("example.com/app:1.0", events[0].Name);
        Assert.Equal(layout.ManifestDigest, events[0].Id);
    }

    [Fact]
    public async Task ANameWithATagNamesTheImageAndBadInputIsRefusedUpFront()
    {
        TestLayout.Written layout = TestLayout.Write(_tmp.Sub("layout"), null);
        OperationInfo done = await Import(layout.Dir, "local/thing:v2");
        Assert.Equal(OperationStatus.Succeeded, done.Status);
        Assert.Equal("local/thing:v2", Assert.Single(_engine.Images.List()).Name);
        // Importing again finds every blob present.
        Operation again = _engine.Images.StartImportLayout(_engine.Operations, layout.Dir, "local/thing:v3");
        var progress = new List<ProgressEvent>();
        await foreach (ProgressEvent e in again.Progress(CancellationToken.None)) progress.Add(e);
        Assert.All(progress, p => Assert.Equal("exists", p.Action));

        Assert.Equal(ErrorCodes.NotFound, Assert.Throws<EngineException>(() => _engine.Images.StartImportLayout(_engine.Operations, "/nonexistent", null)).Code);
        Assert.Equal(ErrorCodes.Invalid, Assert.Throws<EngineException>(() => _engine.Images.StartImportLayout(_engine.Operations, "relative", null)).Code);
        Assert.Equal(ErrorCodes.NotFound, Assert.Throws<EngineException>(() => _engine.Images.Inspect("nope")).Code);
        Assert.Equal(ErrorCodes.Invalid, Assert.Throws<EngineException>(() => _engine.Images.Tag("local/thing:v2", "bad name")).Code);
    }

    [Fact]
    public async Task ABrokenLayoutFailsTheOperationWithAReason()
    {
        string dir = _tmp.Sub("broken");
        File.WriteAllText(Path.Combine(dir, "oci-layout"), """{"imageLayoutVersion":"1.0.0"}""");
        OperationInfo done = await Import(dir, "x:1");
        Assert.Equal(OperationStatus.Failed, done.Status);
        Assert.Equal(ErrorCodes.Invalid, done.Error!.Code);
        Assert.Contains("index.json", done.Error.Message);
    }

    [Fact]
    public void SystemInfoCountsImagesAndContainers()
    {
        SystemInfoResponse info = _engine.Info();
        Assert.Equal((0, 0), (info.Images, info.Containers));
        Assert.Equal("overlay", info.Storage);
        Assert.Contains(info.CgroupMode, new[] { "v1", "v2", "hybrid", "none" });
    }
}
