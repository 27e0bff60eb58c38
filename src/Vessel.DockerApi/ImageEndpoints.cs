using Vessel.Images.Content;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Images;
using Vessel.Engine.Operations;

namespace Vessel.DockerApi;

/// <summary>/images/…: list, inspect, history, pull (/images/create), import, push, tag, remove, save (get), load, prune;
/// /auth (docker login). Names as docker shows them (<see cref="Names.Familiar"/>); the engine resolves what users type.</summary>
internal static class ImageEndpoints
{
    public static void Map(WebApplication app, DockerContext d)
    {
        VesselEngine engine = d.Engine;
        app.MapGet("/images/json", ctx =>
        {
            Filters f = Filters.Parse(ctx, "dangling", "reference", "label");
            var list = List(engine, Http.Bool(ctx, "all"), f).Select(x => (JsonNode?)x.Node).ToArray();
            return Http.Json(ctx, 200, new JsonArray(list));
        });
        app.MapPost("/images/create", ctx => Create(ctx, d));
        app.MapGet("/images/get", ctx => Save(ctx, engine, ctx.Request.Query["names"].Where(n => !string.IsNullOrEmpty(n)).Select(n => n!).ToList()));
        app.MapPost("/images/load", async ctx =>
        {
            LoadResult r = await engine.Transfer.LoadAsync(ctx.Request.Body, ctx.RequestAborted);
            bool quiet = Http.Bool(ctx, "quiet");
            await Http.StartStream(ctx, "application/json");
            var text = new StringBuilder();
            foreach (string n in r.Images)
                text.Append(ImageTransfer.IsIdName(n) ? $"Loaded image ID: {n}\n" : $"Loaded image: {Names.Familiar(n)}\n");
            if (!quiet || text.Length > 0) await Http.Line(ctx, new JsonObject { ["stream"] = text.ToString() }, ctx.RequestAborted);
        });
        app.MapPost("/images/prune", ctx =>
        {
            Filters f = Filters.Parse(ctx, "dangling");
            bool all = f.Get("dangling").Any(v => v is "false" or "0");
            PruneResponse r = engine.Transfer.Prune(all);
            var deleted = new JsonArray(r.Untagged.Select(n => (JsonNode?)new JsonObject { ["Untagged"] = Names.Familiar(n) })
                .Concat(r.Deleted.Select(x => (JsonNode?)new JsonObject { ["Deleted"] = x })).ToArray());
            return Http.Json(ctx, 200, new JsonObject { ["ImagesDeleted"] = deleted, ["SpaceReclaimed"] = r.SpaceReclaimed });
        });
        app.MapPost("/auth", async ctx =>
        {
            JsonElement body = await Http.Body(ctx) ?? throw EngineException.Invalid("login needs a body {username, password, serveraddress}");
            string Get(string k) => body.TryGetProperty(k, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
            LoginResponse r = await engine.Transfer.LoginAsync(new LoginRequest(Get("serveraddress"), Get("username"), Get("password")), ctx.RequestAborted);
            await Http.Json(ctx, 200, new JsonObject { ["Status"] = r.Status, ["IdentityToken"] = "" });
        });

        // Names contain '/': one catch-all per method, the verb is the last segment.
        app.MapGet("/images/{**name}", ctx =>
        {
            string name = Http.Route(ctx, "name");
            if (Suffix(ref name, "/json")) return Http.Json(ctx, 200, Inspect(engine, name));
            if (Suffix(ref name, "/history")) return Http.Json(ctx, 200, History(engine, name));
            if (Suffix(ref name, "/get")) return Save(ctx, engine, [name]);
            throw EngineException.NotFound($"page not found: GET /images/{name}");
        });
        app.MapPost("/images/{**name}", ctx =>
        {
            string name = Http.Route(ctx, "name");
            if (Suffix(ref name, "/tag")) return Tag(ctx, engine, name);
            if (Suffix(ref name, "/push")) return Push(ctx, d, name);
            throw EngineException.NotFound($"page not found: POST /images/{name}");
        });
        app.MapDelete("/images/{**name}", ctx =>
        {
            string name = Http.Route(ctx, "name");
            ImageDeleteResponse r = engine.Transfer.Remove(name, Http.Bool(ctx, "force"));
            var list = r.Untagged.Select(n => (JsonNode?)new JsonObject { ["Untagged"] = Names.Familiar(n) })
                .Concat(r.Deleted.Select(x => (JsonNode?)new JsonObject { ["Deleted"] = x })).ToArray();
            return Http.Json(ctx, 200, new JsonArray(list));
        });
    }

    private static bool Suffix(ref string name, string suffix)
    {
        if (!name.EndsWith(suffix, StringComparison.Ordinal) || name.Length <= suffix.Length) return false;
        name = name[..^suffix.Length];
        return true;
    }

    // ---- list, inspect, history --------------------------------------------------------------------------

    /// <summary>One entry per image (names grouped by what they point at), docker's ImageSummary.</summary>
    public static List<(JsonObject Node, string Digest)> List(VesselEngine engine, bool all, Filters? f)
    {
        var result = new List<(JsonObject, string)>();
        foreach (var g in engine.Images.List().GroupBy(i => i.Digest))
        {
            var first = g.First();
            bool dangling = g.All(i => ImageTransfer.IsIdName(i.Name));
            var tags = g.Where(i => i.Tag is not null && !ImageTransfer.IsIdName(i.Name)).Select(i => Names.Familiar(i.Name)).ToList();
            var digests = g.Where(i => !ImageTransfer.IsIdName(i.Name)).Select(i => Names.Familiar(i.Repository) + "@" + i.Digest).Distinct().ToList();
            if (f is not null)
            {
                if (!f.Match("dangling", v => (v is "true" or "1") == dangling)) continue;
                if (!f.Match("reference", pattern => tags.Any(t => Glob(pattern, t) || Glob(pattern, ImageService.SplitName(t).Repository)))) continue;
                if (f.Has("label") && !f.MatchLabels(Labels(engine, first.Name))) continue;
            }
            var o = new JsonObject
            {
                ["Containers"] = -1,
                ["Created"] = first.Created?.ToUnixTimeSeconds() ?? 0,
                ["Id"] = first.Id,
                ["Labels"] = Http.Map(Labels(engine, first.Name)),
                ["ParentId"] = "",
                ["RepoDigests"] = Http.Array(dangling ? ["<none>@<none>"] : digests),
                ["RepoTags"] = Http.Array(tags.Count == 0 ? ["<none>:<none>"] : tags),
                ["SharedSize"] = -1,
                ["Size"] = first.Size,
                ["VirtualSize"] = first.Size,
            };
            result.Add((o, first.Digest));
        }
        return result;
    }

    private static Dictionary<string, string>? Labels(VesselEngine engine, string name)
    {
        try
        {
            ImageInspect i = engine.Images.Inspect(name);
            if (i.Config is { } c && c.TryGetProperty("Labels", out JsonElement l) && l.ValueKind == JsonValueKind.Object)
                return l.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ToString());
        }
        catch (EngineException) { }
        return null;
    }

