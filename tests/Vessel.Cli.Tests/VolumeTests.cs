using System.Text.Json;
using Vessel.Api;

using static Vessel.Cli.Tests.Expect;

namespace Vessel.Cli.Tests;

/// <summary>Volumes, binds and tmpfs through the CLI and a private daemon (busybox image bb:1).</summary>
public sealed class VolumeTests(BusyboxFixture f) : IClassFixture<BusyboxFixture>
{
    private DaemonFixture D => f.D;
    private const string Image = BusyboxFixture.Image;

    [Fact]
    public void NamedVolumeIsFilledFromTheImageAndOutlivesItsContainers()
    {
        // First use of a new volume over the image's /etc: docker's copy-up gives it the image's files.
        var first = D.Vessel("run", "--name", "vol-writer", "-v", "vt-etc:/etc", Image, "sh", "-c", "grep -c root /etc/passwd; echo kept > /etc/marker");
        Ok(first);
        Assert.Equal("1\n", first.Out);
        var inUse = D.Vessel("volume", "rm", "-f", "vt-etc");
        Assert.True(inUse.Code == 125 && inUse.Err.Contains("in use"), inUse.ToString()); // even with -f, as docker
        Ok(D.Vessel("rm", "-v", "vol-writer")); // -v removes anonymous volumes only
        var again = D.Vessel("run", "--rm", "-v", "vt-etc:/etc:ro", Image, "sh", "-c", "cat /etc/marker; touch /etc/x 2>/dev/null || echo read-only");
        Ok(again);
        Assert.Equal("kept\nread-only\n", again.Out);
        var info = D.Vessel("volume", "inspect", "vt-etc");
        Ok(info);
        Assert.Contains("\"driver\": \"local\"", info.Out);
        Assert.Contains(Path.Combine(D.Root, "volumes", "vt-etc", "_data"), info.Out);
        Ok(D.Vessel("volume", "rm", "vt-etc"));
        Assert.False(Directory.Exists(Path.Combine(D.Root, "volumes", "vt-etc")));
        var gone = D.Vessel("volume", "inspect", "vt-etc");
        Assert.Equal(125, gone.Code);
    }

    [Fact]
    public void BindMountsAndTmpfs()
    {
        string host = D.Tmp.Sub("bind-src");
        File.WriteAllText(Path.Combine(host, "in"), "from the host\n");
        var r = D.Vessel("run", "--rm", "-v", host + ":/h", "--mount", $"type=bind,source={host},target=/ro,readonly",
            "--tmpfs", "/scratch:size=1m", "--mount", "type=tmpfs,target=/t2,tmpfs-mode=1770", Image,
            "sh", "-c", "cat /h/in; echo back > /h/out; touch /ro/x 2>/dev/null || echo ro; grep -E ' /(scratch|t2) ' /proc/mounts | cut -d' ' -f2-4");
        Ok(r);
        string[] lines = r.OutLines;
        Assert.Equal("from the host", lines[0]);
        Assert.Equal("ro", lines[1]);
        Assert.Contains(lines, l => l.StartsWith("/scratch tmpfs rw,nosuid,nodev,noexec", StringComparison.Ordinal) && l.Contains("size=1024k"));
        Assert.Contains(lines, l => l.StartsWith("/t2 tmpfs", StringComparison.Ordinal) && l.Contains("mode=1770"));
        Assert.Equal("back\n", File.ReadAllText(Path.Combine(host, "out")));
        var missing = D.Vessel("run", "--rm", "--mount", "type=bind,source=/nonexistent-vessel-src,target=/x", Image, "true");
        Assert.True(missing.Code == 125 && missing.Err.Contains("bind source path does not exist"), missing.ToString());
        var bad = D.Vessel("run", "--rm", "-v", "/x:rw", Image, "true");
        Assert.True(bad.Code == 125 && bad.Err.StartsWith("vessel: invalid volume specification", StringComparison.Ordinal), bad.ToString());
    }

    [Fact]
    public void AnonymousVolumesListFilterRmAndPrune()
    {
        Ok(D.Vessel("volume", "create", "--label", "team=blue", "vt-named"));
        var created = D.Vessel("create", "--name", "vol-anon", "-v", "/anon", "-v", "vt-used:/used", Image, "true");
        Ok(created);
        var json = D.Vessel("volume", "ls", "--format", "json");
        Ok(json);
        var all = json.OutLines.Select(l => JsonSerializer.Deserialize(l, VolumeJson.Default.VolumeInfo)!).ToList();
        var anon = all.Single(v => v.UsedBy.Contains(created.Out.Trim()) && v.Anonymous);
        Assert.Matches("^[0-9a-f]{64}$", anon.Name);
        Assert.Contains("vt-named", D.Vessel("volume", "ls", "-q", "--filter", "dangling=true").OutLines);
        Assert.DoesNotContain("vt-used", D.Vessel("volume", "ls", "-q", "--filter", "dangling=true").OutLines);
        Assert.Equal(["vt-named"], D.Vessel("volume", "ls", "-q", "--filter", "label=team=blue").OutLines);

        Ok(D.Vessel("rm", "-v", "vol-anon"));
        var after = D.Vessel("volume", "ls", "-q").OutLines;
        Assert.DoesNotContain(anon.Name, after);
        Assert.Contains("vt-used", after); // named volumes stay

        // A foreground --rm is removed at the end of its attach, and takes its anonymous volumes with it.
        var before = D.Vessel("volume", "ls", "-q").OutLines;
        Ok(D.Vessel("run", "--rm", "-v", "/anon", Image, "true"));
        Assert.Equal(before, D.Vessel("volume", "ls", "-q").OutLines);

        Ok(D.Vessel("volume", "create")); // anonymous, unused: prune takes it, not the named ones
        var prune = D.Vessel("volume", "prune", "-f");
        Ok(prune);
        Assert.Contains("Deleted Volumes:", prune.Out);
        Assert.Contains("vt-named", D.Vessel("volume", "ls", "-q").OutLines);
        var pruneAll = D.Vessel("volume", "prune", "-a", "-f", "--filter", "label=team=blue");
        Ok(pruneAll);
        Assert.Contains("vt-named", pruneAll.Out);
        Ok(D.Vessel("volume", "rm", "vt-used"));
        Assert.Equal(125, D.Vessel("volume", "rm", "vt-nope").Code);
        Ok(D.Vessel("volume", "rm", "-f", "vt-nope"));
    }
}
