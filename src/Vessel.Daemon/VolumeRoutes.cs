using System.Text.Json;
using Vessel.Api;
using Vessel.Engine;

namespace Vessel.Daemon;

/// <summary>/v1/volumes (docs/api.md): create, list, inspect, remove, prune.</summary>
internal static class VolumeRoutes
{
    public static void Map(WebApplication app, VesselEngine engine)
    {
        var volumes = engine.Volumes;
        app.MapPost("/v1/volumes", async ctx =>
        {
            VolumeCreateRequest req = ctx.Request.ContentLength is 0 or null && !ctx.Request.Headers.ContentType.Any()
                ? new VolumeCreateRequest()
                : await Read(ctx);
            await ApiRoutes.Write(ctx, 201, volumes.Create(req), VolumeJson.Default.VolumeInfo);
        });
        app.MapGet("/v1/volumes", ctx =>
            ApiRoutes.Write(ctx, 200, volumes.List(ctx.Request.Query["filter"].Where(f => f is not null).Select(f => f!)).ToList(), VolumeJson.Default.ListVolumeInfo));
        app.MapPost("/v1/volumes/prune", ctx =>
            ApiRoutes.Write(ctx, 200, volumes.Prune(Bool(ctx, "all"), ctx.Request.Query["filter"].Where(f => f is not null).Select(f => f!)), VolumeJson.Default.VolumePruneResponse));
        app.MapGet("/v1/volumes/{name}", ctx => ApiRoutes.Write(ctx, 200, volumes.Inspect(Name(ctx)), VolumeJson.Default.VolumeInfo));
        app.MapDelete("/v1/volumes/{name}", ctx =>
        {
            volumes.Remove(Name(ctx), Bool(ctx, "force"));
            ctx.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
    }

    private static string Name(HttpContext ctx) => ctx.Request.RouteValues["name"] as string ?? "";

    private static bool Bool(HttpContext ctx, string what) => ctx.Request.Query[what].FirstOrDefault() switch
    {
        null or "" or "0" or "false" or "False" => false,
        "1" or "true" or "True" => true,
        var v => throw EngineException.Invalid($"{what}={v}: expected true or false"),
    };

    private static async Task<VolumeCreateRequest> Read(HttpContext ctx)
    {
        try
        {
            return await JsonSerializer.DeserializeAsync(ctx.Request.Body, VolumeJson.Default.VolumeCreateRequest, ctx.RequestAborted) ?? new VolumeCreateRequest();
        }
        catch (JsonException e)
        {
            throw EngineException.Invalid($"request body is not valid JSON for this endpoint: {e.Message}");
        }
    }
}