    /// <summary>path.Match-style patterns (* ? [..]) as docker's reference filter uses them.</summary>
    private static bool Glob(string pattern, string value) =>
        Regex.IsMatch(value, "^" + Regex.Escape(pattern).Replace(@"\*", "[^/]*").Replace(@"\?", "[^/]") + "$");

    public static JsonObject Inspect(VesselEngine engine, string name)
    {
        ImageInspect i = engine.Images.Inspect(name);
        JsonNode? config = i.Config is { } c ? JsonNode.Parse(c.GetRawText()) : new JsonObject();
        var repoDigests = i.RepoDigests.Where(r => !r.StartsWith("sha256:", StringComparison.Ordinal)).Select(Names.Familiar).ToList();
        return new JsonObject
        {
            ["Id"] = i.Id,
            ["RepoTags"] = Http.Array(i.RepoTags.Where(t => !ImageTransfer.IsIdName(t)).Select(Names.Familiar)),
            ["RepoDigests"] = Http.Array(repoDigests),
            ["Parent"] = "", ["Comment"] = "",
            ["Created"] = Http.Time(i.Created),
            ["Container"] = "", ["ContainerConfig"] = new JsonObject(), ["DockerVersion"] = "", ["Author"] = "",
            ["Config"] = config,
            ["Architecture"] = i.Architecture ?? "", ["Variant"] = i.Variant, ["Os"] = i.Os ?? "",
            ["Size"] = i.Size, ["VirtualSize"] = i.Size,
            ["GraphDriver"] = new JsonObject { ["Data"] = new JsonObject(), ["Name"] = "overlay2" },
            ["RootFS"] = new JsonObject { ["Type"] = "layers", ["Layers"] = Http.Array(i.DiffIds) },
            ["Metadata"] = new JsonObject { ["LastTagTime"] = Http.ZeroTime },
        };
    }

