using System.Text;
using System.Text.Json;
using Vessel.Images.Content;
using Vessel.Images.Interop;
using Vessel.Images.Layers;
using Vessel.Images.Layout;
using Vessel.Images.Oci;
using Vessel.Images.Snapshots;

namespace Vessel.Images.Tests;

public sealed class SnapshotTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    private static byte[] Lower() => TarBuilder.Gzip(new TarBuilder().Dir("etc/").File("etc/os", "base").File("etc/old", "old").Dir("var/").File("var/x", "x").Build());
    private static byte[] Upper() => TarBuilder.Zstd(new TarBuilder().Dir("etc/").File("etc/.wh.old", "").Dir("var/").File("var/.wh..wh..opq", "").File("var/y", "y").Build());

    [Fact]
    public void ChainIdFollowsTheImageSpec()
    {
        Digest a = Digest.Compute("a"u8), b = Digest.Compute("b"u8), c = Digest.Compute("c"u8);
        IReadOnlyList<Digest> chain = SnapshotStore.ChainIds([a, b, c]);
        Assert.Equal(a, chain[0]);
        Assert.Equal(Digest.Compute(Encoding.ASCII.GetBytes($"{a} {b}")), chain[1]);
        Assert.Equal(Digest.Compute(Encoding.ASCII.GetBytes($"{chain[1]} {c}")), chain[2]);
    }

    [Fact]
    public void UnpacksOnceAndRedoesAnInterruptedUnpack()
    {
        var store = new ContentStore(_tmp.Path);
        var (m, _) = ImageBuilder.AddImage(store, "amd64", Lower(), Upper());
        var refs = new ReferenceStore(store);
        refs.Tag("snap:1", m);
        ResolvedImage image = new ImageResolver(store, refs).Resolve("snap:1");
        var snaps = new SnapshotStore(_tmp.Path);

        IReadOnlyList<string> dirs = snaps.Unpack(store, image);
        Assert.Equal(2, dirs.Count);
        IReadOnlyList<Digest> chain = SnapshotStore.ChainIds(image.Config.RootFs.DiffIds);
        Assert.Equal(snaps.FsPath(chain[0]), dirs[0]);
        Assert.All(chain, c => Assert.True(snaps.IsComplete(c)));
        Assert.Equal("base", File.ReadAllText(Path.Combine(dirs[0], "etc/os")));
        Assert.Equal(Libc.S_IFCHR, Fs.Lstat(Path.Combine(dirs[1], "etc/old")).FileType);
        using (var marker = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(snaps.SnapshotDir(chain[1]), ".complete"))))
            Assert.Equal(chain[0].ToString(), marker.RootElement.GetProperty("parent").GetString());

        // Second time: nothing is redone.
        ulong ino = Fs.Lstat(Path.Combine(dirs[0], "etc/os")).Ino;
        snaps.Unpack(store, image);
        Assert.Equal(ino, Fs.Lstat(Path.Combine(dirs[0], "etc/os")).Ino);

        // Interrupted unpack (no marker, junk left): redone from scratch.
        File.Delete(Path.Combine(snaps.SnapshotDir(chain[1]), ".complete"));
        File.WriteAllText(Path.Combine(dirs[1], "junk"), "half-written");
        Directory.CreateDirectory(Path.Combine(snaps.SnapshotsDir, ".tmp-deadbeef-crashed"));
        snaps.CleanupIncomplete();
        Assert.False(Directory.Exists(Path.Combine(snaps.SnapshotsDir, ".tmp-deadbeef-crashed")));
        Assert.False(snaps.IsComplete(chain[1]));
        snaps.Unpack(store, image);
        Assert.True(snaps.IsComplete(chain[1]));
        Assert.False(File.Exists(Path.Combine(dirs[1], "junk")));
        Assert.Equal("y", File.ReadAllText(Path.Combine(dirs[1], "var/y")));
    }

    [Fact]
    public void WrongDiffIdIsRefusedAndLeavesNoSnapshot()
    {
        var store = new ContentStore(_tmp.Path);
        var (m, config) = ImageBuilder.AddImage(store, "amd64", Lower());
        var refs = new ReferenceStore(store);
        var resolver = new ImageResolver(store, refs);
        Digest lie = Digest.Compute("not the layer"u8);
        ResolvedImage real = resolver.Resolve("x", m);
        ResolvedImage image = real with { Config = config with { RootFs = new RootFs { Type = "layers", DiffIds = [lie] } } };
        var snaps = new SnapshotStore(_tmp.Path);
        var e = Assert.Throws<LayerException>(() => snaps.Unpack(store, image));
        Assert.Contains($"uncompressed content hashes to {real.Config.RootFs.DiffIds[0]}, but the image config lists diff_id {lie}", e.Message);
        Assert.Empty(Directory.EnumerateDirectories(snaps.SnapshotsDir));
    }

    [Fact]
    public void CorruptLayerBlobIsRefused()
    {
        var store = new ContentStore(_tmp.Path);
        byte[] tar = new TarBuilder().File("f", new string('q', 10_000)).Build();
        var (m, _) = ImageBuilder.AddImage(store, "amd64", tar);
        var refs = new ReferenceStore(store);
        ResolvedImage image = new ImageResolver(store, refs).Resolve("c", m);
        string blob = store.BlobPath(image.Manifest.Layers[0].Digest);
        byte[] bytes = File.ReadAllBytes(blob);
        bytes[600] = (byte)'Q'; // file data changed, tar structure intact
        File.WriteAllBytes(blob, bytes);
        var e = Assert.Throws<LayerException>(() => new SnapshotStore(_tmp.Path).Unpack(store, image));
        Assert.Contains("corrupt or tampered", e.Message);
    }

    [Fact]
    public void OverlayOptionsAndARealMount()
    {
        var store = new ContentStore(_tmp.Path);
        var (m, _) = ImageBuilder.AddImage(store, "amd64", Lower(), Upper());
        var refs = new ReferenceStore(store);
        ResolvedImage image = new ImageResolver(store, refs).Resolve("ovl", m);
        IReadOnlyList<string> dirs = new SnapshotStore(_tmp.Path).Unpack(store, image);
        string upper = _tmp.Sub("upper"), work = _tmp.Sub("work"), merged = _tmp.Sub("merged");

        string opts = OverlayMount.BuildOptions(dirs, upper, work);
        Assert.Equal($"lowerdir={dirs[1]}:{dirs[0]},upperdir={upper},workdir={work}", opts);
        Assert.Equal($"lowerdir={dirs[1]}:{dirs[0]}", OverlayMount.BuildOptions(dirs, null, null));
        var fsconfig = OverlayMount.BuildFsConfig(dirs, upper, work);
        Assert.Equal(["lowerdir+", "lowerdir+", "upperdir", "workdir"], fsconfig.Select(p => p.Key));
        Assert.Equal(dirs[1], fsconfig[0].Value);

        Assert.Throws<ArgumentException>(() => OverlayMount.BuildOptions(["/a,upperdir=/etc"], upper, work));
        Assert.Throws<ArgumentException>(() => OverlayMount.BuildOptions(["/a:b"], upper, work));
        Assert.Throws<ArgumentException>(() => OverlayMount.BuildOptions(["relative"], upper, work));
        Assert.Throws<ArgumentException>(() => OverlayMount.BuildOptions(dirs, upper, null));
        Assert.Throws<ArgumentException>(() => OverlayMount.BuildOptions([dirs[0]], null, null));
        Assert.Throws<ArgumentException>(() => OverlayMount.BuildOptions(Enumerable.Repeat(dirs[0], 501).ToList(), upper, work));
        Assert.Contains("fsconfig", Assert.Throws<ArgumentException>(() => OverlayMount.BuildOptions(Enumerable.Repeat("/" + new string('p', 200), 30).ToList(), upper, work)).Message);

        // The snapshots really work as overlay lower dirs: whiteout and opaque dir hide the lower content.
        var (code, output) = Fs.Run("mount", "-t", "overlay", "overlay", "-o", opts, merged);
        if (code != 0) Assert.Skip($"cannot mount overlayfs here: {output}");
        try
        {
            Assert.Equal("base", File.ReadAllText(Path.Combine(merged, "etc/os")));
            Assert.False(File.Exists(Path.Combine(merged, "etc/old")));
            Assert.False(File.Exists(Path.Combine(merged, "var/x")));
            Assert.Equal("y", File.ReadAllText(Path.Combine(merged, "var/y")));
        }
        finally
        {
            Fs.Run("umount", merged);
        }
    }
}

