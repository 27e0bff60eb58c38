using Vessel.Images.Registry;

namespace Vessel.Images.Tests.Registry;

public sealed class AuthChallengeTests
{
    [Fact]
    public void ParsesDockerHubBearerChallenge()
    {
        var c = Assert.Single(AuthChallenge.ParseAll(
            "Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\",scope=\"repository:library/busybox:pull\""));
        Assert.True(c.IsBearer);
        Assert.Equal("https://auth.docker.io/token", c.Realm);
        Assert.Equal("registry.docker.io", c.Service);
        Assert.Equal("repository:library/busybox:pull", c.Scope);
    }

    [Fact]
    public void ParsesSeveralChallengesTokensEscapesAndOddSpacing()
    {
        var cs = AuthChallenge.ParseAll("Basic realm=\"basic \\\"realm\\\"\" , bearer  realm = \"http://127.0.0.1:9/token\", service=reg,scope=\"repository:a:pull,push repository:b:pull\",error=insufficient_scope");
        Assert.Equal(2, cs.Count);
        Assert.True(cs[0].IsBasic);
        Assert.Equal("basic \"realm\"", cs[0].Realm);
        Assert.True(cs[1].IsBearer);
        Assert.Equal("http://127.0.0.1:9/token", cs[1].Realm);
        Assert.Equal("reg", cs[1].Service);
        Assert.Equal("repository:a:pull,push repository:b:pull", cs[1].Scope);
        Assert.Equal("insufficient_scope", cs[1].Error);
        Assert.Equal("reg", cs[1].Get("SERVICE")); // names are case-insensitive
    }

    [Fact]
    public void SchemeWithoutParameters()
    {
        var c = Assert.Single(AuthChallenge.ParseAll("Basic"));
        Assert.True(c.IsBasic);
        Assert.Empty(c.Parameters);
    }

    [Theory]
    [InlineData("")]
    [InlineData("Bearer realm=\"unterminated")]
    [InlineData("Bearer realm=\"x\" junk")]
    [InlineData("=x")]
    public void MalformedHeadersAreOneLineErrors(string header)
    {
        Assert.False(AuthChallenge.TryParseAll(header, out _, out string? error));
        Assert.DoesNotContain('\n', error);
        Assert.Contains("WWW-Authenticate", error, StringComparison.OrdinalIgnoreCase);
    }
}