    private static JsonArray History(VesselEngine engine, string name)
    {
        ImageInspect i = engine.Images.Inspect(name);
        var tags = i.RepoTags.Where(t => !ImageTransfer.IsIdName(t)).Select(Names.Familiar).ToList();
        var rows = engine.Transfer.History(name).Select((h, n) => (JsonNode?)new JsonObject
        {
            ["Id"] = h.Id ?? "<missing>",
            ["Created"] = h.Created?.ToUnixTimeSeconds() ?? 0,
            ["CreatedBy"] = h.CreatedBy ?? "",
            ["Tags"] = n == 0 && tags.Count > 0 ? Http.Array(tags) : null,
            ["Size"] = h.Size,
            ["Comment"] = h.Comment ?? "",
        }).ToArray();
        return new JsonArray(rows);
    }

    // ---- tag, save -----------------------------------------------------------------------------------------

    private static Task Tag(HttpContext ctx, VesselEngine engine, string source)
    {
        string repo = Http.Query(ctx, "repo") ?? throw EngineException.Invalid("repo is required");
        string? tag = Http.Query(ctx, "tag");
        engine.Images.Tag(source, string.IsNullOrEmpty(tag) ? repo : $"{repo}:{tag}");
        ctx.Response.StatusCode = 201;
        return Task.CompletedTask;
    }

    private static async Task Save(HttpContext ctx, VesselEngine engine, List<string> names)
    {
        IReadOnlyList<string> stored = engine.Transfer.SaveNames(names.SelectMany(n => n.Split(',', StringSplitOptions.RemoveEmptyEntries)).ToList());
        ctx.Response.StatusCode = 200;
        ctx.Response.ContentType = "application/x-tar";
        Http.NoBuffering(ctx);
        await using Stream body = ctx.Response.BodyWriter.AsStream();
        await Task.Run(() =>
        {
            using var sync = new SyncWriteStream(body, ctx.RequestAborted);
            engine.Transfer.Save(sync, stored, "docker-archive");
        }, ctx.RequestAborted);
    }

    // ---- pull, import, push: operations rendered as docker's JSON progress messages --------------------------

