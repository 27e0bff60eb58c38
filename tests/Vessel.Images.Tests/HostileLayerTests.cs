using System.Formats.Tar;
using System.IO.Compression;
using System.Text;
using Vessel.Images.Layers;

namespace Vessel.Images.Tests;

/// <summary>A corpus of malicious layers, generated here. Each must fail with a LayerException naming the
/// image, the layer and the entry, and must leave the sentinel directory next to the target untouched.</summary>
public sealed class HostileLayerTests : IDisposable
{
    private const string Image = "evil:latest";
    private const string Layer = "sha256:abcdef012345";
    private readonly TempDir _tmp = new();
    private readonly string _outside;
    private readonly string _target;
    private readonly string _before;

    public HostileLayerTests()
    {
        _outside = _tmp.Sub("outside");
        File.WriteAllText(Path.Combine(_outside, "secret"), "do not touch");
        Directory.CreateDirectory(Path.Combine(_outside, "etc"));
        File.WriteAllText(Path.Combine(_outside, "etc/passwd"), "root:x:0:0");
        _target = _tmp.Sub("target");
        _before = Fs.Snapshot(_tmp.Path);
    }

    public void Dispose() => _tmp.Dispose();

    private LayerException Refuse(byte[] layer, ExtractionOptions? options = null)
    {
        var e = Assert.Throws<LayerException>(() => LayerExtractor.Extract(new MemoryStream(layer), _target, Image, Layer, options));
        Assert.StartsWith($"image {Image}: layer {Layer}: ", e.Message);
        Assert.DoesNotContain('\n', e.Message);
        // Nothing outside the target changed (the target itself may hold what came before the bad entry).
        Assert.Equal(_before, string.Join("\n", Fs.Snapshot(_tmp.Path).Split('\n').Where(l => !l.StartsWith("target/"))));
        Assert.Equal("do not touch", File.ReadAllText(Path.Combine(_outside, "secret")));
        Assert.False(File.Exists("/tmp/pwned"));
        return e;
    }

    [Fact]
    public void DotDotEscape()
    {
        byte[] tar = RawTar.Archive(RawTar.Entry("../outside/pwned", '0', "x"u8.ToArray()));
        Assert.Equal($"image {Image}: layer {Layer}: entry \"../outside/pwned\" escapes the layer root", Refuse(tar).Message);
        byte[] deeper = RawTar.Archive(RawTar.Entry("a/b/../../../outside/pwned", '0', "x"u8.ToArray()));
        Assert.Contains("entry \"a/b/../../../outside/pwned\" escapes the layer root", Refuse(deeper).Message);
    }

    [Fact]
    public void AbsolutePathIsMadeRelative()
    {
        string abs = Path.Combine(_outside, "abs-pwned");
        byte[] tar = RawTar.Archive(RawTar.Entry(abs.TrimStart('/'), '5', [], mode: 0x1ed), RawTar.Entry(abs, '0', "x"u8.ToArray()));
        LayerExtractor.Extract(new MemoryStream(tar), _target, Image, Layer, null);
        Assert.False(File.Exists(abs));
        Assert.True(File.Exists(_target + abs)); // landed inside, relative to the root
    }

    [Fact]
    public void SymlinkThenWriteThrough()
    {
        byte[] tar = new TarBuilder().Symlink("a", _outside).File("a/pwned", "gotcha").Build();
        var e = Refuse(tar);
        Assert.Equal($"image {Image}: layer {Layer}: entry \"a/pwned\" would be written through the symbolic link \"a\" (refused: links are never followed during extraction)", e.Message);
        Assert.False(File.Exists(Path.Combine(_outside, "pwned")));
    }

    [Fact]
    public void SymlinkToTmpThenWriteThrough()
    {
        byte[] tar = new TarBuilder().Symlink("a", "/tmp").File("a/pwned", "gotcha").Build();
        Assert.Contains("entry \"a/pwned\" would be written through the symbolic link \"a\"", Refuse(tar).Message);
    }

    [Fact]
    public void SymlinkDotDotChains()
    {
        // Each link climbs one level; chained they would reach the sentinel.
        byte[] tar = new TarBuilder()
            .Dir("d/")
            .Symlink("d/up", "..")
            .Symlink("d/up2", "up/..")
            .File("d/up2/outside/pwned", "gotcha")
            .Build();
        Assert.Contains("entry \"d/up2/outside/pwned\" would be written through the symbolic link \"d/up2\"", Refuse(tar).Message);
        Assert.False(File.Exists(Path.Combine(_outside, "pwned")));
    }