public sealed class OciLayoutTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    /// <summary>Writes a layout the way skopeo/buildkit do (ref.name = bare tag), independently of Export.</summary>
    private static Descriptor WriteLayoutByHand(string dir, ContentStore source, Descriptor index)
    {
        Directory.CreateDirectory(Path.Combine(dir, "blobs/sha256"));
        foreach (Digest d in source.List())
            File.Copy(source.BlobPath(d), Path.Combine(dir, "blobs/sha256", d.Hex));
        File.WriteAllText(Path.Combine(dir, "oci-layout"), "{\"imageLayoutVersion\":\"1.0.0\"}");
        var top = index with { Annotations = new Dictionary<string, string> { [Annotations.RefName] = "1.0" } };
        File.WriteAllBytes(Path.Combine(dir, "index.json"), OciJson.Serialize(new ImageIndex { SchemaVersion = 2, MediaType = MediaTypes.OciIndex, Manifests = [top] }));
        return top;
    }

    [Fact]
    public void ImportExportRoundTrip()
    {
        var src = new ContentStore(_tmp.Sub("src"));
        var (amd, _) = ImageBuilder.AddImage(src, "amd64", TarBuilder.Gzip(new TarBuilder().File("arch", "amd64").Build()));
        var (arm, _) = ImageBuilder.AddImage(src, "arm64", "v8", TarBuilder.Zstd(new TarBuilder().File("arch", "arm64").Build()));
        Descriptor index = ImageBuilder.AddIndex(src, amd, arm);
        string layout = _tmp.Sub("layout");
        WriteLayoutByHand(layout, src, index);

        var a = new ContentStore(_tmp.Sub("a"));
        var refsA = new ReferenceStore(a);
        LayoutImportResult r = OciLayout.Import(layout, a, refsA, repository: "example.com/app");
        Assert.Equal("example.com/app:1.0", Assert.Single(r.Images).Name);
        Assert.Equal(src.List().Select(d => d.Hex).Order(), a.List().Select(d => d.Hex).Order());
        Assert.Empty(r.MissingOptional);
        var resolver = new ImageResolver(a, refsA);
        Assert.Equal(amd.Digest, resolver.Resolve("example.com/app:1.0").ManifestDescriptor.Digest);
        Assert.Equal(arm.Digest, resolver.Resolve("example.com/app:1.0", PlatformSpec.Parse("linux/arm64")).ManifestDescriptor.Digest);

        string exported = _tmp.Sub("exported");
        OciLayout.Export(exported, a, refsA.List().Select(i => new LayoutImage(i.Name, i.Target)));
        Assert.Equal("{\"imageLayoutVersion\":\"1.0.0\"}", File.ReadAllText(Path.Combine(exported, "oci-layout")));
        ImageIndex idx = OciJson.ParseIndex(File.ReadAllBytes(Path.Combine(exported, "index.json")), "index.json");
        Descriptor top = Assert.Single(idx.Manifests);
        Assert.Equal(index.Digest, top.Digest);
        Assert.Equal("1.0", top.Annotation(Annotations.RefName));
        Assert.Equal("example.com/app:1.0", top.Annotation(Annotations.ContainerdImageName));
        foreach (string f in Directory.EnumerateFiles(Path.Combine(exported, "blobs/sha256")))
            Assert.Equal(Path.GetFileName(f), Digest.Compute(File.ReadAllBytes(f)).Hex);

        var b = new ContentStore(_tmp.Sub("b"));
        var refsB = new ReferenceStore(b);
        OciLayout.Import(exported, b, refsB);
        Assert.Equal(index.Digest, refsB.Resolve("example.com/app:1.0")!.Digest);
        Assert.Equal(a.List().Select(d => d.Hex).Order(), b.List().Select(d => d.Hex).Order());
    }

    [Fact]
    public void PartialMultiArchLayoutImportsWhatItHas()
    {
        var src = new ContentStore(_tmp.Sub("src"));
        var (amd, _) = ImageBuilder.AddImage(src, "amd64", new TarBuilder().File("a", "1").Build());
        var (arm, _) = ImageBuilder.AddImage(src, "arm64", new TarBuilder().File("a", "2").Build());
        Descriptor index = ImageBuilder.AddIndex(src, amd, arm);
        string layout = _tmp.Sub("layout");
        WriteLayoutByHand(layout, src, index);
        File.Delete(Path.Combine(layout, "blobs/sha256", arm.Digest.Hex));
        var dst = new ContentStore(_tmp.Sub("dst"));
        LayoutImportResult r = OciLayout.Import(layout, dst, new ReferenceStore(dst), "p");
        Assert.Equal(arm.Digest, Assert.Single(r.MissingOptional).Digest);
        Assert.True(dst.Exists(index.Digest));
    }

    [Fact]
    public void CorruptOrMissingBlobsFailTheImport()
    {
        var src = new ContentStore(_tmp.Sub("src"));
        var (amd, _) = ImageBuilder.AddImage(src, "amd64", new TarBuilder().File("a", "content").Build());
        string layout = _tmp.Sub("layout");
        WriteLayoutByHand(layout, src, amd);
        ImageManifest man = OciJson.ParseManifest(File.ReadAllBytes(src.BlobPath(amd.Digest)), "m");
        string layerPath = Path.Combine(layout, "blobs/sha256", man.Layers[0].Digest.Hex);
        byte[] bytes = File.ReadAllBytes(layerPath);
        bytes[520] ^= 1;
        File.WriteAllBytes(layerPath, bytes);

        var dst = new ContentStore(_tmp.Sub("dst"));
        var refs = new ReferenceStore(dst);
        var e = Assert.Throws<DigestMismatchException>(() => OciLayout.Import(layout, dst, refs, "x"));
        Assert.Contains(man.Layers[0].Digest.ToString(), e.Message);
        Assert.False(dst.Exists(man.Layers[0].Digest));
        Assert.False(dst.Exists(amd.Digest)); // parents are written only after their children
        Assert.Empty(refs.List());

        File.Delete(layerPath);
        Assert.Contains("is missing", Assert.Throws<ContentException>(() => OciLayout.Import(layout, dst, refs, "x")).Message);

        File.CreateSymbolicLink(layerPath, "/etc/passwd");
        Assert.Contains("symbolic link", Assert.Throws<ContentException>(() => OciLayout.Import(layout, dst, refs, "x")).Message);

        string notLayout = _tmp.Sub("empty");
        Assert.Contains("oci-layout is missing", Assert.Throws<ContentException>(() => OciLayout.Import(notLayout, dst, refs)).Message);
    }
}
