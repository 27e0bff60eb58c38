using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Vessel.Api;
using Vessel.Engine;

namespace Vessel.Daemon;

/// <summary>/v1/networks (docs/network.md): create, list, inspect, remove, connect, disconnect, prune.</summary>
internal static class NetworkRoutes
{
    public static void Map(WebApplication app, VesselEngine engine)
    {
        var networks = engine.Networks;
        app.MapPost("/v1/networks", async ctx =>
        {
            var req = await Read(ctx, NetworkJson.Default.NetworkCreateRequest);
            var info = await Task.Run(() => networks.Create(req), ctx.RequestAborted);
            await ApiRoutes.Write(ctx, 201, info, NetworkJson.Default.NetworkInfo);
        });
        app.MapGet("/v1/networks", ctx => ApiRoutes.Write(ctx, 200, networks.List().ToList(), NetworkJson.Default.ListNetworkInfo));
        app.MapPost("/v1/networks/prune", async ctx =>
            await ApiRoutes.Write(ctx, 200, await Task.Run(networks.Prune, ctx.RequestAborted), NetworkJson.Default.NetworkPruneResponse));
        app.MapGet("/v1/networks/{id}", ctx => ApiRoutes.Write(ctx, 200, networks.Inspect(Id(ctx)), NetworkJson.Default.NetworkInfo));
        app.MapDelete("/v1/networks/{id}", async ctx =>
        {
            await Task.Run(() => networks.Remove(Id(ctx)), ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/v1/networks/{id}/connect", async ctx =>
        {
            var req = await Read(ctx, NetworkJson.Default.NetworkConnectRequest);
            var c = engine.Containers.Get(req.Container);
            await Task.Run(() => networks.Connect(Id(ctx), c.Id, c.Name, req.Ip, req.Aliases), ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/v1/networks/{id}/disconnect", async ctx =>
        {
            var req = await Read(ctx, NetworkJson.Default.NetworkDisconnectRequest);
            var c = engine.Containers.Get(req.Container);
            await Task.Run(() => networks.Disconnect(Id(ctx), c.Id, c.Name, req.Force), ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });
    }

    private static string Id(HttpContext ctx) => ctx.Request.RouteValues["id"] as string ?? "";

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