    [Fact]
    public void DirectoryEntryThroughSymlink()
    {
        byte[] tar = new TarBuilder().Symlink("etc", _outside).Dir("etc/cron.d/").Build();
        Assert.Contains("entry \"etc/cron.d/\" would be written through the symbolic link \"etc\"", Refuse(tar).Message);
        Assert.False(Directory.Exists(Path.Combine(_outside, "cron.d")));
    }

    [Fact]
    public void HardlinkToHostFile()
    {
        byte[] tar = new TarBuilder().HardLink("passwd", "/etc/passwd").Build();
        Assert.Equal($"image {Image}: layer {Layer}: entry \"passwd\" is a hard link to \"/etc/passwd\", which is not an earlier file of this layer", Refuse(tar).Message);
    }

    [Fact]
    public void HardlinkOutsideTheRoot()
    {
        byte[] tar = new TarBuilder().HardLink("secret", "../outside/secret").Build();
        Assert.Equal($"image {Image}: layer {Layer}: entry \"secret\" links outside the layer root", Refuse(tar).Message);
    }

    [Fact]
    public void HardlinkThroughAPlantedSymlink()
    {
        byte[] tar = new TarBuilder().Symlink("s", _outside).HardLink("h", "s/secret").Build();
        Assert.Contains("entry \"h\" is a hard link to \"s/secret\", which is not an earlier file of this layer", Refuse(tar).Message);
        Assert.Single(new DirectoryInfo(_outside).GetFiles("secret"));
    }

    [Fact]
    public void OverlongName()
    {
        string name = string.Join('/', Enumerable.Repeat(new string('a', 200), 25)); // 5024 bytes
        byte[] tar = new TarBuilder().File(name, "x").Build();
        var e = Refuse(tar);
        Assert.Contains("has a name of 5024 bytes, more than the limit of 4096", e.Message);
        Assert.Contains("…(5024 bytes)", e.Message); // the name itself is cut in the message
    }

    [Fact]
    public void OverlongLinkTarget()
    {
        byte[] tar = new TarBuilder().Symlink("l", new string('t', 5000)).Build();
        Assert.Contains("entry \"l\" has a link target of 5000 bytes, more than the limit of 4096", Refuse(tar).Message);
    }

    [Fact]
    public void OversizedPaxHeader()
    {
        // The header claims 1 GiB of PAX records; refused at the header, before anything is read or allocated.
        byte[] tar = [.. RawTar.Header("PaxHeaders/big", 'x', 1L << 30), .. new byte[4096]];
        Assert.Contains("entry \"PaxHeaders/big\" has a PAX extended header of 1073741824 bytes, more than the limit of 1048576", Refuse(tar).Message);

        // A real 2 MiB PAX header, with a lower limit.
        byte[] big = RawTar.Archive(RawTar.Entry("f", '0', "x"u8.ToArray(), paxRecords: RawTar.PaxRecord("comment", new byte[2 << 20])));
        Assert.Contains("more than the limit of 1048576", Refuse(big).Message);
    }

    [Fact]
    public void OversizedGnuLongName()
    {
        byte[] tar = [.. RawTar.Header("././@LongLink", 'L', 10L << 20), .. new byte[4096]];
        Assert.Contains("has a GNU long name of 10485760 bytes", Refuse(tar).Message);
    }

    [Fact]
    public void GzipBombIsStoppedAtTheHeader()
    {
        // 1 GiB of zeros in one file, gzip-compressed to about a megabyte; limit 100 MiB.
        var gz = new MemoryStream();
        using (var z = new GZipStream(gz, CompressionLevel.Optimal, leaveOpen: true))
        {
            z.Write(RawTar.Header("zeros", '0', 1L << 30));
            byte[] chunk = new byte[1 << 20];
            for (int i = 0; i < 1024; i++) z.Write(chunk);
            z.Write(new byte[1024]);
        }
        Assert.True(gz.Length < 8 << 20, $"compressed bomb is {gz.Length} bytes");
        var limits = new ExtractionOptions { Limits = new ExtractionLimits { MaxTotalBytes = 100L << 20 } };
        var e = Refuse(gz.ToArray(), limits);
        Assert.Contains("entry \"zeros\" brings the layer's extracted size to more than the limit of 104857600 bytes", e.Message);
        Assert.False(File.Exists(Path.Combine(_target, "zeros"))); // refused before any data was written
    }

    [Fact]
    public void ManySmallFilesBombIsStopped()
    {
        var b = new TarBuilder();
        for (int i = 0; i < 30; i++) b.File($"f{i}", new string('z', 1 << 20));
        var limits = new ExtractionOptions { Limits = new ExtractionLimits { MaxTotalBytes = 20L << 20 } };
        Assert.Contains("entry \"f20\" brings the layer's extracted size", Refuse(TarBuilder.Gzip(b.Build()), limits).Message);
    }

