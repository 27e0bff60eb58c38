using Vessel.Images.Build.Containerfile;

namespace Vessel.Images.Tests.Build;

public class ShellWordsTests
{
    private static readonly Dictionary<string, string?> Env = new()
    {
        ["A"] = "alpha", ["EMPTY"] = "", ["SP"] = "two words", ["P"] = "/usr/bin",
    };

    private static string W(string s, char esc = '\\') => new ShellWords(esc).Word(s, n => Env.GetValueOrDefault(n));
    private static IReadOnlyList<string> Ws(string s) => new ShellWords().Words(s, n => Env.GetValueOrDefault(n));

    [Theory]
    [InlineData("$A", "alpha")]
    [InlineData("${A}", "alpha")]
    [InlineData("x${A}y", "xalphay")]
    [InlineData("$A.txt", "alpha.txt")]
    [InlineData("$NOPE", "")]
    [InlineData("${NOPE:-def}", "def")]
    [InlineData("${EMPTY:-def}", "def")]
    [InlineData("${EMPTY-def}", "")]
    [InlineData("${NOPE-def}", "def")]
    [InlineData("${A:-def}", "alpha")]
    [InlineData("${A:+set}", "set")]
    [InlineData("${EMPTY:+set}", "")]
    [InlineData("${EMPTY+set}", "set")]
    [InlineData("${NOPE:+set}", "")]
    [InlineData("${NOPE:-${A}}", "alpha")]
    [InlineData("${NOPE:-a b}", "a b")]
    [InlineData("'$A'", "$A")]
    [InlineData("\"$A\"", "alpha")]
    [InlineData("\"a 'b' c\"", "a 'b' c")]
    [InlineData("\\$A", "$A")]
    [InlineData("\"\\$A\"", "$A")]
    [InlineData("\"a\\tb\"", "a\\tb")]
    [InlineData("\"a\\\"b\"", "a\"b")]
    [InlineData("a\\ b", "a b")]
    [InlineData("$", "$")]
    [InlineData("a$", "a$")]
    [InlineData("$-x", "$-x")]
    [InlineData("${P}/x", "/usr/bin/x")]
    public void Word(string input, string expected) => Assert.Equal(expected, W(input));

    [Fact]
    public void Backtick_escape()
    {
        Assert.Equal("$A", W("`$A", '`'));
        Assert.Equal("c:\\dir", W("c:\\dir", '`'));
    }

    [Fact]
    public void Required_variables()
    {
        var e = Assert.Throws<ShellWordException>(() => W("${NOPE:?must be set}"));
        Assert.Contains("must be set", e.Message);
        Assert.Equal("alpha", W("${A:?x}"));
        Assert.Throws<ShellWordException>(() => W("${EMPTY:?x}"));
        Assert.Equal("", W("${EMPTY?x}"));
    }

    [Theory]
    [InlineData("'unterminated")]
    [InlineData("\"unterminated")]
    [InlineData("${A")]
    [InlineData("${}")]
    [InlineData("${A:x}")]
    [InlineData("${A:-x")]
    public void Bad_words(string input) => Assert.Throws<ShellWordException>(() => W(input));

    [Fact]
    public void Word_splitting()
    {
        Assert.Equal(["a", "b c", "alpha"], Ws("a \"b c\" $A"));
        Assert.Equal(["x"], Ws("$NOPE x $EMPTY"));
        Assert.Equal(["", "x"], Ws("\"\" x"));
        Assert.Equal(["two words"], Ws("\"$SP\""));
        Assert.Equal(["two words"], Ws("$SP")); // like Docker: no field splitting of expansions
    }

    [Fact]
    public void Referenced_names()
    {
        Assert.Equal(new HashSet<string> { "A", "B", "C" }, ShellWords.Referenced("$A ${B:-$C} '$D'").ToHashSet());
    }
}

public class IgnoreRulesTests
{
    private static IgnoreRules R(string text) => IgnoreRules.Parse(text);

    [Theory]
    [InlineData("*.md", "README.md", true)]
    [InlineData("*.md", "docs/README.md", false)]
    [InlineData("**/*.md", "docs/a/README.md", true)]
    [InlineData("**/*.md", "README.md", true)]
    [InlineData("docs", "docs/a/b.txt", true)]
    [InlineData("docs/", "docs/a/b.txt", true)]
    [InlineData("/docs", "docs", true)]
    [InlineData("./docs", "docs/x", true)]
    [InlineData("d?cs", "docs", true)]
    [InlineData("d?cs", "d/cs", false)]
    [InlineData("[a-c]at", "bat", true)]
    [InlineData("[!a-c]at", "bat", false)]
    [InlineData("[^a-c]at", "rat", true)]
    [InlineData("temp*", "temporary", true)]
    [InlineData("*/temp*", "somedir/temporary.txt", true)]
    [InlineData("*/*/temp*", "a/b/temp", true)]
    [InlineData("node_modules", "node_modules", true)]
    [InlineData("**", "anything/at/all", true)]
    [InlineData("a/**/b", "a/b", true)]
    [InlineData("a/**/b", "a/x/y/b", true)]
    [InlineData("a/**", "a/x", true)]
    [InlineData("\\*x", "*x", true)]
    [InlineData("\\*x", "ax", false)]
    [InlineData("a.b", "aXb", false)]
    public void Patterns(string pattern, string path, bool ignored) => Assert.Equal(ignored, R(pattern).IsIgnored(path));

    [Fact]
    public void Exceptions_and_last_match_wins()
    {
        var r = R("*.md\n!README.md\n");
        Assert.True(r.IsIgnored("CHANGES.md"));
        Assert.False(r.IsIgnored("README.md"));
        Assert.True(r.HasExclusions);
        var r2 = R("!README.md\n*.md\n");
        Assert.True(r2.IsIgnored("README.md"));
    }

    [Fact]
    public void Exception_inside_an_excluded_directory()
    {
        var r = R("build\n!build/keep.txt\n");
        Assert.True(r.IsIgnored("build/other"));
        Assert.False(r.IsIgnored("build/keep.txt"));
    }

    [Fact]
    public void Comments_blank_lines_and_whitespace()
    {
        var r = R("# a comment\n\n   *.log   \n");
        Assert.Equal(["*.log"], r.Patterns);
        Assert.True(r.IsIgnored("x.log"));
        Assert.False(r.IsIgnored("# a comment"));
    }

    [Fact]
    public void Root_is_never_ignored() => Assert.False(R("*\n").IsIgnored("."));

    [Fact]
    public void Bad_patterns()
    {
        Assert.Throws<FormatException>(() => R("!\n"));
        Assert.Throws<FormatException>(() => R("[abc\n"));
    }

    [Theory]
    [InlineData("a/../b", "b")]
    [InlineData("./a//b/", "a/b")]
    [InlineData("/a/../..", "/")]
    [InlineData("../x", "../x")]
    [InlineData("", ".")]
    public void Clean(string input, string expected) => Assert.Equal(expected, IgnoreRules.Clean(input));
}
