using System.Collections.Concurrent;
using System.Text.Json;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Containers;

namespace Vessel.DockerApi;

/// <summary>docker's two-step exec on the engine's exec instances: <c>POST /containers/{id}/exec</c> creates one
/// (<see cref="ContainerService.CreateExec"/>: command, env, user, workdir, tty, stdin), <c>POST /exec/{id}/start</c>
/// runs it (hijacked: live output, stdin, detach keys; or detached), <c>POST /exec/{id}/resize</c> sizes its tty,
/// <c>GET /exec/{id}/json</c> tells whether it runs and its exit code.</summary>
internal static class ExecEndpoints
{
    /// <summary>What docker's exec create says that the engine's exec instance does not keep: which output streams the
    /// client wants and its detach keys.</summary>
    private sealed record DockerExec(bool Stdout, bool Stderr, string? DetachKeys, DateTimeOffset Created);

    private static readonly ConcurrentDictionary<string, DockerExec> Extras = new(StringComparer.Ordinal);

    public static void Map(WebApplication app, DockerContext d)
    {
        ContainerService containers = d.Engine.Containers;
        app.MapPost("/containers/{id}/exec", async ctx =>
        {
            ContainerRecord c = containers.Get(Http.Route(ctx, "id"));
            if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"Container {c.Id} is not running");
            JsonElement body = await Http.Body(ctx) ?? throw EngineException.Invalid("exec config is missing (empty body)");
            if (CreateMapping.Bool(body, "Privileged")) throw DockerErrors.NotSupported("privileged exec");
            List<string> cmd = CreateMapping.Strings(body, "Cmd") is { Count: > 0 } x ? x : throw EngineException.Invalid("No exec command specified");
            string? keys = CreateMapping.Str(body, "DetachKeys") is { Length: > 0 } k ? k : null;
            if (keys is not null) DetachKeys.Parse(keys); // a bad sequence is refused now, as dockerd does
            string id = containers.CreateExec(c.Id, new ExecCreateRequest
            {
                Cmd = cmd, Env = CreateMapping.Strings(body, "Env"), User = CreateMapping.Str(body, "User") is { Length: > 0 } u ? u : null,
                WorkingDir = CreateMapping.Str(body, "WorkingDir") is { Length: > 0 } w ? w : null,
                Tty = CreateMapping.Bool(body, "Tty"), OpenStdin = CreateMapping.Bool(body, "AttachStdin"),
            });
            Prune(containers);
            Extras[id] = new DockerExec(CreateMapping.Bool(body, "AttachStdout"), CreateMapping.Bool(body, "AttachStderr"), keys, DateTimeOffset.UtcNow);
            await Http.Json(ctx, 201, new JsonObject { ["Id"] = id });
        });
        app.MapPost("/exec/{id}/start", ctx => Start(ctx, d));
        app.MapGet("/exec/{id}/json", ctx =>
        {
            ExecInspect e = containers.InspectExec(Get(containers, Http.Route(ctx, "id")).Id);
            DockerExec x = Extras.GetValueOrDefault(e.Id) ?? new DockerExec(true, true, null, DateTimeOffset.UtcNow);
            var o = new JsonObject
            {
                ["CanRemove"] = false, ["ContainerID"] = e.ContainerId, ["DetachKeys"] = x.DetachKeys ?? "", ["ExitCode"] = e.ExitCode, ["ID"] = e.Id,
                ["OpenStderr"] = x.Stderr, ["OpenStdin"] = e.OpenStdin, ["OpenStdout"] = x.Stdout, ["Running"] = e.Running,
                ["ProcessConfig"] = new JsonObject
                {
                    ["arguments"] = Http.Array(e.Cmd.Skip(1)), ["entrypoint"] = e.Cmd[0], ["privileged"] = false,
                    ["tty"] = e.Tty, ["user"] = Get(containers, e.Id).Request.User ?? "",
                },
                ["Pid"] = e.Pid,
            };
            return Http.Json(ctx, 200, o);
        });
        app.MapPost("/exec/{id}/resize", async ctx =>
        {
            var (rows, columns) = DockerStdio.Size(ctx);
            ExecInstance e = Get(containers, Http.Route(ctx, "id"));
            await containers.ResizeExecAsync(e.Id, rows, columns, ctx.RequestAborted);
            ctx.Response.StatusCode = 200;
        });
    }

    /// <summary>Detached: the process runs with its stdio on /dev/null, the answer is an empty 200. Attached: the
    /// process is started right after the hijack (a resize that comes first is kept for it), then its output streams live
    /// (raw with a tty) and the client's stdin reaches it; the stream ends once the process has ended and its exit code is
    /// recorded, so the client's inspect right after sees it. A command that cannot run is told in the stream, as dockerd
    /// does, and its exit code (126, 127) is the exec's.</summary>
    private static async Task Start(HttpContext ctx, DockerContext d)
    {
        ContainerService containers = d.Engine.Containers;
        ExecInstance e = Get(containers, Http.Route(ctx, "id"));
        JsonElement? body = await Http.Body(ctx);
        bool detach = body is { } b && CreateMapping.Bool(b, "Detach");
        if (detach)
        {
            ExecSession bg = containers.StartExec(e.Id, detach: true);
            _ = bg.ExitCodeAsync(CancellationToken.None).ContinueWith(_ => bg.DisposeAsync().AsTask(), TaskScheduler.Default);
            ctx.Response.StatusCode = 200;
            return;
        }
        DockerExec x = Extras.GetValueOrDefault(e.Id) ?? new DockerExec(true, true, null, DateTimeOffset.UtcNow);
        if (e.Started) throw EngineException.Conflict($"exec {e.Id[..12]} has already been started");
        ContainerRecord c = containers.Get(e.ContainerId);
        if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"container {c.Id[..12]} is not running");
        if (body is { } sb && sb.TryGetProperty("ConsoleSize", out JsonElement size) && size.ValueKind == JsonValueKind.Array
            && size.GetArrayLength() == 2 && size[0].TryGetUInt16(out ushort h) && size[1].TryGetUInt16(out ushort w) && h > 0 && w > 0)
            await containers.ResizeExecAsync(e.Id, h, w, ctx.RequestAborted);   // kept until the process runs
        // The process starts only after the hijack, as dockerd does: clients that read the 101's headers through a
        // buffered reader and then take the raw socket (docker-py) lose what arrives together with the headers.
        using CancellationTokenSource cts = d.Hijacked();
        Stream conn = await Streams.HijackAsync(ctx);
        ExecSession? session = null;
        string? failed = null;
        try
        {
            try { session = containers.StartExec(e.Id, detach: false); }
            catch (EngineException ex) { failed = ex.Message; } // not found, not executable (126/127 recorded), container gone
            if (session is null)
            {
                await DockerStdio.WriteTextAsync(conn, e.Request.Tty, Streams.Stderr, (failed ?? "exec failed") + "\r\n", cts.Token);
                return;
            }
            bool stdin = e.Request.OpenStdin;
            var options = new StdioPumpOptions(stdin, x.Stdout, x.Stderr, stdin ? DetachKeys.Parse(x.DetachKeys) : null);
            await DockerStdio.PumpAsync(conn, session, options, cts.Token);
        }
        finally
        {
            if (session is not null) await session.DisposeAsync(); // a detached or abandoned process goes on
            await conn.DisposeAsync();
        }
    }

    private static ExecInstance Get(ContainerService containers, string id)
    {
        try { return containers.GetExec(id); }
        catch (EngineException e) when (e.Code == ErrorCodes.NotFound) { throw EngineException.NotFound($"No such exec instance: {id}"); }
    }

    /// <summary>The extras of execs the engine has forgotten (it keeps finished ones a while) go too.</summary>
    private static void Prune(ContainerService containers)
    {
        DateTimeOffset cutoff = DateTimeOffset.UtcNow.AddMinutes(-10);
        foreach (var (id, r) in Extras)
        {
            if (r.Created >= cutoff) continue;
            try { containers.GetExec(id); }
            catch (EngineException) { Extras.TryRemove(id, out _); }
        }
    }
}
