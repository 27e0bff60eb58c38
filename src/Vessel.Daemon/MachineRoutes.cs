using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Microsoft.AspNetCore.Http.Features;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Machines;

namespace Vessel.Daemon;

/// <summary>/v1/vms (docs/machines.md): create, list, inspect, start, stop, kill, restart, pause, resume, remove,
/// logs, console (an HTTP upgrade to a raw byte stream), snapshots, clone, resize-disk, migrate.</summary>
internal static class MachineRoutes
{
    public static void Map(WebApplication app, VesselEngine engine)
    {
        CancellationToken stopping = app.Lifetime.ApplicationStopping;
        MachineService vms = engine.Machines;

        app.MapPost("/v1/vms", async ctx =>
        {
            MachineCreateRequest req = await Read(ctx, MachineJson.Default.MachineCreateRequest);
            MachineCreateResponse r = await Task.Run(() => vms.Create(req), ctx.RequestAborted);
            await ApiRoutes.Write(ctx, 201, r, MachineJson.Default.MachineCreateResponse);
        });
        app.MapGet("/v1/vms", ctx => ApiRoutes.Write(ctx, 200, vms.List(Bool(ctx, "all")).ToList(), MachineJson.Default.ListMachineSummary));
        app.MapGet("/v1/vms/{id}", async ctx =>
            await ApiRoutes.Write(ctx, 200, await Task.Run(() => vms.Inspect(Id(ctx))), MachineJson.Default.MachineInspect));
        app.MapPost("/v1/vms/{id}/start", ctx => NoContent(ctx, vms.StartAsync(Id(ctx), ctx.RequestAborted)));
        app.MapPost("/v1/vms/{id}/stop", ctx => NoContent(ctx, vms.StopAsync(Id(ctx), Int(ctx, "t") ?? 30, ctx.RequestAborted)));
        app.MapPost("/v1/vms/{id}/restart", ctx => NoContent(ctx, vms.RestartAsync(Id(ctx), Int(ctx, "t") ?? 30, ctx.RequestAborted)));
        app.MapPost("/v1/vms/{id}/kill", ctx => NoContent(ctx, vms.KillAsync(Id(ctx), ctx.RequestAborted)));
        app.MapPost("/v1/vms/{id}/pause", ctx => NoContent(ctx, vms.PauseAsync(Id(ctx), ctx.RequestAborted)));
        app.MapPost("/v1/vms/{id}/resume", ctx => NoContent(ctx, vms.ResumeAsync(Id(ctx), ctx.RequestAborted)));
        app.MapDelete("/v1/vms/{id}", ctx => NoContent(ctx, vms.RemoveAsync(Id(ctx), Bool(ctx, "force"), ctx.RequestAborted)));

        app.MapGet("/v1/vms/{id}/logs", async ctx =>
        {
            string id = Id(ctx);
            vms.Get(id); // 404 before the stream starts
            bool follow = Bool(ctx, "follow");
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "text/plain; charset=utf-8";
            ctx.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
            await ctx.Response.Body.FlushAsync(cts.Token);
            try
            {
                await foreach (ReadOnlyMemory<byte> chunk in vms.Logs(id, follow, cts.Token))
                {
                    await ctx.Response.Body.WriteAsync(chunk, cts.Token);
                    if (follow) await ctx.Response.Body.FlushAsync(cts.Token);
                }
            }
            catch (OperationCanceledException) { }
        });

        // The serial console: `Connection: Upgrade` + `Upgrade: tcp`, answered with 101, then raw bytes both ways.
        app.MapPost("/v1/vms/{id}/console", async ctx =>
        {
            IHttpUpgradeFeature? upgrade = ctx.Features.Get<IHttpUpgradeFeature>();
            if (upgrade is null || !upgrade.IsUpgradableRequest)
                throw EngineException.Invalid("the console is a raw stream: send Connection: Upgrade and Upgrade: tcp");
            using MachineService.ConsoleSession session = await vms.AttachConsoleAsync(Id(ctx), ctx.RequestAborted);
            ctx.Response.Headers.Upgrade = "tcp";
            await using Stream client = await upgrade.UpgradeAsync();
            await using var vm = new NetworkStream(session.Socket, ownsSocket: false);
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            Task toVm = Copy(client, vm, cts.Token), toClient = Copy(vm, client, cts.Token);
            await Task.WhenAny(toVm, toClient);
            await cts.CancelAsync();
            try { await Task.WhenAll(toVm, toClient); } catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException) { }
        });
    }

    private static async Task Copy(Stream from, Stream to, CancellationToken cancel)
    {
        var buf = new byte[16 * 1024];
        try
        {
            while (true)
            {
                int n = await from.ReadAsync(buf, cancel);
                if (n <= 0) return;
                await to.WriteAsync(buf.AsMemory(0, n), cancel);
                await to.FlushAsync(cancel);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or SocketException or ObjectDisposedException) { }
    }

    private static async Task NoContent(HttpContext ctx, Task work)
    {
        await work;
        ctx.Response.StatusCode = 204;
    }

    internal static string Id(HttpContext ctx) => ctx.Request.RouteValues["id"] as string ?? "";

    internal static bool Bool(HttpContext ctx, string what)
    {
        string? v = ctx.Request.Query[what].FirstOrDefault();
        return v switch
        {
            null or "" or "0" or "false" or "False" => false,
            "1" or "true" or "True" => true,
            _ => throw EngineException.Invalid($"{what}={v}: expected true or false"),
        };
    }

    internal static int? Int(HttpContext ctx, string what)
    {
        string? v = ctx.Request.Query[what].FirstOrDefault();
        if (string.IsNullOrEmpty(v)) return null;
        return int.TryParse(v, out int n) ? n : throw EngineException.Invalid($"{what}={v}: expected a number");
    }

    internal static async Task<T> Read<T>(HttpContext ctx, JsonTypeInfo<T> type) where T : class
    {
        if (ctx.Request.ContentLength is > 4 * 1024 * 1024) throw EngineException.Invalid("request body is larger than 4 MiB");
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
