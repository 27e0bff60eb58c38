using System.Text.Json;
using Vessel.Cli.Tests;

namespace Vessel.DockerApi.Tests;

[CollectionDefinition("docker")]
public sealed class DockerCollection : ICollectionFixture<DockerFixture>;

/// <summary>The real docker client (20.10, API 1.41) against vesseld's Docker API socket.</summary>
[Collection("docker")]
public sealed class DockerCliTests(DockerFixture f)
{
    private const string Image = DockerFixture.Image;

    private static Binaries.Result Ok(Binaries.Result r)
    {
        Assert.True(r.Code == 0, r.ToString());
        return r;
    }

    [Fact]
    public void VersionInfoAndPing()
    {
        Assert.Equal("1.41", Ok(f.Docker("version", "--format", "{{.Server.APIVersion}}")).Out.Trim());
        Assert.Equal("1.24", Ok(f.Docker("version", "--format", "{{.Server.MinAPIVersion}}")).Out.Trim());
        var info = Ok(f.Docker("info", "--format", "{{json .}}"));
        using var doc = JsonDocument.Parse(info.Out);
        Assert.Equal("overlay2", doc.RootElement.GetProperty("Driver").GetString());
        Assert.True(doc.RootElement.GetProperty("Images").GetInt32() >= 1);

        var ping = f.Raw("HEAD", "/_ping");
        Assert.Equal(200, ping.Status);
        Assert.Contains("API-Version: 1.41", ping.Head);
        Assert.Equal("OK", f.Raw("GET", "/v1.41/_ping").Body);
        Assert.Equal(200, f.Raw("GET", "/v1.30/version").Status);
    }

    [Fact]
    public void ErrorsHaveDockersShape()
    {
        var tooNew = f.Raw("GET", "/v1.99/version");
        Assert.Equal(400, tooNew.Status);
        Assert.Contains("\"message\":\"client version 1.99 is too new. Maximum supported API version is 1.41\"", tooNew.Body);
        var missing = f.Raw("GET", "/v1.41/containers/no-such-thing/json");
        Assert.Equal(404, missing.Status);
        Assert.Contains("\"message\":\"no such container: no-such-thing\"", missing.Body);
        Assert.Equal(404, f.Raw("GET", "/v1.41/nothing/here").Status);
        var unsupported = f.Raw("POST", "/v1.41/containers/create", """{"Image":"bb:1","HostConfig":{"Devices":[{"PathOnHost":"/dev/fuse"}]}}""");
        Assert.Equal(501, unsupported.Status);
        Assert.Contains("HostConfig.Devices is not supported by Vessel", unsupported.Body);

        var plugins = f.Docker("plugin", "ls");
        Assert.NotEqual(0, plugins.Code);
        Assert.Contains("plugins is not supported by Vessel", plugins.Err);
    }

    [Fact]
    public void RunRemovesItselfAndExitsWithTheContainersStatus()
    {
        var r = Ok(f.Docker("run", "--rm", Image, "echo", "hello from docker run"));
        Assert.Equal("hello from docker run\n", r.Out);
        var failed = f.Docker("run", "--rm", "--name", "fails", Image, "sh", "-c", "echo out; echo err >&2; exit 3");
        Assert.Equal(3, failed.Code);
        Assert.Equal("out\n", failed.Out);
        Assert.Equal("err\n", failed.Err);
        Assert.Equal(127, f.Docker("run", "--rm", Image, "no-such-command").Code);
        Assert.DoesNotContain("fails", Ok(f.Docker("ps", "-a", "--format", "{{.Names}}")).Out);
        // A quick container's output is not lost to the --rm removal (the attach holds it until it has read all).
        for (int i = 0; i < 5; i++) Assert.Equal($"{i}\n", Ok(f.Docker("run", "--rm", Image, "echo", $"{i}")).Out);
    }

