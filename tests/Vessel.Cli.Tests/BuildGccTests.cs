using Vessel.Tests;

using static Vessel.Cli.Tests.Expect;

namespace Vessel.Cli.Tests;

/// <summary>A daemon with "debian-gcc:test": the Debian minbase + gcc fixture (tests/fixtures/debian-gcc.sh,
/// made once with debootstrap and cached in .cache/fixtures), imported as a rootfs tarball.</summary>
public sealed class GccFixture : IDisposable
{
    public DaemonFixture D { get; } = new();
    public const string Image = "debian-gcc:test";

    public GccFixture()
    {
        string script = Path.Combine(BusyboxFixture.RepoRoot(), "tests", "fixtures", "debian-gcc.sh");
        var made = Binaries.Run("bash", [script], timeout: TimeSpan.FromMinutes(20));
        if (made.Code != 0) throw new InvalidOperationException("debian-gcc fixture: " + made);
        string tarball = Path.Combine(made.Out.Trim(), "rootfs.tar.gz");
        var r = Binaries.Run(Binaries.Vessel, ["-H", D.Host, "import", "-c", "CMD [\"bash\"]", tarball, Image], timeout: TimeSpan.FromMinutes(5));
        if (r.Code != 0) throw new InvalidOperationException(r.ToString());
    }

    public void Dispose() => D.Dispose();
}

/// <summary>The check: a multi-stage build whose first stage compiles a small static C program with the
/// gcc of a debootstrap base and copies it into FROM scratch; cache hits, then misses after changing the source;
/// the cache goes with the image.</summary>
public sealed class BuildGccTests(GccFixture f) : IClassFixture<GccFixture>
{
    private DaemonFixture D => f.D;

    private Binaries.Result Vessel(params string[] args) => Binaries.Run(Binaries.Vessel, ["-H", D.Host, .. args], timeout: TimeSpan.FromMinutes(5));

    private static int Cached(string err) => err.Split('\n').Count(l => l.EndsWith(" CACHED", StringComparison.Ordinal));

    [Fact]
    public void CompilesAStaticProgramIntoScratch()
    {
        string ctx = D.Tmp.Sub("gcc-ctx");
        File.WriteAllText(Path.Combine(ctx, "Containerfile"), $"""
            FROM {GccFixture.Image} AS build
            WORKDIR /src
            COPY hello.c .
            RUN gcc -static -O2 -o /hello hello.c && strip /hello && ls -l /hello

            FROM scratch
            COPY --from=build /hello /hello
            ENTRYPOINT ["/hello"]
            CMD ["from the image"]
            """);
        File.WriteAllText(Path.Combine(ctx, "hello.c"), """
            #include <stdio.h>
            int main(int argc, char **argv) { printf("hello, %s\n", argc > 1 ? argv[1] : "nobody"); return 0; }
            """);
        var first = Vessel("build", "-t", "hello:static", ctx);
        Ok(first);
        Assert.Contains("[build 4/4] RUN gcc -static", first.Err);
        Assert.Equal("hello, from the image", Vessel("run", "--rm", "hello:static").Out.Trim());
        Assert.Equal("hello, args", Vessel("run", "--rm", "hello:static", "args").Out.Trim());

        var again = Vessel("build", "-t", "hello:static", ctx);
        Ok(again);
        Assert.Equal(6, Cached(again.Err)); // FROM, WORKDIR, COPY, RUN; FROM scratch, COPY --from

        File.WriteAllText(Path.Combine(ctx, "hello.c"), File.ReadAllText(Path.Combine(ctx, "hello.c")).Replace("hello, ", "hi, "));
        var changed = Vessel("build", "-t", "hello:static", ctx);
        Ok(changed);
        Assert.Equal(3, Cached(changed.Err)); // the two FROMs, WORKDIR
        Assert.Equal("hi, from the image", Vessel("run", "--rm", "hello:static").Out.Trim());

        // The cache lives as long as the images built with it: both builds' records and the gcc stage's
        // layers go once no name reaches them.
        string cache = Path.Combine(D.Root, "buildcache");
        Assert.NotEmpty(Directory.EnumerateDirectories(cache));
        Ok(Vessel("rmi", "hello:static"));
        Ok(Vessel("image", "prune", "-f"));
        Assert.Empty(Directory.EnumerateDirectories(cache));
        var df = Vessel("system", "df", "--format", "json");
        Ok(df);
    }
}
