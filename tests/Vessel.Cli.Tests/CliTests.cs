using System.Net.Sockets;
using System.Text.Json;
using Vessel.Api;
using Vessel.Tests;

using static Vessel.Cli.Tests.Expect;

namespace Vessel.Cli.Tests;

public sealed class CliTests(DaemonFixture d) : IClassFixture<DaemonFixture>
{
    [Fact]
    public void VersionShowsClientAndServer()
    {
        var r = d.Vessel("version");
        Ok(r);
        Assert.Contains("Client:", r.Out);
        Assert.Contains("Server:", r.Out);
        Assert.Contains($"Version:     {ApiInfo.Version}", r.Out);

        var j = d.Vessel("version", "--format", "json");
        Ok(j);
        using JsonDocument doc = JsonDocument.Parse(j.Out);
        Assert.Equal(ApiInfo.Version, doc.RootElement.GetProperty("server").GetProperty("version").GetString());
        Assert.Equal(ApiInfo.ApiVersion, doc.RootElement.GetProperty("client").GetProperty("apiVersion").GetString());
    }

    [Fact]
    public void SystemInfoAsJson()
    {
        var r = d.Vessel("system", "info", "--format", "json");
        Ok(r);
        SystemInfoResponse info = JsonSerializer.Deserialize(r.Out, ApiJson.Default.SystemInfoResponse)!;
        Assert.Equal(d.Process.Id, info.DaemonPid);
        Assert.Equal(d.Socket, info.Socket);
        Assert.Equal(d.Root, info.StateRoot);
        Assert.Equal(d.RunRoot, info.RunRoot);
        Assert.Equal("overlay", info.Storage);
        Assert.Equal("vessel-runc", info.Runtime.Name);
        Ok(d.Vessel("info"));
    }

