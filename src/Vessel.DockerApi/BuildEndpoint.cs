using System.Globalization;
using System.Text.Json;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Build;
using Vessel.Engine.Operations;

namespace Vessel.DockerApi;

/// <summary>POST /build, the classic builder's wire format (the CLI uses it when /_ping says Builder-Version 1): a
/// context tar in, the engine's build as an operation, its steps and output out as docker's <c>{"stream": …}</c> lines.</summary>
internal static class BuildEndpoint
{
    public static void Map(WebApplication app, DockerContext d)
    {
        app.MapPost("/build", async ctx =>
        {
            IQueryCollection q = ctx.Request.Query;
            if (!string.IsNullOrEmpty(Http.Query(ctx, "remote"))) throw DockerErrors.NotSupported("building from a remote context (git or URL)");
            if (Http.Query(ctx, "platform") is { Length: > 0 } pf && pf != $"linux/{VesselEngine.Arch}") throw DockerErrors.NotSupported($"building for {pf}");
            string? dockerfile = Http.Query(ctx, "dockerfile") is { Length: > 0 } df ? df : null;
            var options = new BuildOptions
            {
                Tags = q["t"].Where(t => !string.IsNullOrEmpty(t)).Select(t => t!).ToList(),
                Dockerfile = dockerfile,
                // docker build -f - puts the Containerfile into the context as .dockerfile.<random>.
                DockerfileFromContextThenRemove = dockerfile?.StartsWith(".dockerfile.", StringComparison.Ordinal) == true,
                BuildArgs = JsonMap(Http.Query(ctx, "buildargs"), "buildargs"),
                Labels = JsonMap(Http.Query(ctx, "labels"), "labels").ToDictionary(kv => kv.Key, kv => kv.Value ?? ""),
                Target = Http.Query(ctx, "target") is { Length: > 0 } t ? t : null,
                NoCache = Http.Bool(ctx, "nocache"), Pull = Http.Bool(ctx, "pull"),
            };
            bool quiet = Http.Bool(ctx, "q");
            Operation op = await d.Engine.Builds.StartFromTarAsync(d.Engine.Operations, ctx.Request.Body, options, ctx.RequestAborted);
            using CancellationTokenSource cts = d.Linked(ctx);
            await Http.StartStream(ctx, "application/json");
            string? error = null;
            try
            {
                await foreach (ProgressEvent e in op.Progress(cts.Token))
                {
                    string? text = e.Action switch
                    {
                        "step" => $"Step {e.Item?.TrimStart('#')} : {e.Message}\n",
                        "log" => e.Message is null ? null : e.Message.EndsWith('\n') ? e.Message : e.Message + "\n",
                        "cached" => " ---> Using cache\n",
                        "warning" => $"[WARNING]: {e.Message}\n",
                        _ => null,
                    };
                    if (e.Action == "error") error = e.Message;
                    if (text is not null && !quiet) await Http.Line(ctx, new JsonObject { ["stream"] = text }, cts.Token);
                }
                await op.Completion.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                if (!op.IsFinished) await d.Engine.Operations.CancelAsync(op.Id, TimeSpan.FromSeconds(30), CancellationToken.None);
                return;
            }
            OperationInfo info = op.Info();
            if (info.Status != OperationStatus.Succeeded || info.Result is not { } result)
            {
                string m = info.Error?.Message ?? error ?? $"build {info.Status}";
                await Http.Line(ctx, new JsonObject { ["errorDetail"] = new JsonObject { ["message"] = m }, ["error"] = m }, cts.Token);
                return;
            }
            string id = result.TryGetProperty("id", out JsonElement idv) ? idv.GetString() ?? "" : "";
            await Http.Line(ctx, new JsonObject { ["aux"] = new JsonObject { ["ID"] = id } }, cts.Token);
            if (quiet) { await Http.Line(ctx, new JsonObject { ["stream"] = id + "\n" }, cts.Token); return; }
            await Http.Line(ctx, new JsonObject { ["stream"] = $"Successfully built {Names.Short(id)}\n" }, cts.Token);
            if (result.TryGetProperty("names", out JsonElement names) && names.ValueKind == JsonValueKind.Array)
                foreach (JsonElement n in names.EnumerateArray())
                    await Http.Line(ctx, new JsonObject { ["stream"] = $"Successfully tagged {Names.Familiar(n.GetString() ?? "")}\n" }, cts.Token);
        });
    }

    /// <summary>buildargs and labels: a JSON object of strings (a null value: an arg declared without one).</summary>
    private static Dictionary<string, string?> JsonMap(string? json, string what)
    {
        var d = new Dictionary<string, string?>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(json)) return d;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw EngineException.Invalid($"{what} must be a JSON object");
            foreach (JsonProperty p in doc.RootElement.EnumerateObject())
                d[p.Name] = p.Value.ValueKind == JsonValueKind.Null ? null : p.Value.ToString();
        }
        catch (JsonException e) { throw EngineException.Invalid($"{what}: {e.Message}"); }
        return d;
    }

    internal static string Invariant(int n) => n.ToString(CultureInfo.InvariantCulture);
}
