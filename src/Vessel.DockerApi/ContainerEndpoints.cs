using System.Globalization;
using System.Text;
using System.Text.Json;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Containers;
using Vessel.Engine.Events;

namespace Vessel.DockerApi;

/// <summary>/containers/…: create, list, inspect, start, stop, restart, kill, wait, remove, logs, attach, prune.</summary>
internal static class ContainerEndpoints
{
    public static void Map(WebApplication app, DockerContext d)
    {
        VesselEngine engine = d.Engine;
        ContainerService containers = engine.Containers;

        app.MapPost("/containers/create", async ctx =>
        {
            JsonElement body = await Http.Body(ctx) ?? throw EngineException.Invalid("container config is missing (empty body)");
            (ContainerCreateRequest req, List<string> warnings) = CreateMapping.Map(body, Http.Query(ctx, "name"));
            NetworkMapping.FreeStaticAddress(engine, req.NetworkMode, req.Ip);
            ContainerCreateResponse r = await Task.Run(() => containers.Create(req), ctx.RequestAborted);
            await Http.Json(ctx, 201, new JsonObject { ["Id"] = r.Id, ["Warnings"] = Http.Array(warnings.Concat(r.Warnings)) });
        });
        app.MapGet("/containers/json", ctx =>
        {
            Filters f = Filters.Parse(ctx, "id", "name", "label", "status", "ancestor", "exited", "before", "since", "network");
            bool all = Http.Bool(ctx, "all") || f.Has("status") || f.Has("exited");
            JsonArray list = Summaries(engine, all, f, Http.Bool(ctx, "size"));
            if (Http.Int(ctx, "limit") is > 0 and int limit)
                list = new JsonArray(list.Take(limit).Select(n => n?.DeepClone()).ToArray());
            return Http.Json(ctx, 200, list);
        });
        app.MapPost("/containers/prune", async ctx =>
        {
            Filters f = Filters.Parse(ctx, "label", "until");
            if (f.Has("until")) throw DockerErrors.NotSupported("the until filter of container prune");
            var deleted = new JsonArray();
            foreach (var c in containers.List(all: true).Where(c => c.State.Status == ContainerStatus.Exited || c.State.Status == ContainerStatus.Created))
            {
                if (!f.MatchLabels(c.Labels)) continue;
                if (c.State.Status == ContainerStatus.Created) continue; // docker prunes stopped containers: created ones never ran
                try { await containers.RemoveAsync(c.Id, force: false, ctx.RequestAborted); deleted.Add((JsonNode)c.Id); }
                catch (EngineException) { }
            }
            await Http.Json(ctx, 200, new JsonObject { ["ContainersDeleted"] = deleted, ["SpaceReclaimed"] = 0 });
        });
        app.MapGet("/containers/{id}/json", ctx => Http.Json(ctx, 200, Inspect(engine, Http.Route(ctx, "id"))));
        app.MapPost("/containers/{id}/start", async ctx =>
        {
            if (!string.IsNullOrEmpty(Http.Query(ctx, "detachKeys"))) { } // only meaningful with stdin
            ContainerRecord c = containers.Get(Http.Route(ctx, "id"));
            if (c.State.Status == ContainerStatus.Running) { ctx.Response.StatusCode = 304; return; }
            try { await Task.Run(() => containers.Start(c.Id), ctx.RequestAborted); }
            catch (EngineException e)
            {
                // docker run maps its exit status from the message (127: not found, 126: permission denied), and
                // waits for an --rm container to be removed, which dockerd does when the start fails.
                int? code = containers.Get(c.Id).State.ExitCode;
                string msg = e.Message;
                if (code == 127 && !msg.Contains("no such file or directory", StringComparison.Ordinal) && !msg.Contains("executable file not found", StringComparison.Ordinal))
                    msg += ": executable file not found in $PATH";
                if (code == 126 && !msg.Contains("permission denied", StringComparison.Ordinal)) msg += ": permission denied";
                if (c.Config.Request.AutoRemove)
                {
                    try { await containers.RemoveAsync(c.Id, force: true, CancellationToken.None); }
                    catch (EngineException) { }
                }
                throw new EngineException(e.Code, msg, e);
            }
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/containers/{id}/stop", async ctx =>
        {
            ContainerRecord c = containers.Get(Http.Route(ctx, "id"));
            if (c.State.Status != ContainerStatus.Running) { ctx.Response.StatusCode = 304; return; }
            await containers.StopAsync(c.Id, Http.Int(ctx, "t") ?? 10, ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/containers/{id}/restart", async ctx =>
        {
            ContainerRecord c = containers.Get(Http.Route(ctx, "id"));
            await containers.StopAsync(c.Id, Http.Int(ctx, "t") ?? 10, ctx.RequestAborted);
            await Task.Run(() => containers.Start(c.Id), ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/containers/{id}/kill", ctx =>
        {
            ContainerRecord c = containers.Get(Http.Route(ctx, "id"));
            if (c.State.Status != ContainerStatus.Running) throw EngineException.Conflict($"Container {c.Id} is not running");
            containers.Kill(c.Id, Http.Query(ctx, "signal") is { Length: > 0 } s ? s : "SIGKILL");
            ctx.Response.StatusCode = 204;
            return Task.CompletedTask;
        });
        app.MapDelete("/containers/{id}", async ctx =>
        {
            if (Http.Bool(ctx, "link")) throw DockerErrors.NotSupported("removing links");
            // v (anonymous volumes): the engine creates none, so there is nothing more to remove.
            await containers.RemoveAsync(Http.Route(ctx, "id"), Http.Bool(ctx, "force"), ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/containers/{id}/wait", ctx => Wait(ctx, d));
        app.MapGet("/containers/{id}/logs", ctx => Logs(ctx, d));
        AttachEndpoints.Map(app, d);
    }

    // ---- list and inspect ----------------------------------------------------------------------------------

    public static JsonArray Summaries(VesselEngine engine, bool all, Filters f, bool sizes)
    {
        var rows = new List<JsonNode?>();
        DateTimeOffset now = DateTimeOffset.UtcNow;
        foreach (ContainerSummary c in engine.Containers.List(all))
        {
            string state = c.State.Status;
            if (!f.Match("id", v => c.Id.StartsWith(v, StringComparison.Ordinal))) continue;
            if (!f.Match("name", v => c.Name.Contains(v.TrimStart('/'), StringComparison.Ordinal))) continue;
            if (!f.Match("status", v => v == state)) continue;
            if (!f.Match("ancestor", v => c.Image == v || Names.Familiar(c.Image) == v || c.ImageId.StartsWith(v, StringComparison.Ordinal) || c.ImageId == "sha256:" + v)) continue;
            if (!f.Match("exited", v => state == ContainerStatus.Exited && c.State.ExitCode?.ToString(CultureInfo.InvariantCulture) == v)) continue;
            if (!f.MatchLabels(c.Labels)) continue;
            if (f.Has("network") && !NetworkMapping.OnNetwork(engine, c.Id, f.Get("network"))) continue;
            if (f.Has("before") || f.Has("since")) throw DockerErrors.NotSupported("the before/since filters of container list");
            var o = new JsonObject
            {
                ["Id"] = c.Id, ["Names"] = new JsonArray("/" + c.Name), ["Image"] = c.Image, ["ImageID"] = c.ImageId, ["Command"] = c.Command,
                ["Created"] = c.Created.ToUnixTimeSeconds(), ["Ports"] = NetworkMapping.SummaryPorts(c.Ports), ["Labels"] = Http.Map(c.Labels),
                ["State"] = state, ["Status"] = Status(c.State, now),
                ["HostConfig"] = new JsonObject { ["NetworkMode"] = engine.Networks.ModeOf(c.Id) is { } mode && mode != "bridge" ? mode : "default" },
                ["NetworkSettings"] = new JsonObject { ["Networks"] = NetworkMapping.Networks(engine.Networks.Settings(c.Id), c.Id) }, ["Mounts"] = new JsonArray(),
            };
            if (sizes)
            {
                o["SizeRw"] = DirSize(Path.Combine(engine.Containers.Dir, c.Id, "upper"));
                o["SizeRootFs"] = 0;
            }
            rows.Add(o);
        }
        return new JsonArray(rows.ToArray());
    }

    private static long DirSize(string dir)
    {
        try { return new DirectoryInfo(dir).EnumerateFiles("*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).Sum(f => f.Length); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return 0; }
    }

    /// <summary>docker ps's STATUS column: "Up 5 seconds", "Exited (0) 2 minutes ago", "Created".</summary>
    private static string Status(ContainerStateInfo s, DateTimeOffset now) => s.Status switch
    {
        ContainerStatus.Running or ContainerStatus.Paused => "Up " + Names.HumanDuration(now - (s.StartedAt ?? now)) + (s.Paused ? " (Paused)" : HealthState.Suffix(s.Health)),
        ContainerStatus.Restarting => $"Restarting ({s.ExitCode ?? 0}) {Names.HumanDuration(now - (s.FinishedAt ?? now))} ago",
        ContainerStatus.Exited when s.FinishedAt is { } f => $"Exited ({s.ExitCode ?? 0}) {Names.HumanDuration(now - f)} ago",
        ContainerStatus.Exited => $"Exited ({s.ExitCode ?? 0})",
        _ => "Created",
    };

    /// <summary>Config.Entrypoint and Config.Cmd from the command the container runs: what the create request gave,
    /// and the rest of the command for the other part. A container that took both from its image has no request to
    /// split by, so its whole command is its Cmd (right for images without an ENTRYPOINT, like busybox).</summary>
    internal static (List<string>? Entrypoint, List<string> Cmd) SplitCommand(List<string> argv, ContainerCreateRequest req)
    {
        if (req.Entrypoint is { Count: > 0 } e && e.Count <= argv.Count) return (e, argv[e.Count..]);
        if (req.Cmd is { Count: > 0 } c && c.Count <= argv.Count) return (argv.Count > c.Count ? argv[..^c.Count] : null, c);
        return (null, argv);
    }

    public static JsonObject Inspect(VesselEngine engine, string idOrName)
    {
        ContainerRecord rec = engine.Containers.Get(idOrName);
        ContainerInspect c = engine.Containers.Inspect(rec.Id);
        ContainerCreateRequest req = rec.Config.Request;
        ContainerStateInfo s = c.State;
        string dir = c.Bundle;
        (List<string>? entrypoint, List<string> cmd) = SplitCommand([c.Path, .. c.Args], req);
        var config = new JsonObject
        {
            ["Hostname"] = c.Hostname ?? c.Id[..12], ["Domainname"] = "", ["User"] = req.User ?? "",
            ["AttachStdin"] = req.StdinOnce, ["AttachStdout"] = true, ["AttachStderr"] = true, ["Tty"] = req.Tty, ["OpenStdin"] = req.OpenStdin, ["StdinOnce"] = req.StdinOnce,
            ["Env"] = Http.Array(c.Env), ["Cmd"] = Http.Array(cmd.Count > 0 ? cmd : null),
            ["Image"] = c.Image, ["Volumes"] = null, ["WorkingDir"] = c.WorkingDir ?? "",
            ["Entrypoint"] = entrypoint is null ? null : Http.Array(entrypoint), ["OnBuild"] = null, ["Labels"] = Http.Map(req.Labels),
        };
        var hostConfig = new JsonObject
        {
            ["Binds"] = req.Binds is null ? null : Http.Array(req.Binds), ["ContainerIDFile"] = "", ["LogConfig"] = new JsonObject { ["Type"] = "json-file", ["Config"] = new JsonObject() },
            ["NetworkMode"] = NetworkMapping.Mode(req), ["PortBindings"] = NetworkMapping.PortBindings(req),
            ["RestartPolicy"] = RestartPolicy(req.Restart), ["AutoRemove"] = req.AutoRemove,
            ["VolumeDriver"] = "", ["VolumesFrom"] = null, ["CapAdd"] = req.CapAdd is null ? null : Http.Array(req.CapAdd),
            ["CapDrop"] = req.CapDrop is null ? null : Http.Array(req.CapDrop), ["CgroupnsMode"] = "private", ["Dns"] = new JsonArray(),
            ["DnsOptions"] = new JsonArray(), ["DnsSearch"] = new JsonArray(), ["ExtraHosts"] = null, ["GroupAdd"] = null, ["IpcMode"] = "private",
            ["Cgroup"] = "", ["Links"] = null, ["OomScoreAdj"] = 0, ["PidMode"] = "", ["Privileged"] = req.Privileged, ["PublishAllPorts"] = req.PublishAll,
            ["ReadonlyRootfs"] = req.ReadOnly, ["SecurityOpt"] = req.SecurityOpt is null ? null : Http.Array(req.SecurityOpt), ["UTSMode"] = "", ["UsernsMode"] = "", ["ShmSize"] = 67108864,
            ["Runtime"] = "vessel-runc", ["ConsoleSize"] = new JsonArray(0, 0), ["Isolation"] = "", ["CpuShares"] = 0,
            ["Memory"] = req.Memory ?? 0, ["NanoCpus"] = req.Cpus is double cpus ? (long)(cpus * 1e9) : 0, ["CgroupParent"] = "",
            ["PidsLimit"] = req.PidsLimit, ["Mounts"] = null, ["Init"] = req.Init ? true : null,
            ["Tmpfs"] = req.Tmpfs is null ? null : Http.Map(req.Tmpfs.Select(t => t.Split(':', 2)).Select(p => KeyValuePair.Create(p[0], p.Length > 1 ? p[1] : ""))),
        };
        JsonObject network = NetworkMapping.Settings(c, req);
        var inspect = new JsonObject
        {
            ["Id"] = c.Id, ["Created"] = Http.Time(c.Created), ["Path"] = c.Path, ["Args"] = Http.Array(c.Args),
            ["State"] = new JsonObject
            {
                ["Status"] = s.Status, ["Running"] = s.Running, ["Paused"] = s.Paused, ["Restarting"] = s.Status == ContainerStatus.Restarting,
                ["OOMKilled"] = false,
                ["Dead"] = false, ["Pid"] = s.Pid, ["ExitCode"] = s.ExitCode ?? 0, ["Error"] = s.Error ?? "",
                ["StartedAt"] = Http.Time(s.StartedAt), ["FinishedAt"] = Http.Time(s.FinishedAt),
            },
            ["Image"] = c.ImageId, ["ResolvConfPath"] = Path.Combine(dir, "resolv.conf"), ["HostnamePath"] = Path.Combine(dir, "hostname"),
            ["HostsPath"] = Path.Combine(dir, "hosts"), ["LogPath"] = c.LogPath, ["Name"] = "/" + c.Name, ["RestartCount"] = c.RestartCount,
            ["Driver"] = "overlay2", ["Platform"] = "linux", ["MountLabel"] = "", ["ProcessLabel"] = "", ["AppArmorProfile"] = "",
            ["ExecIDs"] = null, ["HostConfig"] = hostConfig,
            ["GraphDriver"] = new JsonObject
            {
                ["Name"] = "overlay2",
                ["Data"] = new JsonObject { ["MergedDir"] = Path.Combine(dir, "rootfs"), ["UpperDir"] = Path.Combine(dir, "upper"), ["WorkDir"] = Path.Combine(dir, "work") },
            },
            ["Mounts"] = new JsonArray((c.Mounts ?? []).Select(m => (JsonNode?)new JsonObject
            {
                ["Type"] = m.Type, ["Name"] = m.Name, ["Source"] = m.Source, ["Destination"] = m.Destination, ["Driver"] = m.Type == "volume" ? "local" : null,
                ["Mode"] = "", ["RW"] = !m.ReadOnly, ["Propagation"] = m.Propagation ?? "",
            }).ToArray()),
            ["Config"] = config, ["NetworkSettings"] = network,
        };
        if (HealthState.Json(s.Health) is { } health) ((JsonObject)inspect["State"]!)["Health"] = health;
        return inspect;
    }

    private static JsonObject RestartPolicy(string? restart)
    {
        if (string.IsNullOrEmpty(restart)) return new JsonObject { ["Name"] = "no", ["MaximumRetryCount"] = 0 };
        string[] p = restart.Split(':', 2);
        return new JsonObject { ["Name"] = p[0], ["MaximumRetryCount"] = p.Length > 1 && int.TryParse(p[1], out int n) ? n : 0 };
    }

    // ---- wait ------------------------------------------------------------------------------------------------

    /// <summary>docker's wait conditions: <c>not-running</c> (default; a created or exited container answers at once),
    /// <c>next-exit</c>, <c>removed</c>. The 200 header goes out before the wait: docker run starts the container only
    /// once its wait request has been answered with headers.</summary>
    private static async Task Wait(HttpContext ctx, DockerContext d)
    {
        ContainerService containers = d.Engine.Containers;
        string condition = Http.Query(ctx, "condition") is { Length: > 0 } cond ? cond : "not-running";
        if (condition is not ("not-running" or "next-exit" or "removed"))
            throw EngineException.Invalid($"invalid condition: \"{condition}\" (not-running, next-exit or removed)");
        ContainerRecord c = containers.Get(Http.Route(ctx, "id"));
        using CancellationTokenSource cts = d.Linked(ctx);
        await using var events = new EventWatch(d, c.Id, EventWatch.Now(), cts.Token);
        await Http.StartStream(ctx, "application/json");

        int? code = null;
        ContainerRecord? now = TryGet(containers, c.Id);
        if (condition == "not-running" && (now is null || now.State.Status != ContainerStatus.Running))
            code = now?.State.ExitCode ?? 0;
        else if (condition == "removed" && now is null) code = c.State.ExitCode ?? 0;
        int? lastExit = now?.State.ExitCode;
        try
        {
            while (code is null && await events.NextAsync() is { } e)
            {
                if (e.Action == "die")
                {
                    lastExit = e.Attributes is not null && e.Attributes.TryGetValue("exitCode", out var x) && int.TryParse(x, out int n) ? n : 0;
                    if (condition != "removed") code = lastExit;
                }
                else if (e.Action == "destroy") code = lastExit ?? 0;
            }
        }
        catch (OperationCanceledException) { return; }
        await Http.Line(ctx, new JsonObject { ["StatusCode"] = code ?? 0, ["Error"] = null }, cts.Token);
    }

    private static ContainerRecord? TryGet(ContainerService containers, string id)
    {
        try { return containers.Get(id); }
        catch (EngineException) { return null; }
    }

    // ---- logs and attach -----------------------------------------------------------------------------------

    private static async Task Logs(HttpContext ctx, DockerContext d)
    {
        ContainerService containers = d.Engine.Containers;
        ContainerRecord c = containers.Get(Http.Route(ctx, "id"));
        bool stdout = Http.Bool(ctx, "stdout"), stderr = Http.Bool(ctx, "stderr");
        if (!stdout && !stderr) throw EngineException.Invalid("Bad parameters: you must choose at least one stream");
        bool follow = Http.Bool(ctx, "follow"), timestamps = Http.Bool(ctx, "timestamps");
        int? tail = Http.Query(ctx, "tail") is { Length: > 0 } t && t != "all"
            ? int.TryParse(t, out int n) ? (n < 0 ? null : n) : throw EngineException.Invalid($"tail={t}: expected a number or all") : null;
        DateTimeOffset? since = Time(Http.Query(ctx, "since"), "since");
        DateTimeOffset? until = Time(Http.Query(ctx, "until"), "until");
        using CancellationTokenSource cts = d.Linked(ctx);
        await Http.StartStream(ctx, Streams.Raw);
        Stream body = ctx.Response.Body;
        try
        {
            bool Wanted(ContainerLogLine l) => (l.Stream == "stdout" ? stdout : stderr) && (until is null || l.Time <= until);
            if (stdout && stderr || tail is null)
            {
                await foreach (ContainerLogLine l in containers.Logs(c.Id, follow, tail, since, cts.Token))
                {
                    if (until is not null && l.Time > until) break;
                    if (Wanted(l)) await WriteLog(body, l, timestamps, cts.Token);
                }
            }
            else
            {
                // tail counts the lines of the chosen stream: the history is read whole, then followed from its end.
                var history = new List<ContainerLogLine>();
                await foreach (ContainerLogLine l in containers.Logs(c.Id, false, null, since, cts.Token))
                    if (Wanted(l)) history.Add(l);
                foreach (ContainerLogLine l in history.TakeLast(tail.Value)) await WriteLog(body, l, timestamps, cts.Token);
                if (follow)
                    await foreach (ContainerLogLine l in containers.Logs(c.Id, true, 0, since, cts.Token))
                    {
                        if (until is not null && l.Time > until) break;
                        if (Wanted(l)) await WriteLog(body, l, timestamps, cts.Token);
                    }
            }
        }
        catch (OperationCanceledException) { }
    }

    private static Task WriteLog(Stream s, ContainerLogLine l, bool timestamps, CancellationToken ct)
    {
        string text = timestamps ? Timestamp(l.Time) + " " + l.Log : l.Log;
        return Streams.FrameAsync(s, l.Stream == "stderr" ? Streams.Stderr : Streams.Stdout, text, ct);
    }

    /// <summary>RFC 3339 with nanoseconds, as docker logs -t prints it.</summary>
    private static string Timestamp(DateTimeOffset t) =>
        t.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fffffff", CultureInfo.InvariantCulture) + "00Z";

    private static DateTimeOffset? Time(string? v, string what)
    {
        if (string.IsNullOrEmpty(v) || v == "0") return null;
        if (decimal.TryParse(v, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal secs))
            return DateTimeOffset.UnixEpoch.AddTicks((long)(secs * TimeSpan.TicksPerSecond));
        throw EngineException.Invalid($"{what}={v}: expected unix seconds");
    }

    internal static string Utf8(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);
}
