using Vessel.Engine.Build;
using Vessel.Images.Build.Containerfile;

namespace Vessel.Engine.Tests;

/// <summary>The builder's pure parts: ARG scoping, EXPOSE parsing, paths inside a rootfs.</summary>
public class BuildUnitTests
{
    private static readonly SourcePos Pos = new("Containerfile", 1, 1);

    [Fact]
    public void Ports()
    {
        Assert.Equal(["80/tcp"], Builder.ParsePorts("80", Pos));
        Assert.Equal(["53/udp"], Builder.ParsePorts("53/UDP", Pos));
        Assert.Equal(["8000/tcp", "8001/tcp", "8002/tcp"], Builder.ParsePorts("8000-8002", Pos));
        Assert.Throws<ContainerfileException>(() => Builder.ParsePorts("http", Pos).ToList());
        Assert.Throws<ContainerfileException>(() => Builder.ParsePorts("80/icmp", Pos).ToList());
        Assert.Throws<ContainerfileException>(() => Builder.ParsePorts("70000", Pos).ToList());
        Assert.Throws<ContainerfileException>(() => Builder.ParsePorts("90-80", Pos).ToList());
    }

    private static ArgInstruction Arg(string text) => Parser.Parse($"{text}\nFROM scratch\n").MetaArgs[0];

    [Fact]
    public void Meta_args_defaults_overrides_and_platform()
    {
        var given = new Dictionary<string, string?> { ["VERSION"] = "2", ["UNUSED"] = "x" };
        var args = new BuildArgs(given);
        var meta = args.Meta([Arg("ARG BASE=debian"), Arg("ARG VERSION=1"), Arg("ARG TAG=${BASE}-${VERSION}")], new ShellWords(), "amd64");
        Assert.Equal("debian", meta["BASE"]);
        Assert.Equal("2", meta["VERSION"]);
        Assert.Equal("debian-2", meta["TAG"]);
        Assert.Equal("linux/amd64", meta["TARGETPLATFORM"]);
        Assert.Equal("amd64", meta["BUILDARCH"]);
        Assert.Equal(["UNUSED"], args.Unused);
    }

    [Fact]
    public void Stage_args_inherit_meta_values_only_when_declared_without_default()
    {
        var args = new BuildArgs(new Dictionary<string, string?> { ["GIVEN"] = "cli" });
        var meta = new Dictionary<string, string?> { ["M"] = "meta" };
        Assert.Equal("meta", args.Declare("M", null, meta));
        Assert.Equal("own", args.Declare("M", "own", meta));
        Assert.Equal("cli", args.Declare("GIVEN", "default", meta));
        Assert.Null(args.Declare("NONE", null, meta));
        Assert.Empty(args.Unused);
    }

    [Fact]
    public void Predefined_proxy_args_need_no_declaration()
    {
        var args = new BuildArgs(new Dictionary<string, string?> { ["http_proxy"] = "http://proxy:3128", ["OTHER"] = "1" });
        Assert.Equal([new KeyValuePair<string, string>("http_proxy", "http://proxy:3128")], args.PredefinedGiven().ToList());
        Assert.Equal(["OTHER"], args.Unused);
    }

    [Fact]
    public void In_root_resolution_never_leaves_the_root()
    {
        string root = Directory.CreateTempSubdirectory("vessel-test-inroot-").FullName;
        try
        {
            Directory.CreateDirectory(Path.Combine(root, "real", "dir"));
            File.CreateSymbolicLink(Path.Combine(root, "abs"), "/real");
            File.CreateSymbolicLink(Path.Combine(root, "rel"), "real/dir");
            File.CreateSymbolicLink(Path.Combine(root, "up"), "../../../../etc");
            File.CreateSymbolicLink(Path.Combine(root, "real", "loop"), "loop");
            Assert.Equal(root + "/real/dir/x", InRoot.Resolve(root, "/abs/dir/x", followLast: true));
            Assert.Equal(root + "/real/dir", InRoot.Resolve(root, "/rel", followLast: true));
            Assert.Equal(root + "/rel", InRoot.Resolve(root, "/rel", followLast: false));
            Assert.Equal(root + "/etc/passwd", InRoot.Resolve(root, "/up/passwd", followLast: true));
            Assert.Equal(root + "/etc", InRoot.Resolve(root, "/../../etc", followLast: true));
            Assert.Throws<BuildException>(() => InRoot.Resolve(root, "/real/loop/x", followLast: true));
            string made = InRoot.MkdirAll(root, "/abs/new/deeper", 1, 2);
            Assert.Equal(root + "/real/new/deeper", made);
            Assert.True(Directory.Exists(made));
        }
        finally { Directory.Delete(root, recursive: true); }
    }

    [Theory]
    [InlineData("SIGTERM", true)]
    [InlineData("term", true)]
    [InlineData("9", true)]
    [InlineData("SIGRTMIN+3", true)]
    [InlineData("RTMAX-2", true)]
    [InlineData("BOGUS", false)]
    [InlineData("0", false)]
    [InlineData("65", false)]
    [InlineData("SIGRTMIN+16", false)]
    [InlineData("", false)]
    public void Stop_signals_as_docker_parses_them(string s, bool ok) => Assert.Equal(ok, Vessel.Linux.Signals.TryParse(s, out _));

    [Fact]
    public void Tar_headers_are_recognised_by_their_checksum()
    {
        string dir = Directory.CreateTempSubdirectory("vessel-test-tarhead-").FullName;
        try
        {
            File.WriteAllText(Path.Combine(dir, "f.txt"), "x\n");
            var p = System.Diagnostics.Process.Start("tar", ["-C", dir, "--format=v7", "-cf", Path.Combine(dir, "v7.tar"), "f.txt"])!;
            p.WaitForExit();
            byte[] head = File.ReadAllBytes(Path.Combine(dir, "v7.tar"))[..512];
            Assert.True(AddArchive.IsTarHeader(head)); // no "ustar" magic in a v7 archive
            head[0] ^= 1;
            Assert.False(AddArchive.IsTarHeader(head));
            Assert.False(AddArchive.IsTarHeader(new byte[512])); // end-of-archive block
            Assert.False(AddArchive.IsTarHeader("plain text"u8.ToArray()));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Failed_processes_are_quoted_as_go_does() =>
        Assert.Equal("\"/bin/sh -c echo \\\"a\\\\b\\\"\\nexit 3\"", Builder.Quote("/bin/sh -c echo \"a\\b\"\nexit 3"));
}