    [Fact]
    public void TooManyEntries()
    {
        var b = new TarBuilder();
        for (int i = 0; i < 20; i++) b.Dir($"d{i}/");
        var limits = new ExtractionOptions { Limits = new ExtractionLimits { MaxEntries = 10 } };
        Assert.Contains("entry \"d10/\" exceeds the limit of 10 entries per layer", Refuse(b.Build(), limits).Message);
    }

    [Fact]
    public void TrailingGarbageAfterEndOfArchive()
    {
        byte[] tar = [.. new TarBuilder().File("f", "x").Build(), .. new byte[3 << 20]];
        Assert.Contains("has more than 1048576 bytes after the end of the tar archive", Refuse(tar).Message);
    }

    [Fact]
    public void BadChecksumAndTruncation()
    {
        byte[] tar = RawTar.Archive(RawTar.Entry("f", '0', "hello"u8.ToArray()));
        tar[0] = (byte)'g';
        Assert.Contains("has a bad tar header checksum", Refuse(tar).Message);
        byte[] truncated = new TarBuilder().File("f", new string('x', 5000)).Build()[..2048];
        Assert.Contains("not a valid tar stream", Refuse(truncated).Message);
    }

    [Fact]
    public void UnsupportedEntryTypes()
    {
        byte[] sparse = RawTar.Archive(RawTar.Entry("s", 'S', []));
        Assert.Contains("entry \"s\" has unsupported tar entry type 'S' (GNU sparse file)", Refuse(sparse).Message);
        byte[] contiguousOk = RawTar.Archive(RawTar.Entry("c", '7', "contiguous"u8.ToArray()));
        LayerExtractor.Extract(new MemoryStream(contiguousOk), _target, Image);
        byte[] volume = RawTar.Archive(RawTar.Entry("v", 'V', []));
        Assert.Contains("entry \"v\" has unsupported tar entry type 'V'", Refuse(volume).Message);
        byte[] paxSparse = RawTar.Archive(RawTar.Entry("s", '0', [], paxRecords: RawTar.PaxRecord("GNU.sparse.major", "1"u8.ToArray())));
        Assert.Contains("entry \"s\" is a GNU sparse file", Refuse(paxSparse).Message);
    }

    [Fact]
    public void WhiteoutCannotEscape()
    {
        byte[] tar = RawTar.Archive(RawTar.Entry("../outside/.wh.secret", '0', []));
        Assert.Contains("escapes the layer root", Refuse(tar, new ExtractionOptions { Whiteouts = WhiteoutMode.Apply }).Message);
        byte[] viaLink = new TarBuilder().Symlink("o", _outside).File("o/.wh.secret", "").Build();
        Assert.Contains("would be written through the symbolic link \"o\"", Refuse(viaLink, new ExtractionOptions { Whiteouts = WhiteoutMode.Apply }).Message);
        Assert.Contains("would be written through the symbolic link \"o\"", Refuse(viaLink).Message);
        byte[] opq = new TarBuilder().Symlink("o", _outside).File("o/.wh..wh..opq", "").Build();
        Assert.Contains("would be written through the symbolic link \"o\"", Refuse(opq, new ExtractionOptions { Whiteouts = WhiteoutMode.Apply }).Message);
    }

    [Fact]
    public void ExistingSymlinkInTargetIsNotFollowed()
    {
        // A lower layer flattened into the same dir left a symlink; the next layer writes below it.
        File.CreateSymbolicLink(Path.Combine(_target, "lib"), _outside);
        byte[] tar = new TarBuilder().File("lib/pwned", "x").Build();
        var e = Assert.Throws<LayerException>(() => LayerExtractor.Extract(new MemoryStream(tar), _target, Image, Layer, new ExtractionOptions { Whiteouts = WhiteoutMode.Apply }));
        Assert.Contains("would be written through the symbolic link \"lib\"", e.Message);
        Assert.False(File.Exists(Path.Combine(_outside, "pwned")));
        // Replacing the symlink itself by a file is fine: the link is removed, its target untouched.
        LayerExtractor.Extract(new MemoryStream(new TarBuilder().File("lib", "now a file").Build()), _target, Image);
        Assert.Equal("now a file", File.ReadAllText(Path.Combine(_target, "lib")));
        Assert.True(File.Exists(Path.Combine(_outside, "secret")));
    }

    [Fact]
    public void ControlCharactersInNamesAreEscapedInMessages()
    {
        byte[] tar = RawTar.Archive(RawTar.Entry("../\u001b[31mred\nline", '0', []));
        var e = Refuse(tar);
        Assert.Contains("entry \"../\\x1b[31mred\\x0aline\" escapes the layer root", e.Message);
    }
}
