using Vessel.Images.Content;
using Vessel.Images.References;

namespace Vessel.Images.Tests.Registry;

public sealed class ReferenceTests
{
    private const string Hex = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    [Theory]
    [InlineData("busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest")]
    [InlineData("busybox:1.36", "docker.io", "library/busybox", "1.36", "docker.io/library/busybox:1.36")]
    [InlineData("library/busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest")]
    [InlineData("user/app:v1", "docker.io", "user/app", "v1", "docker.io/user/app:v1")]
    [InlineData("docker.io/busybox", "docker.io", "library/busybox", "latest", "docker.io/library/busybox:latest")]
    [InlineData("index.docker.io/library/busybox:x", "docker.io", "library/busybox", "x", "docker.io/library/busybox:x")]
    [InlineData("localhost:5000/a/b:tag", "localhost:5000", "a/b", "tag", "localhost:5000/a/b:tag")]
    [InlineData("localhost/x", "localhost", "x", "latest", "localhost/x:latest")]
    [InlineData("ghcr.io/owner/repo/sub:1.0-rc_1", "ghcr.io", "owner/repo/sub", "1.0-rc_1", "ghcr.io/owner/repo/sub:1.0-rc_1")]
    [InlineData("[::1]:5000/x:y", "[::1]:5000", "x", "y", "[::1]:5000/x:y")]
    [InlineData("Registry.Example.COM/a__b/c-d.e", "Registry.Example.COM", "a__b/c-d.e", "latest", "Registry.Example.COM/a__b/c-d.e:latest")]
    public void ParsesAndNormalisesLikeDocker(string input, string registry, string repo, string tag, string normal)
    {
        ImageRef r = ImageRef.Parse(input);
        Assert.Equal(registry, r.Registry);
        Assert.Equal(repo, r.Repository);
        Assert.Equal(tag, r.Tag);
        Assert.Null(r.Digest);
        Assert.Equal(normal, r.ToString());
        Assert.Equal(tag, r.ManifestReference);
    }

    [Fact]
    public void DigestReferences()
    {
        ImageRef a = ImageRef.Parse($"127.0.0.1:5000/x@sha256:{Hex}");
        Assert.Equal("127.0.0.1:5000", a.Registry);
        Assert.Null(a.Tag);
        Assert.Equal(Digest.Parse($"sha256:{Hex}"), a.Digest);
        Assert.Equal($"sha256:{Hex}", a.ManifestReference);
        Assert.Equal($"127.0.0.1:5000/x@sha256:{Hex}", a.ToString());

        ImageRef b = ImageRef.Parse($"busybox:1.36@sha256:{Hex}");
        Assert.Equal("1.36", b.Tag);
        Assert.Equal($"sha256:{Hex}", b.ManifestReference); // the digest wins
        Assert.Equal($"docker.io/library/busybox:1.36@sha256:{Hex}", b.ToString());
        Assert.Equal($"busybox:1.36@sha256:{Hex}", b.Familiar);
    }

    [Fact]
    public void HelpersAndFamiliarForm()
    {
        ImageRef r = ImageRef.Parse("busybox");
        Assert.Equal("busybox:latest", r.Familiar);
        Assert.Equal("registry-1.docker.io", r.ApiHost);
        Assert.Equal("docker.io/library/busybox:2", r.WithTag("2").ToString());
        Assert.Equal("localhost:5000/a:b", ImageRef.Parse("localhost:5000/a:b").Familiar);
        Assert.True(ImageRef.IsLoopback("127.0.0.1:5000"));
        Assert.True(ImageRef.IsLoopback("127.1.2.3"));
        Assert.True(ImageRef.IsLoopback("localhost:5000"));
        Assert.True(ImageRef.IsLoopback("[::1]:5000"));
        Assert.False(ImageRef.IsLoopback("docker.io"));
        Assert.False(ImageRef.IsLoopback("10.0.0.1:5000"));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("Busybox", "must be lowercase")]
    [InlineData("docker.io/Library/busybox", "must be lowercase")]
    [InlineData("busybox:", "invalid tag")]
    [InlineData("busybox:-x", "invalid tag")]
    [InlineData("busybox:a/b", "invalid registry host")] // "a/b" is no tag: "busybox:a" would be a host with a bad port
    [InlineData("a//b", "empty path component")]
    [InlineData("a/b/", "empty path component")]
    [InlineData("a..b", "invalid path component")]
    [InlineData("-a", "invalid path component")]
    [InlineData("a b", "whitespace")]
    [InlineData("busybox@sha256:abc", "64 lowercase hex")]
    [InlineData("busybox@sha512:" + Hex, "only sha256 is supported")]
    [InlineData("localhost:5000/", "no repository name after the registry")]
    [InlineData("my_host:5000/x", "invalid registry host")]
    [InlineData(":tag", "no repository name")]
    [InlineData(Hex, "image ID")]
    public void RejectsInvalidReferencesWithOneClearLine(string input, string expected)
    {
        Assert.False(ImageRef.TryParse(input, out _, out string? error));
        Assert.Contains(expected, error);
        Assert.DoesNotContain('\n', error);
        var e = Assert.Throws<FormatException>(() => ImageRef.Parse(input));
        Assert.Equal(error, e.Message);
    }

    [Fact]
    public void RejectsOverlongNamesAndTags()
    {
        Assert.Contains("longer than 255", Assert.Throws<FormatException>(() => ImageRef.Parse("localhost/" + new string('a', 250))).Message);
        Assert.Contains("invalid tag", Assert.Throws<FormatException>(() => ImageRef.Parse("a:" + new string('t', 129))).Message);
        ImageRef.Parse("a:" + new string('t', 128));
    }
}
