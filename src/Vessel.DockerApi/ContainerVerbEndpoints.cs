using Vessel.Images.Content;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Containers;

namespace Vessel.DockerApi;

/// <summary>top, stats, changes (diff), archive (cp), rename, pause/unpause, update, commit: the engine's container
/// verbs in docker's shapes.</summary>
internal static class ContainerVerbEndpoints
{
    public static void Map(WebApplication app, DockerContext d)
    {
        ContainerService containers = d.Engine.Containers;
        app.MapGet("/containers/{id}/top", async ctx =>
        {
            ContainerTopResponse r = await containers.TopAsync(Http.Route(ctx, "id"), Http.Query(ctx, "ps_args"), ctx.RequestAborted);
            var procs = new JsonArray(r.Processes.Select(p => (JsonNode?)Http.Array(p)).ToArray());
            await Http.Json(ctx, 200, new JsonObject { ["Titles"] = Http.Array(r.Titles), ["Processes"] = procs });
        });
        app.MapGet("/containers/{id}/stats", async ctx =>
        {
            string id = Http.Route(ctx, "id");
            ContainerRecord c = containers.Get(id);
            bool stream = Http.Query(ctx, "stream") is not ("0" or "false" or "False") && !Http.Bool(ctx, "one-shot");
            using CancellationTokenSource cts = d.Linked(ctx);
            await Http.StartStream(ctx, "application/json");
            try
            {
                await foreach (ContainerStats s in containers.Stats(c.Id, stream, cts.Token)) await Http.Line(ctx, Stats(s), cts.Token);
            }
            catch (OperationCanceledException) { }
        });
        app.MapGet("/containers/{id}/changes", ctx =>
        {
            var list = containers.Changes(Http.Route(ctx, "id")).Select(ch => (JsonNode?)new JsonObject
            {
                ["Path"] = ch.Path, ["Kind"] = ch.Kind switch { "C" => 0, "A" => 1, "D" => 2, _ => 0 },
            }).ToArray();
            return Http.Json(ctx, 200, list.Length == 0 ? null : new JsonArray(list));
        });
        app.MapMethods("/containers/{id}/archive", ["HEAD"], ctx =>
        {
            ContainerPathStat s = containers.StatPath(Http.Route(ctx, "id"), ArchivePath(ctx));
            ctx.Response.Headers["X-Docker-Container-Path-Stat"] = PathStat(s);
            ctx.Response.StatusCode = 200;
            return Task.CompletedTask;
        });
        app.MapGet("/containers/{id}/archive", async ctx =>
        {
            (ContainerPathStat stat, Action<Stream> write) = containers.ArchivePath(Http.Route(ctx, "id"), ArchivePath(ctx));
            ctx.Response.Headers["X-Docker-Container-Path-Stat"] = PathStat(stat);
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentType = "application/x-tar";
            Http.NoBuffering(ctx);
            await using Stream body = ctx.Response.BodyWriter.AsStream();
            await Task.Run(() =>
            {
                using var sync = new SyncWriteStream(body, ctx.RequestAborted);
                write(sync);
            }, ctx.RequestAborted);
        });
        app.MapPut("/containers/{id}/archive", async ctx =>
        {
            string id = Http.Route(ctx, "id"), path = ArchivePath(ctx);
            // The extraction is synchronous: the tar is spooled first (Kestrel refuses synchronous reads).
            string tmp = Path.Combine(Path.GetTempPath(), $"vessel-cp-{Guid.NewGuid():N}.tar");
            try
            {
                await using (var f = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16, useAsync: true))
                    await ctx.Request.Body.CopyToAsync(f, 1 << 16, ctx.RequestAborted);
                await Task.Run(() =>
                {
                    using var input = File.OpenRead(tmp);
                    containers.ExtractArchive(id, path, input);
                }, ctx.RequestAborted);
            }
            finally { File.Delete(tmp); }
            ctx.Response.StatusCode = 200;
        });
        app.MapPost("/containers/{id}/rename", ctx =>
        {
            containers.Rename(Http.Route(ctx, "id"), Http.Query(ctx, "name") ?? throw EngineException.Invalid("name is required"));
            ctx.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
        app.MapPost("/containers/{id}/pause", ctx =>
        {
            containers.Pause(Http.Route(ctx, "id"));
            ctx.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
        app.MapPost("/containers/{id}/unpause", ctx =>
        {
            containers.Unpause(Http.Route(ctx, "id"));
            ctx.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
        app.MapPost("/containers/{id}/update", async ctx =>
        {
            JsonElement body = await Http.Body(ctx) ?? throw EngineException.Invalid("update needs a body");
            string? restart = null;
            if (body.TryGetProperty("RestartPolicy", out JsonElement rp) && CreateMapping.Str(rp, "Name") is { Length: > 0 } policy)
                restart = policy == "on-failure" && CreateMapping.Long(rp, "MaximumRetryCount") is > 0 and var max ? $"on-failure:{max}" : policy;
            var known = new HashSet<string> { "Memory", "MemorySwap", "NanoCpus", "CpuQuota", "CpuPeriod", "CpuShares", "PidsLimit", "RestartPolicy" };
            foreach (JsonProperty p in body.EnumerateObject())
                if (!known.Contains(p.Name) && !CreateMapping.IsEmpty(p.Value)) throw DockerErrors.NotSupported($"updating {p.Name}");
            double? cpus = CreateMapping.Long(body, "NanoCpus") is > 0 and var nano ? nano / 1e9
                : CreateMapping.Long(body, "CpuQuota") is > 0 and var q ? q / (double)(CreateMapping.Long(body, "CpuPeriod") is > 0 and var per ? per : 100_000) : null;
            var req = new ContainerUpdateRequest
            {
                Memory = CreateMapping.Long(body, "Memory") is > 0 and var m ? m : null,
                MemorySwap = CreateMapping.Long(body, "MemorySwap") is long sw && sw != 0 ? sw : null, Cpus = cpus,
                CpuShares = CreateMapping.Long(body, "CpuShares") is > 0 and var sh ? sh : null,
                PidsLimit = CreateMapping.Long(body, "PidsLimit") is > 0 and var pl ? pl : null, RestartPolicy = restart,
            };
            ContainerUpdateResponse r = containers.Update(Http.Route(ctx, "id"), req);
            await Http.Json(ctx, 200, new JsonObject { ["Warnings"] = Http.Array(r.Warnings) });
        });
        app.MapPost("/commit", async ctx =>
        {
            string container = Http.Query(ctx, "container") ?? throw EngineException.Invalid("container is required");
            string? repo = Http.Query(ctx, "repo"), tag = Http.Query(ctx, "tag");
            JsonElement? body = await Http.Body(ctx);
            if (body is { } b && !CreateMapping.IsEmpty(b)) throw DockerErrors.NotSupported("a config body for commit (use changes)");
            var req = new ContainerCommitRequest
            {
                Name = string.IsNullOrEmpty(repo) ? null : string.IsNullOrEmpty(tag) ? repo : $"{repo}:{tag}",
                Comment = Http.Query(ctx, "comment"), Author = Http.Query(ctx, "author"),
                Changes = ctx.Request.Query["changes"].Where(c => !string.IsNullOrEmpty(c)).SelectMany(c => c!.Split('\n', StringSplitOptions.RemoveEmptyEntries)).ToList(),
                Pause = Http.Query(ctx, "pause") is not ("0" or "false" or "False"),
            };
            ContainerCommitResponse r = await Task.Run(() => containers.Commit(container, req), ctx.RequestAborted);
            await Http.Json(ctx, 201, new JsonObject { ["Id"] = r.Id });
        });
    }

    private static string ArchivePath(HttpContext ctx) =>
        Http.Query(ctx, "path") is { Length: > 0 } p ? p : throw EngineException.Invalid("path is required");

    /// <summary>X-Docker-Container-Path-Stat: base64 JSON with Go's os.FileMode bits (the CLI asks IsDir() of them).</summary>
    private static string PathStat(ContainerPathStat s)
    {
        uint mode = s.Mode & 0xFFF;
        switch (s.Mode & 0xF000)
        {
            case 0x4000: mode |= 1u << 31; break; // ModeDir
            case 0xA000: mode |= 1u << 27; break; // ModeSymlink
            case 0x1000: mode |= 1u << 25; break; // ModeNamedPipe
            case 0xC000: mode |= 1u << 24; break; // ModeSocket
            case 0x2000: mode |= (1u << 26) | (1u << 21); break; // ModeDevice | ModeCharDevice
            case 0x6000: mode |= 1u << 26; break; // ModeDevice
        }
        var o = new JsonObject
        {
            ["name"] = s.Name, ["size"] = s.Size, ["mode"] = mode, ["mtime"] = Http.Time(s.Mtime), ["linkTarget"] = s.LinkTarget ?? "",
        };
        return Convert.ToBase64String(Encoding.UTF8.GetBytes(o.ToJsonString()));
    }

    /// <summary>docker's stats JSON (what `docker stats` computes CPU % and memory from).</summary>
    private static JsonObject Stats(ContainerStats s)
    {
        static JsonObject Cpu(ulong total, ulong system, int cpus) => new()
        {
            ["cpu_usage"] = new JsonObject { ["total_usage"] = total, ["usage_in_kernelmode"] = 0, ["usage_in_usermode"] = 0 },
            ["system_cpu_usage"] = system, ["online_cpus"] = cpus,
            ["throttling_data"] = new JsonObject { ["periods"] = 0, ["throttled_periods"] = 0, ["throttled_time"] = 0 },
        };
        return new JsonObject
        {
            ["read"] = Http.Time(s.Read), ["preread"] = Http.Time(s.Read.AddSeconds(-1)),
            ["pids_stats"] = new JsonObject { ["current"] = s.Pids, ["limit"] = s.PidsLimit },
            ["blkio_stats"] = new JsonObject
            {
                ["io_service_bytes_recursive"] = new JsonArray(
                    new JsonObject { ["major"] = 0, ["minor"] = 0, ["op"] = "read", ["value"] = s.BlockRead },
                    new JsonObject { ["major"] = 0, ["minor"] = 0, ["op"] = "write", ["value"] = s.BlockWrite }),
            },
            ["num_procs"] = 0, ["storage_stats"] = new JsonObject(),
            ["cpu_stats"] = Cpu(s.CpuTotal, s.SystemCpu, s.OnlineCpus),
            ["precpu_stats"] = Cpu(s.PreCpuTotal, s.PreSystemCpu, s.OnlineCpus),
            ["memory_stats"] = new JsonObject { ["usage"] = s.MemoryUsage, ["stats"] = new JsonObject(), ["limit"] = s.MemoryLimit },
            ["name"] = "/" + s.Name, ["id"] = s.Id,
            ["networks"] = new JsonObject { ["eth0"] = new JsonObject { ["rx_bytes"] = s.NetRx, ["tx_bytes"] = s.NetTx, ["rx_packets"] = 0, ["tx_packets"] = 0, ["rx_errors"] = 0, ["tx_errors"] = 0, ["rx_dropped"] = 0, ["tx_dropped"] = 0 } },
        };
    }

    internal static string Invariant(long n) => n.ToString(CultureInfo.InvariantCulture);
}
