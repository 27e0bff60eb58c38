using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text.Json;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Containers;

namespace Vessel.DockerApi;

/// <summary>docker's two-step exec: <c>POST /containers/{id}/exec</c> records the request (an exec id), <c>POST
/// /exec/{id}/start</c> runs it (hijacked, multiplexed output), <c>GET /exec/{id}/json</c> tells its exit code. The
/// engine's exec in this version has no stdin and no tty and hands the output back when the process ends.</summary>
internal static class ExecEndpoints
{
    private sealed class ExecRecord
    {
        public required string Id { get; init; }
        public required string ContainerId { get; init; }
        public required ContainerExecRequest Request { get; init; }
        public bool AttachStdout { get; init; }
        public bool AttachStderr { get; init; }
        public bool Running { get; set; }
        public bool Started { get; set; }
        public int? ExitCode { get; set; }
        public DateTimeOffset Created { get; } = DateTimeOffset.UtcNow;
    }

    private static readonly ConcurrentDictionary<string, ExecRecord> Execs = new(StringComparer.Ordinal);

    public static void Map(WebApplication app, DockerContext d)
    {
        ContainerService containers = d.Engine.Containers;
        app.MapPost("/containers/{id}/exec", async ctx =>
        {
            ContainerRecord c = containers.Get(Http.Route(ctx, "id"));
            if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"Container {c.Id} is not running");
            JsonElement body = await Http.Body(ctx) ?? throw EngineException.Invalid("exec config is missing (empty body)");
            if (CreateMapping.Bool(body, "Tty")) throw DockerErrors.NotSupported("exec with a pseudo-terminal (docker exec -t) in this version");
            if (CreateMapping.Bool(body, "AttachStdin")) throw DockerErrors.NotSupported("exec with stdin (docker exec -i) in this version");
            if (CreateMapping.Bool(body, "Privileged")) throw DockerErrors.NotSupported("privileged exec");
            List<string> cmd = CreateMapping.Strings(body, "Cmd") is { Count: > 0 } x ? x : throw EngineException.Invalid("No exec command specified");
            var rec = new ExecRecord
            {
                Id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), ContainerId = c.Id,
                Request = new ContainerExecRequest
                {
                    Cmd = cmd, Env = CreateMapping.Strings(body, "Env"), User = CreateMapping.Str(body, "User") is { Length: > 0 } u ? u : null,
                    WorkingDir = CreateMapping.Str(body, "WorkingDir") is { Length: > 0 } w ? w : null,
                },
                AttachStdout = CreateMapping.Bool(body, "AttachStdout"), AttachStderr = CreateMapping.Bool(body, "AttachStderr"),
            };
            Prune();
            Execs[rec.Id] = rec;
            await Http.Json(ctx, 201, new JsonObject { ["Id"] = rec.Id });
        });
        app.MapPost("/exec/{id}/start", async ctx =>
        {
            ExecRecord rec = Get(Http.Route(ctx, "id"));
            JsonElement? body = await Http.Body(ctx);
            bool detach = body is { } b && CreateMapping.Bool(b, "Detach");
            if (body is { } bt && CreateMapping.Bool(bt, "Tty")) throw DockerErrors.NotSupported("exec with a pseudo-terminal (docker exec -t) in this version");
            lock (rec)
            {
                if (rec.Started) throw EngineException.Conflict($"exec {rec.Id} has already been started");
                rec.Started = rec.Running = true;
            }
            Task<ContainerExecResponse> run = Run(d, rec);
            if (detach)
            {
                ctx.Response.StatusCode = 200;
                return;
            }
            using CancellationTokenSource cts = d.Hijacked();
            Stream conn = await Streams.HijackAsync(ctx);
            Task drain = Streams.DrainAsync(conn, cts);
            try
            {
                ContainerExecResponse r = await run.WaitAsync(cts.Token);
                if (rec.AttachStdout) await Streams.FrameAsync(conn, Streams.Stdout, r.Stdout, cts.Token);
                if (rec.AttachStderr) await Streams.FrameAsync(conn, Streams.Stderr, r.Stderr, cts.Token);
            }
            catch (EngineException e)
            {
                try { await Streams.FrameAsync(conn, Streams.Stderr, e.Message + "\n", cts.Token); }
                catch (IOException) { }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException) { }
            finally
            {
                await conn.DisposeAsync();
                await cts.CancelAsync();
                try { await drain; } catch (OperationCanceledException) { }
            }
        });
        app.MapGet("/exec/{id}/json", ctx =>
        {
            ExecRecord rec = Get(Http.Route(ctx, "id"));
            var o = new JsonObject
            {
                ["CanRemove"] = false, ["ContainerID"] = rec.ContainerId, ["DetachKeys"] = "", ["ExitCode"] = rec.ExitCode, ["ID"] = rec.Id,
                ["OpenStderr"] = rec.AttachStderr, ["OpenStdin"] = false, ["OpenStdout"] = rec.AttachStdout, ["Running"] = rec.Running,
                ["ProcessConfig"] = new JsonObject
                {
                    ["arguments"] = Http.Array(rec.Request.Cmd.Skip(1)), ["entrypoint"] = rec.Request.Cmd[0], ["privileged"] = false,
                    ["tty"] = false, ["user"] = rec.Request.User ?? "",
                },
                ["Pid"] = 0,
            };
            return Http.Json(ctx, 200, o);
        });
        app.MapPost("/exec/{id}/resize", ctx =>
        {
            Get(Http.Route(ctx, "id"));
            throw DockerErrors.NotSupported("resizing an exec (no pseudo-terminal in this version)");
        });
    }

    private static ExecRecord Get(string id) =>
        Execs.TryGetValue(id, out var r) ? r : throw EngineException.NotFound($"No such exec instance: {id}");

    private static Task<ContainerExecResponse> Run(DockerContext d, ExecRecord rec) => Task.Run(async () =>
    {
        try
        {
            ContainerExecResponse r = await d.Engine.Containers.ExecAsync(rec.ContainerId, rec.Request, d.DaemonStopping);
            rec.ExitCode = r.ExitCode;
            return r;
        }
        catch (EngineException)
        {
            rec.ExitCode = 126;
            throw;
        }
        finally { rec.Running = false; }
    });

    /// <summary>Finished execs are kept for an hour so clients can read their exit code.</summary>
    private static void Prune()
    {
        DateTimeOffset cutoff = DateTimeOffset.UtcNow.AddHours(-1);
        foreach (var (id, r) in Execs)
            if (!r.Running && r.Created < cutoff) Execs.TryRemove(id, out _);
    }
}