    [Fact]
    public async Task DetachedContainerLogsPsInspectExecStopWaitRm()
    {
        string id = Ok(f.Docker("run", "-d", "--name", "ticker", "-e", "GREETING=hi there", "-l", "role=test", Image,
            "sh", "-c", "echo $GREETING; echo to-stderr >&2; while true; do echo tick; sleep 0.1; done")).Out.Trim();
        try
        {
            Assert.Equal(64, id.Length);
            Assert.Contains("ticker", Ok(f.Docker("ps", "--filter", "label=role=test", "--format", "{{.Names}} {{.Status}}")).Out);
            Assert.Equal("running true", Ok(f.Docker("inspect", "-f", "{{.State.Status}} {{.State.Running}}", "ticker")).Out.Trim());
            Assert.Contains("GREETING=hi there", Ok(f.Docker("inspect", "-f", "{{json .Config.Env}}", "ticker")).Out);
            Assert.Equal("null sh -c", Ok(f.Docker("inspect", "-f", "{{json .Config.Entrypoint}} {{index .Config.Cmd 0}} {{index .Config.Cmd 1}}", "ticker")).Out.Trim());
            // The image's CMD (nothing given at create) is Config.Cmd whole, as docker-compose ps shows it.
            Ok(f.Docker("create", "--name", "ticker-image-cmd", Image));
            Assert.Equal("null [\"sh\"]", Ok(f.Docker("inspect", "-f", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", "ticker-image-cmd")).Out.Trim());
            Ok(f.Docker("rm", "ticker-image-cmd"));
            Ok(f.Docker("create", "--name", "ticker-entrypoint", "--entrypoint", "sleep", Image, "5"));
            Assert.Equal("[\"sleep\"] [\"5\"]", Ok(f.Docker("inspect", "-f", "{{json .Config.Entrypoint}} {{json .Config.Cmd}}", "ticker-entrypoint")).Out.Trim());
            Ok(f.Docker("rm", "ticker-entrypoint"));

            var exec = f.Docker("exec", "ticker", "sh", "-c", "echo $GREETING from exec; echo exec-err >&2; exit 4");
            Assert.Equal(4, exec.Code);
            Assert.Equal("hi there from exec\n", exec.Out);
            Assert.Equal("exec-err\n", exec.Err);

            // logs -f follows until the container stops; stdout and stderr stay apart (multiplexed frames).
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!Ok(f.Docker("logs", "ticker")).Out.Contains("tick") && DateTime.UtcNow < deadline) Thread.Sleep(50);
            var follow = Task.Run(() => f.Docker("logs", "-f", "ticker"));
            var logs = Ok(f.Docker("logs", "--tail", "2", "-t", "ticker"));
            Assert.Equal(2, logs.OutLines.Length + logs.ErrLines.Length);
            Ok(f.Docker("stop", "-t", "1", "ticker"));
            var followed = await follow;
            Assert.Equal(0, followed.Code);
            Assert.StartsWith("hi there\ntick\n", followed.Out);
            Assert.Equal("to-stderr\n", followed.Err);

            Assert.Equal("137", Ok(f.Docker("wait", "ticker")).Out.Trim()); // sh as pid 1 ignores SIGTERM: killed after 1 s
            Assert.Contains("Exited (137)", Ok(f.Docker("ps", "-a", "--filter", "name=ticker", "--format", "{{.Status}}")).Out);
            Assert.Empty(Ok(f.Docker("ps", "-q", "--filter", "name=ticker")).Out.Trim());
        }
        finally { f.Docker("rm", "-f", "ticker"); }
        Assert.DoesNotContain("ticker", Ok(f.Docker("ps", "-a")).Out);
    }

    [Fact]
    public void CreateStartAttachKillRestartAndWait()
    {
        Ok(f.Docker("create", "--name", "later", Image, "sh", "-c", "echo started; sleep 30"));
        try
        {
            Assert.Equal("created", Ok(f.Docker("inspect", "-f", "{{.State.Status}}", "later")).Out.Trim());
            var started = Ok(f.Docker("start", "later"));
            Assert.Equal("later\n", started.Out);
            Ok(f.Docker("kill", "later"));
            Assert.Equal("137", Ok(f.Docker("wait", "later")).Out.Trim());
            Ok(f.Docker("restart", "-t", "0", "later"));
            Assert.Equal("running", Ok(f.Docker("inspect", "-f", "{{.State.Status}}", "later")).Out.Trim());
            Ok(f.Docker("stop", "-t", "0", "later"));
            Assert.Equal("137", Ok(f.Docker("wait", "later")).Out.Trim());
            Ok(f.Docker("create", "--name", "once", Image, "echo", "once"));
            Assert.Equal("once\n", Ok(f.Docker("start", "-a", "once")).Out);
            Assert.Equal("once\n", Ok(f.Docker("start", "-a", "once")).Out); // a second run: only its own output
        }
        finally { f.Docker("rm", "-f", "later", "once"); }
    }

    [Fact]
    public void EventsInDockersShape()
    {
        string since = DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeSeconds().ToString();
        Ok(f.Docker("run", "--rm", "--name", "eventful", Image, "true"));
        string until = DateTimeOffset.UtcNow.AddSeconds(1).ToUnixTimeSeconds().ToString();
        var r = Ok(f.Docker("events", "--since", since, "--until", until, "--filter", "container=eventful", "--format", "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}"));
        Assert.Equal(["container create eventful", "container start eventful", "container die eventful", "container destroy eventful"], r.OutLines);
    }

    [Fact]
    public void ImagesTagHistorySaveLoadRmi()
    {
        Assert.Contains("bb           1", Ok(f.Docker("images")).Out);
        Ok(f.Docker("tag", Image, "bb:copy"));
        Assert.Contains("bb:copy", Ok(f.Docker("image", "inspect", "-f", "{{json .RepoTags}}", "bb:copy")).Out);
        Assert.Contains("vessel import", Ok(f.Docker("history", "--no-trunc", "bb:copy")).Out);
        string tar = Path.Combine(f.D.Tmp.Path, "saved.tar");
        Ok(f.Docker("save", "-o", tar, "bb:copy"));
        Assert.Contains("Untagged: bb:copy", Ok(f.Docker("rmi", "bb:copy")).Out);
        Assert.Equal("Loaded image: bb:copy\n", Ok(f.Docker("load", "-i", tar)).Out);
        Ok(f.Docker("rmi", "bb:copy"));
        Assert.DoesNotContain("copy", Ok(f.Docker("images", "--format", "{{.Repository}}:{{.Tag}}")).Out);
        Assert.Contains("Images", Ok(f.Docker("system", "df")).Out);
    }
}
