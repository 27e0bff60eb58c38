using System.Formats.Tar;
using System.Text;
using Vessel.Images.Archive;
using Vessel.Images.Content;
using Vessel.Images.Oci;

namespace Vessel.Images.Tests.Archive;

/// <summary>Hostile and broken docker-archives: each is refused with one clear line and tags nothing.</summary>
public sealed class HostileArchiveTests : IDisposable
{
    private readonly TempDir _tmp = new();
    public void Dispose() => _tmp.Dispose();

    private static readonly byte[] Layer = new TarBuilder().File("a", "a").Build();
    private static readonly byte[] Config = OciJson.Serialize(new ImageConfig
    {
        Architecture = "amd64", Os = "linux",
        RootFs = new RootFs { Type = "layers", DiffIds = [Digest.Compute(Layer)] },
    });

    private static string Manifest(string config = "c.json", string layers = "\"l.tar\"", string tags = "[\"evil:1\"]") =>
        $"[{{\"Config\":\"{config}\",\"RepoTags\":{tags},\"Layers\":[{layers}]}}]";

    private static TarBuilder Good(string manifest) =>
        new TarBuilder().File("c.json", Encoding.UTF8.GetString(Config))
            .Add(new PaxTarEntry(TarEntryType.RegularFile, "l.tar") { DataStream = new MemoryStream(Layer) })
            .File("manifest.json", manifest);

    public static TheoryData<string, byte[], string> Corpus()
    {
        byte[] huge = Encoding.UTF8.GetBytes("[" + new string(' ', 17 * 1024 * 1024) + "]");
        byte[] badLayer = new TarBuilder().File("a", "b").Build();
        return new TheoryData<string, byte[], string>
        {
            { "not a tar", Encoding.UTF8.GetBytes(new string('x', 2000)), "not a valid tar" },
            { "xz", [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2, 3], "xz-compressed" },
            { "no manifest.json", new TarBuilder().File("c.json", "{}").Build(), "manifest.json is missing" },
            { "oci layout only", new TarBuilder().File("index.json", "{}").File("oci-layout", "{}").Build(), "load it as an oci-archive" },
            { "escaping entry", RawTar.Archive(RawTar.Entry("../../etc/cron.d/x", '0', "x"u8.ToArray())), "escapes the archive root" },
            { "device entry", Good(Manifest()).Device("dev/sda", TarEntryType.BlockDevice, 8, 0).Build(), "has no place in an image archive" },
            { "duplicate entry", Good(Manifest()).File("c.json", "{}").Build(), "appears twice" },
            { "huge manifest.json", new TarBuilder().Add(new PaxTarEntry(TarEntryType.RegularFile, "manifest.json") { DataStream = new MemoryStream(huge) }).Build(), "more than the 16777216 allowed" },
            { "invalid json", Good("[{\"Config\": ").Build(), "manifest.json: invalid JSON" },
            { "empty list", Good("[]").Build(), "lists no images" },
            { "missing config", Good(Manifest(config: "nope.json")).Build(), "config \"nope.json\" is not in the archive" },
            { "missing layer", Good(Manifest(layers: "\"gone/layer.tar\"")).Build(), "layer 1 \"gone/layer.tar\" is not in the archive" },
            { "layer path escapes", Good(Manifest(layers: "\"../../../etc/shadow\"")).Build(), "escapes the archive root" },
            { "layer count mismatch", Good(Manifest(layers: "\"l.tar\",\"l.tar\"")).Build(), "lists 2 layers but the config has 1 diff_ids" },
            { "wrong diff id", new TarBuilder().File("c.json", Encoding.UTF8.GetString(Config))
                .Add(new PaxTarEntry(TarEntryType.RegularFile, "l.tar") { DataStream = new MemoryStream(badLayer) })
                .File("manifest.json", Manifest()).Build(), "but the config lists" },
            { "symlink loop", Good(Manifest(layers: "\"x\"")).Symlink("x", "y").Symlink("y", "x").Build(), "chain of more than 16 links" },
            { "bad tag", Good(Manifest(tags: "[\"evil tag\"]")).Build(), "contains whitespace" },
            { "config not json", new TarBuilder().File("c.json", "nope").File("manifest.json", Manifest(layers: "")).Build(), "invalid JSON" },
            { "blob not matching its name", new TarBuilder().File("blobs/sha256/" + new string('a', 64), "x").Build(), "not the digest its name promises" },
        };
    }

    [Theory]
    [MemberData(nameof(Corpus))]
    public void IsRefusedWithOneClearLine(string label, byte[] archive, string expected)
    {
        var store = new ContentStore(_tmp.Sub(label.Replace(' ', '-')));
        var refs = new ReferenceStore(store);
        var e = Assert.Throws<ArchiveException>(() => DockerArchive.Load(new MemoryStream(archive), store, refs, "evil.tar"));
        Assert.StartsWith("docker-archive evil.tar: ", e.Message);
        Assert.Contains(expected, e.Message);
        Assert.DoesNotContain('\n', e.Message);
        Assert.Empty(refs.List());
    }

    [Fact]
    public void TheGoodBaseOfTheCorpusLoads()
    {
        var store = new ContentStore(_tmp.Path);
        var refs = new ReferenceStore(store);
        var loaded = DockerArchive.Load(new MemoryStream(Good(Manifest()).Build()), store, refs);
        Assert.Equal(["evil:1"], loaded[0].Names);
    }
}
