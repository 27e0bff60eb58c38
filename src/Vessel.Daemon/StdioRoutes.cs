using System.Text.Json;
using Microsoft.AspNetCore.Http.Features;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Containers;

namespace Vessel.Daemon;

/// <summary>The stream endpoints (docs/api.md, "Attach and exec streams"): attach and exec start answer
/// <c>101 Switching Protocols</c> to a request with <c>Connection: Upgrade</c>, <c>Upgrade: tcp</c> and no body, then carry
/// frames both ways over the connection (<see cref="StdioFrames"/>); resize; exec instances.</summary>
internal static class StdioRoutes
{
    public const string StreamContentType = "application/vnd.vessel.stdio-stream";

    public static void Map(WebApplication app, VesselEngine engine)
    {
        CancellationToken stopping = app.Lifetime.ApplicationStopping;
        var containers = engine.Containers;

        app.MapPost("/v1/containers/{id}/attach", ctx => Attach(ctx, containers, stopping));
        app.MapPost("/v1/containers/{id}/resize", async ctx =>
        {
            await containers.ResizeAsync(Id(ctx), UShort(ctx, "h"), UShort(ctx, "w"), ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });

        app.MapPost("/v1/containers/{id}/execs", async ctx =>
        {
            ExecCreateRequest req;
            try
            {
                req = await JsonSerializer.DeserializeAsync(ctx.Request.Body, StdioJson.Default.ExecCreateRequest, ctx.RequestAborted)
                    ?? throw EngineException.Invalid("request body is empty (expected a JSON object)");
            }
            catch (JsonException e) { throw EngineException.Invalid($"request body is not valid JSON for this endpoint: {e.Message}"); }
            string execId = containers.CreateExec(Id(ctx), req);
            await ApiRoutes.Write(ctx, 201, new ExecCreateResponse(execId), StdioJson.Default.ExecCreateResponse);
        });
        app.MapGet("/v1/execs/{id}", ctx => ApiRoutes.Write(ctx, 200, containers.InspectExec(Id(ctx)), StdioJson.Default.ExecInspect));
        app.MapPost("/v1/execs/{id}/resize", async ctx =>
        {
            await containers.ResizeExecAsync(Id(ctx), UShort(ctx, "h"), UShort(ctx, "w"), ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/v1/execs/{id}/start", ctx => StartExec(ctx, containers, stopping));
    }

    private static async Task Attach(HttpContext ctx, Engine.Containers.ContainerService containers, CancellationToken stopping)
    {
        IHttpUpgradeFeature upgrade = Upgradable(ctx);
        var options = new StdioPumpOptions(Bool(ctx, "stdin", false), Bool(ctx, "stdout", true), Bool(ctx, "stderr", true),
            DetachKeys.Parse(ctx.Request.Query["detachKeys"].FirstOrDefault()));
        // An auto-remove (run --rm) waits until the exit code is known here, and is done before the end frame: a client
        // that has read the end frame finds the container gone (docker's CLI waits for the removal the same way).
        using IDisposable hold = containers.HoldRemoval(containers.Get(Id(ctx)).Id);
        using AttachTicket ticket = containers.Attach(Id(ctx), UShort(ctx, "h"), UShort(ctx, "w"));
        await Serve(ctx, upgrade, ticket.SessionAsync, options, stopping, beforeEnd: hold.Dispose);
    }

    private static async Task StartExec(HttpContext ctx, Engine.Containers.ContainerService containers, CancellationToken stopping)
    {
        {
            string execId = Id(ctx);
            if (Bool(ctx, "detach", false))
            {
                ExecSession d = containers.StartExec(execId, detach: true);
                _ = d.ExitCodeAsync(CancellationToken.None).ContinueWith(_ => d.DisposeAsync().AsTask(), TaskScheduler.Default);
                ctx.Response.StatusCode = 204;
                return;
            }
            IHttpUpgradeFeature upgrade = Upgradable(ctx);
            ExecInstance e = containers.GetExec(execId);
            var options = new StdioPumpOptions(e.Request.OpenStdin, true, true, DetachKeys.Parse(ctx.Request.Query["detachKeys"].FirstOrDefault()));
            ExecSession session = containers.StartExec(execId, detach: false); // a command that cannot run: an error before the upgrade
            if (UShort(ctx, "h") is > 0 and var h && UShort(ctx, "w") is > 0 and var w) await session.ResizeAsync(h, w, ctx.RequestAborted);
            await Serve(ctx, upgrade, _ => Task.FromResult<StdioSession>(session), options, stopping);
        }
    }

    private static IHttpUpgradeFeature Upgradable(HttpContext ctx)
    {
        IHttpUpgradeFeature? upgrade = ctx.Features.Get<IHttpUpgradeFeature>();
        if (upgrade is not { IsUpgradableRequest: true })
            throw EngineException.Invalid($"{ctx.Request.Path} is a stream: send it with 'Connection: Upgrade' and 'Upgrade: tcp' and no body");
        return upgrade;
    }

    /// <summary>Upgrades, waits for the session, runs the pump, and ends with a frame 4 saying how it ended. The session is
    /// disposed at the end; the process goes on if the client detached or left.</summary>
    private static async Task Serve(HttpContext ctx, IHttpUpgradeFeature upgrade, Func<CancellationToken, Task<StdioSession>> session,
        StdioPumpOptions options, CancellationToken stopping, Action? beforeEnd = null)
    {
        ctx.Response.Headers.Connection = "Upgrade";
        ctx.Response.Headers.Upgrade = "tcp";
        ctx.Response.Headers.ContentType = StreamContentType;
        await using Stream stream = await upgrade.UpgradeAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ctx.RequestAborted, stopping);
        StdioEndMessage end;
        StdioSession? s = null;
        try
        {
            s = await session(cts.Token);
            StdioEnd r = await StdioPump.RunAsync(s, StdioFrames.ReadInput(stream, cts.Token), async (f, ct) =>
            {
                await stream.WriteAsync(StdioFrames.Encode((byte)f.Stream, f.Data.Span), ct);
                await stream.FlushAsync(ct);
            }, options, cts.Token);
            end = new StdioEndMessage { ExitCode = r.ExitCode, Detached = r.Detached };
        }
        catch (OperationCanceledException) { return; }
        catch (IOException) { return; } // the client went away
        catch (EngineException e) { end = new StdioEndMessage { Error = e.Message }; }
        finally
        {
            if (s is not null) await s.DisposeAsync();
        }
        beforeEnd?.Invoke();
        try
        {
            await stream.WriteAsync(StdioFrames.Encode(StdioFrames.End, JsonSerializer.SerializeToUtf8Bytes(end, StdioJson.Default.StdioEndMessage)), cts.Token);
            await stream.FlushAsync(cts.Token);
        }
        catch (Exception e) when (e is IOException or OperationCanceledException) { }
    }

    private static string Id(HttpContext ctx) => ctx.Request.RouteValues["id"] as string ?? "";

    private static bool Bool(HttpContext ctx, string what, bool byDefault)
    {
        string? v = ctx.Request.Query[what].FirstOrDefault();
        return v switch
        {
            null or "" => byDefault,
            "0" or "false" or "False" => false,
            "1" or "true" or "True" => true,
            _ => throw EngineException.Invalid($"{what}={v}: expected true or false"),
        };
    }

    private static ushort UShort(HttpContext ctx, string what)
    {
        string? v = ctx.Request.Query[what].FirstOrDefault();
        if (string.IsNullOrEmpty(v)) return 0;
        return ushort.TryParse(v, out ushort n) ? n : throw EngineException.Invalid($"{what}={v}: expected a number from 0 to 65535");
    }
}
