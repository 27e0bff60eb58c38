using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.Features;
using Vessel.Api;
using Vessel.Engine;

namespace Vessel.Daemon;

/// <summary>/v1/containers (docs/api.md): create, list, inspect, start, stop, kill, remove, wait, logs, exec.</summary>
internal static class ContainerRoutes
{
    public static void Map(WebApplication app, VesselEngine engine)
    {
        CancellationToken stopping = app.Lifetime.ApplicationStopping;
        var containers = engine.Containers;

        app.MapPost("/v1/containers", async ctx =>
        {
            ContainerCreateRequest req = await Read(ctx, ContainerJson.Default.ContainerCreateRequest);
            if (string.IsNullOrEmpty(req.Image)) throw EngineException.Invalid("image is required");
            ContainerCreateResponse r = await Task.Run(() => containers.Create(req), ctx.RequestAborted);
            await ApiRoutes.Write(ctx, 201, r, ContainerJson.Default.ContainerCreateResponse);
        });
        app.MapGet("/v1/containers", ctx =>
            ApiRoutes.Write(ctx, 200, containers.List(Bool(ctx, "all")).ToList(), ContainerJson.Default.ListContainerSummary));
        app.MapGet("/v1/containers/{id}", ctx => ApiRoutes.Write(ctx, 200, containers.Inspect(Id(ctx)), ContainerJson.Default.ContainerInspect));
        app.MapPost("/v1/containers/{id}/start", async ctx =>
        {
            await Task.Run(() => containers.Start(Id(ctx)), ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/v1/containers/{id}/stop", async ctx =>
        {
            int t = Int(ctx, "t") ?? 10;
            await containers.StopAsync(Id(ctx), t, ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/v1/containers/{id}/kill", ctx =>
        {
            containers.Kill(Id(ctx), ctx.Request.Query["signal"].FirstOrDefault() ?? "SIGKILL");
            ctx.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
        app.MapDelete("/v1/containers/{id}", async ctx =>
        {
            await containers.RemoveAsync(Id(ctx), Bool(ctx, "force"), ctx.RequestAborted, removeVolumes: Bool(ctx, "v"));
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/v1/containers/{id}/wait", async ctx =>
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
            int code = await containers.WaitAsync(Id(ctx), cts.Token);
            await ApiRoutes.Write(ctx, 200, new ContainerWaitResponse(code), ContainerJson.Default.ContainerWaitResponse);
        });
        app.MapPost("/v1/containers/{id}/exec", async ctx =>
        {
            ContainerExecRequest req = await Read(ctx, ContainerJson.Default.ContainerExecRequest);
            ContainerExecResponse r = await containers.ExecAsync(Id(ctx), req, ctx.RequestAborted);
            await ApiRoutes.Write(ctx, 200, r, ContainerJson.Default.ContainerExecResponse);
        });
        app.MapGet("/v1/containers/{id}/logs", async ctx =>
        {
            string id = Id(ctx);
            containers.Get(id); // 404 before the stream starts
            bool follow = Bool(ctx, "follow");
            int? tail = ctx.Request.Query["tail"].FirstOrDefault() is { Length: > 0 } ts && ts != "all"
                ? (int.TryParse(ts, out int n) && n >= 0 ? n : throw EngineException.Invalid($"tail={ts}: expected a number or all")) : null;
            DateTimeOffset? since = null;
            if (ctx.Request.Query["since"].FirstOrDefault() is { Length: > 0 } ss)
                since = decimal.TryParse(ss, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal secs)
                    ? DateTimeOffset.UnixEpoch.AddTicks((long)(secs * TimeSpan.TicksPerSecond)) : throw EngineException.Invalid($"since={ss}: expected unix seconds");
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = ApiInfo.NdjsonContentType;
            ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            await ctx.Response.Body.FlushAsync(cts.Token);
            try
            {
                await foreach (ContainerLogLine line in containers.Logs(id, follow, tail, since, cts.Token))
                {
                    await ctx.Response.Body.WriteAsync(JsonSerializer.SerializeToUtf8Bytes(line, ContainerJson.Default.ContainerLogLine), cts.Token);
                    await ctx.Response.Body.WriteAsync("\n"u8.ToArray(), cts.Token);
                    if (follow) await ctx.Response.Body.FlushAsync(cts.Token);
                }
            }
            catch (OperationCanceledException) { }
        });
    }

    private static string Id(HttpContext ctx) => ctx.Request.RouteValues["id"] as string ?? "";

    private static bool Bool(HttpContext ctx, string what)
    {
        string? v = ctx.Request.Query[what].FirstOrDefault();
        return v switch
        {
            null or "" or "0" or "false" or "False" => false,
            "1" or "true" or "True" => true,
            _ => throw EngineException.Invalid($"{what}={v}: expected true or false"),
        };
    }

    private static int? Int(HttpContext ctx, string what)
    {
        string? v = ctx.Request.Query[what].FirstOrDefault();
        if (string.IsNullOrEmpty(v)) return null;
        return int.TryParse(v, out int n) ? n : throw EngineException.Invalid($"{what}={v}: expected a number");
    }

    private static async Task<T> Read<T>(HttpContext ctx, JsonTypeInfo<T> type) where T : class
    {
        try
        {
            return await JsonSerializer.DeserializeAsync(ctx.Request.Body, type, ctx.RequestAborted)
                ?? throw EngineException.Invalid("request body is empty (expected a JSON object)");
        }
        catch (JsonException e)
        {
            throw EngineException.Invalid($"request body is not valid JSON for this endpoint: {e.Message}");
        }
    }
}