    private static async Task Create(HttpContext ctx, DockerContext d)
    {
        VesselEngine engine = d.Engine;
        string? fromImage = Http.Query(ctx, "fromImage"), fromSrc = Http.Query(ctx, "fromSrc");
        string? tag = Http.Query(ctx, "tag"), platform = Http.Query(ctx, "platform");
        if (!string.IsNullOrEmpty(fromSrc))
        {
            if (fromSrc != "-") throw DockerErrors.NotSupported($"importing from a URL ({fromSrc})");
            string? repo = Http.Query(ctx, "repo");
            string? target = string.IsNullOrEmpty(repo) ? null : string.IsNullOrEmpty(tag) ? repo : $"{repo}:{tag}";
            var changes = ctx.Request.Query["changes"].Where(c => !string.IsNullOrEmpty(c)).Select(c => c!).ToList();
            LoadResult r = await engine.Transfer.ImportAsync(ctx.Request.Body, target, changes, Http.Query(ctx, "message"), platform, ctx.RequestAborted);
            await Http.StartStream(ctx, "application/json");
            await Http.Line(ctx, new JsonObject { ["status"] = r.Ids.FirstOrDefault() ?? "" }, ctx.RequestAborted);
            return;
        }
        if (string.IsNullOrEmpty(fromImage)) throw EngineException.Invalid("fromImage or fromSrc is required");
        string name = fromImage;
        if (!string.IsNullOrEmpty(tag))
            name += tag.StartsWith("sha256:", StringComparison.Ordinal) ? "@" + tag : ":" + tag;
        Operation op = engine.Transfer.StartPull(engine.Operations, name, string.IsNullOrEmpty(platform) ? null : platform);
        (string repoPath, string shownTag) = SplitForStatus(op.Target);
        await Render(ctx, d, op, new JsonObject { ["status"] = $"Pulling from {repoPath}", ["id"] = shownTag }, PullStatus, result =>
        {
            var r = result.Deserialize(ApiJson.Default.PullResult)!;
            string shown = Names.Familiar(r.Name);
            return
            [
                new JsonObject { ["status"] = $"Digest: {r.Digest}" },
                new JsonObject { ["status"] = r.UpToDate ? $"Status: Image is up to date for {shown}" : $"Status: Downloaded newer image for {shown}" },
            ];
        });
    }

    private static async Task Push(HttpContext ctx, DockerContext d, string name)
    {
        VesselEngine engine = d.Engine;
        string? tag = Http.Query(ctx, "tag");
        if (!string.IsNullOrEmpty(tag)) name += ":" + tag;
        else if (ImageService.SplitName(name).Tag is null && !name.Contains('@'))
        {
            // docker push REPO pushes every tag of REPO; Vessel pushes them one operation at a time.
            var tags = engine.Images.List().Where(i => i.Tag is not null && (i.Repository == name || Names.Familiar(i.Repository) == name)).Select(i => i.Name).ToList();
            if (tags.Count > 1) throw DockerErrors.NotSupported($"pushing every tag of {name} at once ({tags.Count} tags); push one tag at a time");
            name = tags.FirstOrDefault() ?? name + ":latest";
        }
        Operation op = engine.Transfer.StartPush(engine.Operations, name);
        string repo = ImageService.SplitName(op.Target).Repository;
        await Render(ctx, d, op, new JsonObject { ["status"] = $"The push refers to repository [{Names.Familiar(repo)}]" }, PushStatus, result =>
        {
            var r = result.Deserialize(ApiJson.Default.PushResult)!;
            string t = ImageService.SplitName(r.Name).Tag ?? "latest";
            return
            [
                new JsonObject { ["status"] = $"{t}: digest: {r.Digest} size: {r.Size}" },
                new JsonObject { ["progressDetail"] = new JsonObject(), ["aux"] = new JsonObject { ["Tag"] = t, ["Digest"] = r.Digest, ["Size"] = r.Size } },
            ];
        });
    }

    /// <summary>"docker.io/library/busybox:latest" → ("library/busybox", "latest") for "Pulling from …".</summary>
    private static (string, string) SplitForStatus(string name)
    {
        (string repo, string? tag) = ImageService.SplitName(name);
        int at = name.IndexOf('@');
        string shown = tag ?? (at >= 0 ? name[(at + 1)..] : "latest");
        int slash = repo.IndexOf('/');
        string path = slash > 0 && (repo[..slash].Contains('.') || repo[..slash].Contains(':') || repo[..slash] == "localhost") ? repo[(slash + 1)..] : repo;
        return (path, shown);
    }

