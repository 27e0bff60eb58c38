using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Build;
using Vessel.Engine.Operations;

namespace Vessel.Daemon;

/// <summary>POST /v1/build (docs/api.md): the body is the context as a tar stream, the options are query
/// parameters; the answer streams the build's progress (NDJSON progress events, then the operation's final
/// state with the result). A client that goes away cancels the build.</summary>
internal static class BuildRoutes
{
    public static void Map(WebApplication app, VesselEngine engine)
    {
        CancellationToken stopping = app.Lifetime.ApplicationStopping;
        app.MapPost("/v1/build", async ctx =>
        {
            if (ctx.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } f) f.MaxRequestBodySize = null;
            BuildOptions options = Options(ctx.Request.Query);
            Operation op = await engine.Builds.StartFromTarAsync(engine.Operations, ctx.Request.Body, options, ctx.RequestAborted);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = ApiInfo.NdjsonContentType;
            ctx.Response.Headers.Location = $"/v1/operations/{op.Id}";
            ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            try
            {
                await foreach (ProgressEvent e in op.Progress(cts.Token))
                    await Line(ctx, JsonSerializer.SerializeToUtf8Bytes(e, ApiJson.Default.ProgressEvent));
                await Line(ctx, JsonSerializer.SerializeToUtf8Bytes(op.Info(), ApiJson.Default.OperationInfo));
            }
            catch (OperationCanceledException)
            {
                if (!op.IsFinished) await engine.Operations.CancelAsync(op.Id, TimeSpan.FromSeconds(30), CancellationToken.None);
            }
        });
    }

    /// <summary>t (repeated), f, buildarg (repeated K=V; a bare K is declared without a value), target, nocache,
    /// pull, label (repeated K=V), stdin (f names a Containerfile the client added to the context; it is read and
    /// then removed from the context, so COPY never sees it).</summary>
    internal static BuildOptions Options(IQueryCollection q)
    {
        static Dictionary<string, string?> Pairs(IEnumerable<string?> items, string what)
        {
            var d = new Dictionary<string, string?>(StringComparer.Ordinal);
            foreach (string? s in items)
            {
                if (string.IsNullOrEmpty(s)) continue;
                int eq = s.IndexOf('=');
                if (eq == 0) throw EngineException.Invalid($"{what} \"{s}\": the name is empty");
                if (eq < 0) d[s] = null; else d[s[..eq]] = s[(eq + 1)..];
            }
            return d;
        }
        static bool Bool(IQueryCollection q, string name) => q[name].FirstOrDefault() switch
        {
            null or "" or "0" or "false" or "False" => false,
            "1" or "true" or "True" => true,
            string v => throw EngineException.Invalid($"{name}={v}: expected true or false"),
        };
        var labels = Pairs(q["label"], "label");
        return new BuildOptions
        {
            Tags = q["t"].Where(t => !string.IsNullOrEmpty(t)).Select(t => t!).ToList(),
            Dockerfile = q["f"].FirstOrDefault(),
            DockerfileFromContextThenRemove = Bool(q, "stdin"),
            BuildArgs = Pairs(q["buildarg"], "build-arg"),
            Target = q["target"].FirstOrDefault() is { Length: > 0 } t ? t : null,
            NoCache = Bool(q, "nocache"),
            Pull = Bool(q, "pull"),
            Labels = labels.ToDictionary(kv => kv.Key, kv => kv.Value ?? ""),
        };
    }

    private static async Task Line(HttpContext ctx, byte[] json)
    {
        await ctx.Response.Body.WriteAsync(json, ctx.RequestAborted);
        await ctx.Response.Body.WriteAsync("\n"u8.ToArray(), ctx.RequestAborted);
        await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
    }
}