    [Fact]
    public void ImportTagRemoveAndTheEventsThatTellIt()
    {
        var empty = d.Vessel("images", "--format", "json");
        Ok(empty);
        Assert.Equal("", empty.Out);
        var table = d.Vessel("images");
        Ok(table);
        Assert.Equal(["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"], Assert.Single(table.OutLines).Split(' ', StringSplitOptions.RemoveEmptyEntries));

        using var tmp = new TempDir();
        TestLayout.Written layout = TestLayout.Write(tmp.Sub("layout"), "1.0");
        var imp = d.Vessel("image", "import-layout", layout.Dir, "example.com/app");
        Ok(imp);
        // Not a terminal: one plain line per blob event, then the result.
        Assert.Contains($"{layout.LayerDigest[7..19]}: Copying", imp.Out);
        Assert.Contains($"{layout.LayerDigest[7..19]}: Done", imp.Out);
        Assert.Equal("Loaded image: example.com/app:1.0", imp.OutLines[^1]);

        var list = d.Vessel("images");
        Ok(list);
        string[] row = list.OutLines[1].Split("   ", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal("example.com/app", row[0]);
        Assert.Equal("1.0", row[1]);
        Assert.Equal(layout.ConfigDigest[7..19], row[2]);
        Assert.EndsWith("ago", row[3]);
        Assert.EndsWith("kB", row[4]);

        Ok(d.Vessel("tag", "example.com/app:1.0", "mine:2"));
        var json = d.Vessel("images", "--format", "json");
        Ok(json);
        var names = json.OutLines.Select(l => JsonSerializer.Deserialize(l, ApiJson.Default.ImageSummary)!.Name).Order(StringComparer.Ordinal);
        Assert.Equal(["example.com/app:1.0", "mine:2"], names);
        var q = d.Vessel("images", "-q");
        Ok(q);
        Assert.Equal([layout.ConfigDigest[7..19], layout.ConfigDigest[7..19]], q.OutLines);

        var inspect = d.Vessel("image", "inspect", "mine:2");
        Ok(inspect);
        List<ImageInspect> inspected = JsonSerializer.Deserialize(inspect.Out, ApiJson.Default.ListImageInspect)!;
        Assert.Equal(layout.ConfigDigest, Assert.Single(inspected).Id);
        Assert.Equal(["example.com/app:1.0", "mine:2"], inspected[0].RepoTags.Order(StringComparer.Ordinal));

        var rm1 = d.Vessel("rmi", "mine:2");
        Ok(rm1);
        Assert.Equal(["Untagged: mine:2"], rm1.OutLines);
        var rm2 = d.Vessel("image", "rm", "example.com/app:1.0");
        Ok(rm2);
        Assert.Equal(["Untagged: example.com/app:1.0", $"Deleted: {layout.ManifestDigest}"], rm2.OutLines);
        Assert.Equal("", d.Vessel("images", "--format", "json").Out);

        // Other tests share this daemon: keep to this image's events (id = its manifest digest).
        var ev = d.Vessel("events", "--since", "0", "--until", "now", "--filter", "type=image", "--filter", "id=" + layout.ManifestDigest, "--format", "json");
        Ok(ev);
        var events = ev.OutLines.Select(l => JsonSerializer.Deserialize(l, ApiJson.Default.EventMessage)!).ToList();
        Assert.Equal([("import", "example.com/app:1.0"), ("tag", "mine:2"), ("untag", "mine:2"), ("untag", "example.com/app:1.0"), ("delete", "example.com/app:1.0")],
            events.Select(e => (e.Action, e.Name!)));
        Assert.All(events, e => Assert.Equal(layout.ManifestDigest, e.Id));
        var tags = d.Vessel("events", "--since", "0", "--until", "now", "--filter", "action=tag", "--filter", "name=mine:2");
        Ok(tags);
        Assert.Contains($"image tag {layout.ManifestDigest} (name=mine:2)", Assert.Single(tags.OutLines));
    }

    [Fact]
    public void OperationsCanBeFollowedListedAndWaitedFor()
    {
        using var tmp = new TempDir();
        TestLayout.Written layout = TestLayout.Write(tmp.Sub("layout"), null, "operations\n");
        var start = d.Vessel("image", "import-layout", "--detach", layout.Dir, "ops/test:1");
        Ok(start);
        string id = start.Out.Trim();
        var wait = d.Vessel("operation", "wait", id);
        Ok(wait);
        Assert.Equal($"{id}: succeeded", wait.Out.Trim());
        var ls = d.Vessel("operation", "ls", "--format", "json");
        Ok(ls);
        OperationInfo op = ls.OutLines.Select(l => JsonSerializer.Deserialize(l, ApiJson.Default.OperationInfo)!).Single(o => o.Id == id);
        Assert.Equal(("image.import-layout", "ops/test:1", OperationStatus.Succeeded), (op.Kind, op.Target, op.Status));
        var show = d.Vessel("operation", "show", id);
        Ok(show);
        Assert.Equal(id, JsonSerializer.Deserialize(show.Out, ApiJson.Default.OperationInfo)!.Id);
        FailsWithOneLine(d.Vessel("operation", "cancel", id), "already finished");
        FailsWithOneLine(d.Vessel("operation", "wait", "0000"), "no such operation");
        Ok(d.Vessel("rmi", "ops/test:1"));

        // A failing import: exit 125 and the reason in one line.
        FailsWithOneLine(d.Vessel("image", "import-layout", "-q", tmp.Sub("empty"), "x:1"), "oci-layout is missing");
    }

    [Fact]
    public void UnknownImagesAndBadUsageFailWithOneLineAnd125()
    {
        FailsWithOneLine(d.Vessel("image", "inspect", "nope:1"), "no such image: nope:1");
        FailsWithOneLine(d.Vessel("rmi", "nope:1"), "no such image: nope:1");
        FailsWithOneLine(d.Vessel("tag", "nope:1", "other:1"), "no such image: nope:1");

        var bad = d.Vessel("images", "--bogus");
        Assert.Equal(125, bad.Code);
        Assert.Equal(["vessel: unknown flag: --bogus", "See 'vessel images --help'."], bad.ErrLines);
        var cmd = d.Vessel("frobnicate");
        Assert.Equal(125, cmd.Code);
        Assert.Contains("'frobnicate' is not a vessel command", cmd.Err);
        FailsWithOneLine(d.Vessel("images", "--format", "yaml"), "unsupported --format yaml");

        var help = Binaries.Run(Binaries.Vessel, ["--help"]);
        Ok(help);
        Assert.Contains("Common Commands:", help.Out);
        Assert.Contains("Management Commands:", help.Out);
    }

    [Fact]
    public void AnExplicitHostThatNobodyServesIsNamedInOneLine()
    {
        string socket = Path.Combine(d.Tmp.Path, "nobody.sock");
        var r = Binaries.Run(Binaries.Vessel, ["-H", "unix://" + socket, "images"]);
        FailsWithOneLine(r, $"cannot connect to the Vessel daemon at unix://{socket}");
        // VESSEL_HOST is honoured like DOCKER_HOST (and never auto-starts a daemon).
        var env = Binaries.Run(Binaries.Vessel, ["images"], new Dictionary<string, string?> { ["VESSEL_HOST"] = "unix://" + socket });
        FailsWithOneLine(env, socket);
        Ok(Binaries.Run(Binaries.Vessel, ["images"], new Dictionary<string, string?> { ["VESSEL_HOST"] = d.Host }));
    }

    [Fact]
    public async Task TheApiAnswersUnknownEndpointsWithJson404()
    {
        using var http = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, ct) =>
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(d.Socket), ct);
                return new NetworkStream(s, ownsSocket: true);
            },
        }) { BaseAddress = new Uri("http://vessel/"), Timeout = TimeSpan.FromSeconds(30) };
        foreach (var (method, path, status, code) in new[]
        {
            ("GET", "v1/nothing/here", 404, ErrorCodes.NotFound),
            ("GET", "v2/version", 404, ErrorCodes.NotFound),
            ("PUT", "v1/version", 405, ErrorCodes.MethodNotAllowed),
            ("GET", "v1/images/no/such:image", 404, ErrorCodes.NotFound),
            ("GET", "v1/operations/nope", 404, ErrorCodes.NotFound),
            ("GET", "v1/events?filter=colour%3Dred", 400, ErrorCodes.Invalid),
            ("POST", "v1/images/import-layout", 400, ErrorCodes.Invalid),
        })
        {
            using var resp = await http.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
            Assert.Equal(status, (int)resp.StatusCode);
            Assert.Equal("application/json", resp.Content.Headers.ContentType?.MediaType);
            ErrorResponse err = JsonSerializer.Deserialize(await resp.Content.ReadAsStringAsync(), ApiJson.Default.ErrorResponse)!;
            Assert.Equal(code, err.Code);
            Assert.False(string.IsNullOrWhiteSpace(err.Message));
        }
        using var ok = await http.GetAsync("v1/version");
        VersionResponse v = JsonSerializer.Deserialize(await ok.Content.ReadAsStringAsync(), ApiJson.Default.VersionResponse)!;
        Assert.Equal(ApiInfo.ApiVersion, v.ApiVersion);
    }

    [Fact]
    public void ASecondDaemonOnTheSameSocketRefusesToStart()
    {
        var r = Binaries.Run(Binaries.Vesseld, ["--socket", d.Socket, "--root", d.Root, "--run-root", Path.Combine(d.Tmp.Path, "run2")]);
        Assert.NotEqual(0, r.Code);
        Assert.Contains("already serving", r.Err);
        Assert.True(Binaries.Answers(d.Socket));
    }
}