    private static string? PullStatus(string action, bool first) => action switch
    {
        "waiting" => first ? "Pulling fs layer" : "Waiting",
        "downloading" => "Downloading",
        "verifying" => "Verifying Checksum",
        "done" => "Download complete",
        "exists" => "Already exists",
        "extracting" => "Extracting",
        "complete" or "unpacked" => "Pull complete",
        _ => null,
    };

    private static string? PushStatus(string action, bool first) => action switch
    {
        "waiting" => first ? "Preparing" : "Waiting",
        "uploading" => "Pushing",
        "done" => "Pushed",
        "exists" => "Layer already exists",
        "mounted" => "Mounted from another repository",
        _ => null,
    };

    /// <summary>Streams an operation's progress as docker's JSON messages. Until the first message the status is
    /// still free: an operation that fails before reporting anything answers with its error status (dockerd's
    /// behaviour, which the CLI relies on: a 404 for a missing image), later failures become an error message.</summary>
    private static async Task Render(HttpContext ctx, DockerContext d, Operation op, JsonObject header,
        Func<string, bool, string?> status, Func<JsonElement, JsonObject[]> done)
    {
        using CancellationTokenSource cts = d.Linked(ctx);
        bool started = false;
        var seen = new HashSet<string>();
        var alreadyExists = new HashSet<string>();
        try
        {
            await foreach (ProgressEvent e in op.Progress(cts.Token))
            {
                if (e.Item is null || e.Message is null || !e.Message.Contains("layer", StringComparison.Ordinal)) continue; // configs and manifests are not shown
                string id = Names.Short(e.Item);
                bool first = seen.Add(id);
                if (e.Action == "exists") alreadyExists.Add(id);
                if (e.Action == "unpacked" && alreadyExists.Contains(id)) continue;
                string? s = status(e.Action, first);
                if (s is null) continue;
                if (!started) { await Http.StartStream(ctx, "application/json"); await Http.Line(ctx, header, cts.Token); started = true; }
                if (first && s is not ("Pulling fs layer" or "Preparing" or "Already exists" or "Layer already exists"))
                    await Http.Line(ctx, new JsonObject { ["status"] = op.Kind == "image.push" ? "Preparing" : "Pulling fs layer", ["progressDetail"] = new JsonObject(), ["id"] = id }, cts.Token);
                var detail = new JsonObject();
                if (e.Action is "downloading" or "uploading" or "extracting" && e.Total > 0) { detail["current"] = e.Current; detail["total"] = e.Total; }
                await Http.Line(ctx, new JsonObject { ["status"] = s, ["progressDetail"] = detail, ["id"] = id }, cts.Token);
            }
            await op.Completion.WaitAsync(cts.Token);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            // The client went away (docker pull ^C): dockerd cancels the pull then, so does Vessel.
            if (!op.IsFinished) { try { await d.Engine.Operations.CancelAsync(op.Id, TimeSpan.FromSeconds(10), CancellationToken.None); } catch (EngineException) { } }
            return;
        }
        OperationInfo info = op.Info();
        if (info.Status != OperationStatus.Succeeded || info.Result is null)
        {
            string message = info.Error?.Message ?? $"{op.Kind} {info.Status}";
            if (!started) throw new EngineException(info.Error?.Code ?? ErrorCodes.Internal, message);
            await Http.Line(ctx, new JsonObject { ["errorDetail"] = new JsonObject { ["message"] = message }, ["error"] = message }, cts.Token);
            return;
        }
        if (!started) { await Http.StartStream(ctx, "application/json"); await Http.Line(ctx, header, cts.Token); }
        foreach (JsonObject line in done(info.Result.Value)) await Http.Line(ctx, line, cts.Token);
    }
}
