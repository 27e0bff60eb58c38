using System.Text.Json;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Volumes;

namespace Vessel.DockerApi;

/// <summary>/volumes: the engine's local volumes (directories under the state root) in docker's shape.</summary>
internal static class VolumeEndpoints
{
    public static void Map(WebApplication app, DockerContext d)
    {
        VolumeService volumes = d.Engine.Volumes;
        app.MapGet("/volumes", ctx =>
        {
            Filters f = Filters.Parse(ctx, "dangling", "label", "label!", "name", "driver");
            var list = volumes.List(f.Pairs().ToList()).Select(v => (JsonNode?)Volume(v)).ToArray();
            return Http.Json(ctx, 200, new JsonObject { ["Volumes"] = new JsonArray(list), ["Warnings"] = new JsonArray() });
        });
        app.MapPost("/volumes/create", async ctx =>
        {
            JsonElement body = await Http.Body(ctx) ?? JsonDocument.Parse("{}").RootElement;
            if (CreateMapping.Str(body, "Driver") is { Length: > 0 } driver && driver != "local") throw DockerErrors.NotSupported($"the {driver} volume driver");
            if (body.TryGetProperty("DriverOpts", out JsonElement opts) && !CreateMapping.IsEmpty(opts)) throw DockerErrors.NotSupported("volume driver options");
            var labels = body.TryGetProperty("Labels", out JsonElement l) && l.ValueKind == JsonValueKind.Object
                ? l.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ToString()) : null;
            VolumeInfo v = volumes.Create(new VolumeCreateRequest { Name = CreateMapping.Str(body, "Name") is { Length: > 0 } n ? n : null, Labels = labels });
            await Http.Json(ctx, 201, Volume(v));
        });
        app.MapPost("/volumes/prune", ctx =>
        {
            Filters f = Filters.Parse(ctx, "label", "label!", "all");
            bool all = f.Get("all").Any(v => v is "true" or "1");
            VolumePruneResponse r = volumes.Prune(all, f.Pairs().Where(p => !p.StartsWith("all=", StringComparison.Ordinal)).ToList());
            return Http.Json(ctx, 200, new JsonObject { ["VolumesDeleted"] = Http.Array(r.VolumesDeleted), ["SpaceReclaimed"] = r.SpaceReclaimed });
        });
        app.MapGet("/volumes/{name}", ctx => Http.Json(ctx, 200, Volume(volumes.Inspect(Http.Route(ctx, "name")))));
        app.MapDelete("/volumes/{name}", ctx =>
        {
            volumes.Remove(Http.Route(ctx, "name"), Http.Bool(ctx, "force"));
            ctx.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
    }

    public static JsonObject Volume(VolumeInfo v) => new()
    {
        ["CreatedAt"] = v.CreatedAt.ToString("yyyy-MM-dd'T'HH:mm:ssK", System.Globalization.CultureInfo.InvariantCulture),
        ["Driver"] = v.Driver, ["Labels"] = Http.Map(v.Labels), ["Mountpoint"] = v.Mountpoint, ["Name"] = v.Name,
        ["Options"] = Http.Map(v.Options), ["Scope"] = v.Scope,
    };
}
