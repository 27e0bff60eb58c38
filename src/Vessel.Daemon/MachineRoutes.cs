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
        app.MapPost("/v1/vms/{id}/start", async ctx =>
        {
            if (!Bool(ctx, "async")) { await NoContent(ctx, vms.StartAsync(Id(ctx), ctx.RequestAborted)); return; }
            // A boot as an operation (vm.start): the client may go; `operation wait|cancel` (cancel kills QEMU).
            string name = vms.Get(Id(ctx)).Name;
            var op = engine.Operations.Start("vm.start", name, async oc =>
            {
                oc.Report("starting", name);
                await vms.StartAsync(name, oc.Cancel);
                oc.Report("running", name);
                return null;
            });
            ctx.Response.Headers.Location = $"/v1/operations/{op.Id}";
            await ApiRoutes.Write(ctx, 202, op.Info(), ApiJson.Default.OperationInfo);
        });
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

        app.MapPost("/v1/vms/{id}/clone", async ctx =>
        {
            MachineCloneRequest req = await Read(ctx, MachineJson.Default.MachineCloneRequest);
            MachineCreateResponse r = await vms.CloneAsync(Id(ctx), req.Name ?? "", ctx.RequestAborted);
            await ApiRoutes.Write(ctx, 201, r, MachineJson.Default.MachineCreateResponse);
        });
        app.MapGet("/v1/vms/{id}/snapshots", async ctx =>
            await ApiRoutes.Write(ctx, 200, await Task.Run(() => vms.Snapshots(Id(ctx)).ToList()), MachineJson.Default.ListMachineSnapshotInfo));
        app.MapPost("/v1/vms/{id}/snapshots", async ctx =>
        {
            MachineSnapshotRequest req = await Read(ctx, MachineJson.Default.MachineSnapshotRequest);
            MachineSnapshotInfo r = await vms.SnapshotCreateAsync(Id(ctx), req.Name ?? "", ctx.RequestAborted);
            await ApiRoutes.Write(ctx, 201, r, MachineJson.Default.MachineSnapshotInfo);
        });
        app.MapPost("/v1/vms/{id}/snapshots/{snapshot}/restore", ctx => NoContent(ctx, vms.SnapshotRestoreAsync(Id(ctx), Snap(ctx), ctx.RequestAborted)));
        app.MapDelete("/v1/vms/{id}/snapshots/{snapshot}", ctx => NoContent(ctx, vms.SnapshotRemoveAsync(Id(ctx), Snap(ctx), ctx.RequestAborted)));
        app.MapPost("/v1/vms/{id}/resize-disk", async ctx =>
        {
            MachineResizeRequest req = await Read(ctx, MachineJson.Default.MachineResizeRequest);
            await NoContent(ctx, vms.ResizeDiskAsync(Id(ctx), req.Size, ctx.RequestAborted));
        });

        // Live migration between two daemons on this host: the target's side, then the source's (an operation).
        app.MapPost("/v1/vms/incoming", async ctx =>
        {
            MachineIncomingRequest req = await Read(ctx, MachineJson.Default.MachineIncomingRequest);
            MachineIncomingResponse r = await vms.IncomingAsync(req, ctx.RequestAborted);
            await ApiRoutes.Write(ctx, 201, r, MachineJson.Default.MachineIncomingResponse);
        });
        app.MapPost("/v1/vms/{id}/migrate", async ctx =>
        {
            MachineMigrateRequest req = await Read(ctx, MachineJson.Default.MachineMigrateRequest);
            if (string.IsNullOrEmpty(req.To)) throw EngineException.Invalid("to is required: the API socket of the target Vessel daemon");
            string id = vms.Get(Id(ctx)).Id;
            var op = engine.Operations.Start("vm.migrate", vms.Get(id).Name, Migration(vms, id, req.To));
            ctx.Response.Headers.Location = $"/v1/operations/{op.Id}";
            await ApiRoutes.Write(ctx, 202, op.Info(), ApiJson.Default.OperationInfo);
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

    private static Func<Vessel.Engine.Operations.OperationContext, Task<JsonElement?>> Migration(MachineService vms, string id, string to) =>
        oc => vms.MigrateAsync(id, to, (status, done, total) => oc.Report(status, id, done, total), oc.Cancel);

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

    private static string Snap(HttpContext ctx) => ctx.Request.RouteValues["snapshot"] as string ?? "";

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
