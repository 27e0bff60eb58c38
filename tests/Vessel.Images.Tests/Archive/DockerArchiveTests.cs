using System.Text;
using System.Text.Json;
using Vessel.Images.Archive;
using Vessel.Images.Content;
using Vessel.Images.Layout;
using Vessel.Images.Oci;
using Vessel.Images.Snapshots;

namespace Vessel.Images.Tests.Archive;

public sealed class DockerArchiveTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    internal static byte[] Layer1() => TarBuilder.Gzip(new TarBuilder().Dir("etc/").File("etc/os", "base").File("etc/old", "old").Symlink("etc/link", "os").Build());
    internal static byte[] Layer2() => TarBuilder.Zstd(new TarBuilder().Dir("etc/").File("etc/.wh.old", "").File("etc/new", "new").Build());
    internal static byte[] Layer2Gzip() => TarBuilder.Gzip(new TarBuilder().Dir("etc/").File("etc/.wh.old", "").File("etc/new", "new").Build());
    internal static byte[] Layer3() => new TarBuilder().Dir("usr/").File("usr/x", "plain").Build();

    private (ContentStore, ReferenceStore) Store(string name)
    {
        var c = new ContentStore(_tmp.Sub(name));
        return (c, new ReferenceStore(c));
    }

    [Fact]
    public void SaveThenLoadIntoAFreshStoreKeepsConfigDigestAndDiffIds()
    {
        var (a, ra) = Store("a");
        var (m, config) = ImageBuilder.AddImage(a, "amd64", Layer1(), Layer2(), Layer3());
        ra.Tag("docker.io/library/app:1", m);
        ra.Tag("example.com/team/app:2", m);
        string file = Path.Combine(_tmp.Path, "save.tar");
        IReadOnlyList<SavedImage> saved;
        using (var fs = File.Create(file)) saved = DockerArchive.Save(fs, a, ra, ["docker.io/library/app:1", "example.com/team/app:2"]);
        Assert.Single(saved);
        Assert.Equal(["app:1", "example.com/team/app:2"], saved[0].RepoTags);

        // moby's layout: manifest.json + repositories + OCI layout, uncompressed layers named by diff ID.
        var (entries, files) = ReadTar(file);
        Assert.Equal(["blobs/", "blobs/sha256/"], entries.Take(2));
        Assert.Equal(["index.json", "manifest.json", "oci-layout", "repositories"], entries.TakeLast(4));
        using (var doc = JsonDocument.Parse(files["manifest.json"]))
        {
            JsonElement item = doc.RootElement[0];
            Assert.Equal("blobs/sha256/" + ConfigDigest(a, m).Hex, item.GetProperty("Config").GetString());
            Assert.Equal(config.RootFs.DiffIds.Select(d => "blobs/sha256/" + d.Hex), item.GetProperty("Layers").EnumerateArray().Select(e => e.GetString()));
        }
        foreach (Digest d in config.RootFs.DiffIds) Assert.Equal(d, Digest.Compute(files["blobs/sha256/" + d.Hex]));
        using (var doc = JsonDocument.Parse(files["index.json"]))
            Assert.Equal("docker.io/library/app:1", doc.RootElement.GetProperty("manifests")[0].GetProperty("annotations").GetProperty(Annotations.ContainerdImageName).GetString());
        using (var doc = JsonDocument.Parse(files["repositories"]))
            Assert.Equal(config.RootFs.DiffIds[^1].Hex, doc.RootElement.GetProperty("app").GetProperty("1").GetString());

        // Deterministic: saving again gives the same bytes.
        var again = new MemoryStream();
        DockerArchive.Save(again, a, ra, ["docker.io/library/app:1", "example.com/team/app:2"]);
        Assert.Equal(File.ReadAllBytes(file), again.ToArray());

        var (b, rb) = Store("b");
        IReadOnlyList<LoadedImage> loaded;
        using (var fs = File.OpenRead(file)) loaded = DockerArchive.Load(fs, b, rb, "save.tar");
        Assert.Single(loaded);
        Assert.Equal(ConfigDigest(a, m), loaded[0].Id);
        Assert.Equal(config.RootFs.DiffIds, loaded[0].DiffIds);
        Assert.Equal(["app:1", "example.com/team/app:2"], loaded[0].Names);
        ResolvedImage img = new ImageResolver(b, rb).Resolve("app:1");
        Assert.Equal(config.RootFs.DiffIds, img.Config.RootFs.DiffIds);
        Assert.All(img.Manifest.Layers, l => Assert.Equal(MediaTypes.OciLayer, l.MediaType));
        IReadOnlyList<string> dirs = new SnapshotStore(b.Root).Unpack(b, img);
        Assert.Equal("new", File.ReadAllText(Path.Combine(dirs[1], "etc/new")));

        // Loading the same archive twice is idempotent.
        using (var fs = File.OpenRead(file)) Assert.Equal(loaded[0].Manifest, DockerArchive.Load(fs, b, rb)[0].Manifest);
    }

    [Fact]
    public void LoadKeepsCompressedLayerBlobsAsTheyAre()
    {
        // An archive in the older layout: <id>.json config, <dir>/layer.tar gzip-compressed, a second name
        // linking to the first file (as docker and skopeo write for repeated layers).
        byte[] l1 = Layer1();
        var (a, _) = Store("a");
        var (_, config) = ImageBuilder.AddImage(a, "arm64", l1, l1);
        byte[] cfg = OciJson.Serialize(config);
        string cfgName = Digest.Compute(cfg).Hex + ".json";
        string manifest = $"[{{\"Config\":\"{cfgName}\",\"RepoTags\":[\"old:format\"],\"Layers\":[\"aaa/layer.tar\",\"bbb/layer.tar\"]}}]";
        byte[] tar = new TarBuilder().File(cfgName, Encoding.UTF8.GetString(cfg)).Dir("aaa/")
            .Add(new System.Formats.Tar.PaxTarEntry(System.Formats.Tar.TarEntryType.RegularFile, "aaa/layer.tar") { DataStream = new MemoryStream(l1) })
            .Dir("bbb/").Symlink("bbb/layer.tar", "../aaa/layer.tar").File("manifest.json", manifest).Build();
        var (b, rb) = Store("b");
        var loaded = DockerArchive.Load(new MemoryStream(TarBuilder.Gzip(tar)), b, rb);
        Assert.Equal(Digest.Compute(cfg), loaded[0].Id);
        ResolvedImage img = new ImageResolver(b, rb).Resolve("old:format", PlatformSpec.Parse("linux/arm64"));
        Assert.All(img.Manifest.Layers, l => { Assert.Equal(MediaTypes.OciLayerGzip, l.MediaType); Assert.Equal(Digest.Compute(l1), l.Digest); Assert.Equal(l1.Length, l.Size); });
        Assert.Equal(l1, b.ReadAllBytes(img.Manifest.Layers[0].Digest, 1 << 20));
    }

    internal static Digest ConfigDigest(ContentStore c, Descriptor manifest) =>
        OciJson.ParseManifest(c.ReadAllBytes(manifest.Digest, 1 << 20), "m").Config.Digest;

    internal static (List<string> Names, Dictionary<string, byte[]> Files) ReadTar(string file)
    {
        var names = new List<string>();
        var files = new Dictionary<string, byte[]>();
        using var r = new System.Formats.Tar.TarReader(File.OpenRead(file));
        System.Formats.Tar.TarEntry? e;
        while ((e = r.GetNextEntry()) is not null)
        {
            names.Add(e.Name);
            if (e.DataStream is not null) { var ms = new MemoryStream(); e.DataStream.CopyTo(ms); files[e.Name] = ms.ToArray(); }
        }
        return (names, files);
    }

    // ---- interop with a real tool ----

    private static void RequireSkopeo()
    {
        if (!File.Exists("/usr/bin/skopeo")) Assert.Skip("skopeo is not installed (scripts/setup.sh installs it)");
    }

    [Fact]
    public void LoadsAnArchiveWrittenBySkopeo()
    {
        RequireSkopeo();
        var (a, ra) = Store("a");
        var (m, config) = ImageBuilder.AddImage(a, "amd64", Layer1(), Layer2Gzip(), Layer3());
        string layout = Path.Combine(_tmp.Path, "layout");
        OciLayout.Export(layout, a, [new LayoutImage("src:1", m)]);
        string file = Path.Combine(_tmp.Path, "skopeo.tar");
        var (code, output) = Fs.Run("/usr/bin/skopeo", "copy", "--quiet", $"oci:{layout}:1", $"docker-archive:{file}:example.com/skopeo/img:v1");
        Assert.True(code == 0, output);

        var (b, rb) = Store("b");
        IReadOnlyList<LoadedImage> loaded;
        using (var fs = File.OpenRead(file)) loaded = DockerArchive.Load(fs, b, rb, "skopeo.tar");
        Assert.Equal(["example.com/skopeo/img:v1"], loaded[0].Names);
        Assert.Equal(ConfigDigest(a, m), loaded[0].Id);
        Assert.Equal(config.RootFs.DiffIds, loaded[0].DiffIds);
        ResolvedImage img = new ImageResolver(b, rb).Resolve("example.com/skopeo/img:v1");
        IReadOnlyList<string> dirs = new SnapshotStore(b.Root).Unpack(b, img);
        Assert.Equal("plain", File.ReadAllText(Path.Combine(dirs[2], "usr/x")));
    }

    [Fact]
    public void SkopeoReadsWhatSaveWrites()
    {
        RequireSkopeo();
        var (a, ra) = Store("a");
        var (m, config) = ImageBuilder.AddImage(a, "amd64", Layer1(), Layer2(), Layer3());
        ra.Tag("docker.io/library/app:1", m);
        string file = Path.Combine(_tmp.Path, "save.tar");
        using (var fs = File.Create(file)) DockerArchive.Save(fs, a, ra, ["docker.io/library/app:1"]);

        var (code, output) = Fs.Run("/usr/bin/skopeo", "inspect", "--raw", "--config", $"docker-archive:{file}");
        Assert.True(code == 0, output);
        Assert.True(ConfigDigest(a, m) == Digest.Compute(Encoding.UTF8.GetBytes(output.TrimEnd('\n'))), output);
        (code, output) = Fs.Run("/usr/bin/skopeo", "inspect", $"docker-archive:{file}");
        Assert.True(code == 0, output);
        using (var doc = JsonDocument.Parse(output))
            Assert.Equal(config.RootFs.DiffIds.Select(d => d.ToString()), doc.RootElement.GetProperty("Layers").EnumerateArray().Select(e => e.GetString()));

        // And a full copy back out through skopeo imports cleanly into a fresh store.
        string layout = Path.Combine(_tmp.Path, "out");
        (code, output) = Fs.Run("/usr/bin/skopeo", "copy", "--quiet", $"docker-archive:{file}", $"oci:{layout}:x");
        Assert.True(code == 0, output);
        var (b, rb) = Store("b");
        LayoutImportResult r = OciLayout.Import(layout, b, rb, "copied");
        // skopeo rewrites the config on a docker → OCI conversion; the filesystem must be the same.
        Assert.Equal(config.RootFs.DiffIds, new ImageResolver(b, rb).Resolve("copied", r.Images[0].Target).Config.RootFs.DiffIds);
    }
}
