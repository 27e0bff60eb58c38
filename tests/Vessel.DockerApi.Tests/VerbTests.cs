using Vessel.Cli.Tests;

namespace Vessel.DockerApi.Tests;

/// <summary>The docker CLI's verbs that map onto the engine's container verbs, volumes and builds.</summary>
[Collection("docker")]
public sealed class VerbTests(DockerFixture f)
{
    private const string Image = DockerFixture.Image;

    private static Binaries.Result Ok(Binaries.Result r)
    {
        Assert.True(r.Code == 0, r.ToString());
        return r;
    }

    [Fact]
    public void CpTopDiffRenamePauseStatsCommit()
    {
        Ok(f.Docker("run", "-d", "--name", "verbs", Image, "sleep", "60"));
        try
        {
            string src = Path.Combine(f.D.Tmp.Path, "in.txt");
            File.WriteAllText(src, "copied in\n");
            Ok(f.Docker("cp", src, "verbs:/tmp/in.txt"));
            Assert.Equal("copied in\n", Ok(f.Docker("exec", "verbs", "cat", "/tmp/in.txt")).Out);
            string back = Path.Combine(f.D.Tmp.Path, "back.txt");
            Ok(f.Docker("cp", "verbs:/tmp/in.txt", back));
            Assert.Equal("copied in\n", File.ReadAllText(back));
            Assert.NotEqual(0, f.Docker("cp", "verbs:/no/such/file", back).Code);

            Assert.Contains("sleep 60", Ok(f.Docker("top", "verbs")).Out);
            Assert.Contains("A /tmp/in.txt", Ok(f.Docker("diff", "verbs")).Out);
            Assert.Contains("verbs", Ok(f.Docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", "verbs")).Out);
            Ok(f.Docker("pause", "verbs"));
            Assert.Equal("paused", Ok(f.Docker("inspect", "-f", "{{.State.Status}}", "verbs")).Out.Trim());
            Ok(f.Docker("unpause", "verbs"));
            Ok(f.Docker("rename", "verbs", "verbs2"));
            Ok(f.Docker("update", "--memory", "64m", "verbs2"));
            Ok(f.Docker("commit", "verbs2", "bb:committed"));
            Assert.Equal("copied in\n", Ok(f.Docker("run", "--rm", "bb:committed", "cat", "/tmp/in.txt")).Out);
            Ok(f.Docker("rmi", "bb:committed"));
        }
        finally { f.Docker("rm", "-f", "verbs", "verbs2"); }
    }

    [Fact]
    public void VolumesAndBinds()
    {
        Ok(f.Docker("volume", "create", "--label", "by=test", "dv"));
        try
        {
            Assert.Contains("dv", Ok(f.Docker("volume", "ls", "--filter", "label=by=test", "--format", "{{.Name}}")).Out);
            Ok(f.Docker("run", "--rm", "-v", "dv:/data", Image, "sh", "-c", "echo kept > /data/f"));
            Assert.Equal("kept\n", Ok(f.Docker("run", "--rm", "--mount", "type=volume,source=dv,target=/d,readonly", Image, "cat", "/d/f")).Out);
            string host = f.D.Tmp.Sub("bind");
            Ok(f.Docker("run", "--rm", "-v", $"{host}:/h", "--tmpfs", "/scratch", Image, "sh", "-c", "echo via-bind > /h/out; touch /scratch/x"));
            Assert.Equal("via-bind\n", File.ReadAllText(Path.Combine(host, "out")));
            Ok(f.Docker("create", "--name", "mounted", "-v", "dv:/data", Image));
            Assert.Contains("\"Type\":\"volume\"", Ok(f.Docker("inspect", "-f", "{{json .Mounts}}", "mounted")).Out);
            Ok(f.Docker("rm", "mounted"));
        }
        finally { f.Docker("volume", "rm", "-f", "dv"); }
        Assert.DoesNotContain("dv", Ok(f.Docker("volume", "ls", "-q")).Out);
    }

    [Fact]
    public void Build()
    {
        string ctx = f.D.Tmp.Sub("build-context");
        File.WriteAllText(Path.Combine(ctx, "Dockerfile"), $"FROM {Image}\nCOPY hello.txt /hello.txt\nRUN echo built-by-run > /run.txt\nCMD [\"cat\", \"/hello.txt\", \"/run.txt\"]\n");
        File.WriteAllText(Path.Combine(ctx, "hello.txt"), "hello from the context\n");
        var build = Ok(f.Docker("build", "-t", "bb:built", ctx));
        Assert.Contains("Successfully built", build.Out);
        Assert.Contains("Successfully tagged bb:built", build.Out);
        Assert.Equal("hello from the context\nbuilt-by-run\n", Ok(f.Docker("run", "--rm", "bb:built")).Out);
        var failing = f.Docker("build", "-f", "-", ctx);
        Assert.NotEqual(0, failing.Code);
        Ok(f.Docker("rmi", "bb:built"));
    }

    [Fact]
    public void BuildArgsTargetHistoryAndInspect()
    {
        string ctx = f.D.Tmp.Sub("build-target");
        File.WriteAllText(Path.Combine(ctx, "Containerfile"), $$"""
            ARG BASE={{Image}}
            FROM ${BASE} AS first
            ARG WHO=nobody
            RUN echo "made for $WHO" > /made
            ENV STAGE=first
            WORKDIR /work
            EXPOSE 9090/udp
            LABEL stage=first
            HEALTHCHECK --interval=7s CMD true
            STOPSIGNAL SIGUSR1
            VOLUME /cache
            USER nobody
            ENTRYPOINT ["cat"]
            CMD ["/made"]
            FROM first AS second
            RUN false
            """);
        var build = Ok(f.Docker("build", "-f", Path.Combine(ctx, "Containerfile"), "-t", "bb:first", "--target", "first", "--build-arg", "WHO=docker", ctx));
        Assert.Contains("Successfully tagged bb:first", build.Out);
        Assert.Equal("made for docker\n", Ok(f.Docker("run", "--rm", "bb:first")).Out);
        string Field(string format) => Ok(f.Docker("inspect", "-f", format, "bb:first")).Out.Trim();
        Assert.Equal("[cat] [/made] /work nobody SIGUSR1", Field("{{.Config.Entrypoint}} {{.Config.Cmd}} {{.Config.WorkingDir}} {{.Config.User}} {{.Config.StopSignal}}"));
        Assert.Contains("STAGE=first", Field("{{json .Config.Env}}"));
        Assert.Equal("{\"9090/udp\":{}}", Field("{{json .Config.ExposedPorts}}"));
        Assert.Equal("{\"/cache\":{}}", Field("{{json .Config.Volumes}}"));
        Assert.Equal("first", Field("{{index .Config.Labels \"stage\"}}"));
        Assert.Equal("7s", Field("{{.Config.Healthcheck.Interval}}"));
        var history = Ok(f.Docker("history", "--no-trunc", "--format", "{{.CreatedBy}}|{{.Size}}", "bb:first")).OutLines;
        Assert.Contains(history, l => l.StartsWith("RUN |1 WHO=docker /bin/sh -c echo \"made for $WHO\" > /made|", StringComparison.Ordinal) && !l.EndsWith("|0B", StringComparison.Ordinal));
        Assert.Contains(history, l => l.StartsWith("WORKDIR /work|", StringComparison.Ordinal) && !l.EndsWith("|0B", StringComparison.Ordinal)); // made the directory
        Assert.Contains("ARG WHO=nobody|0B", history); // the declaration, not the value given
        Ok(f.Docker("rmi", "bb:first"));
    }
}
