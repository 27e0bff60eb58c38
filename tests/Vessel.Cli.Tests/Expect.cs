using Vessel.Tests;

namespace Vessel.Cli.Tests;

/// <summary>What the end-to-end tests expect of a `vessel` command's result.</summary>
internal static class Expect
{
    public static void Ok(Binaries.Result r) => Assert.True(r.Code == 0, r.ToString());

    /// <summary>A user mistake: exit 125 and one line on stderr, "vessel: …", that says <paramref name="contains"/>.</summary>
    public static void FailsWithOneLine(Binaries.Result r, string contains)
    {
        Assert.True(r.Code == 125, r.ToString());
        string line = Assert.Single(r.ErrLines);
        Assert.StartsWith("vessel: ", line);
        Assert.Contains(contains, line);
    }
}
