using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Events;

namespace Vessel.DockerApi;

/// <summary>/_ping, /version, /info, /system/df, /events.</summary>
internal static class SystemEndpoints
{
    public static void Map(WebApplication app, DockerContext d)
    {
        VesselEngine engine = d.Engine;
        app.MapMethods("/_ping", ["GET", "HEAD"], async ctx =>
        {
            var h = ctx.Response.Headers;
            h["API-Version"] = DockerServer.ApiVersion;
            h["Docker-Experimental"] = "false";
            h["OSType"] = "linux";
            // "1": the classic builder (POST /build with a context tar), not BuildKit's session protocol.
            h["Builder-Version"] = "1";
            h.CacheControl = "no-cache, no-store, must-revalidate";
            h.Pragma = "no-cache";
            ctx.Response.ContentType = "text/plain; charset=utf-8";
            ctx.Response.StatusCode = 200;
            ctx.Response.ContentLength = 2;
            if (ctx.Request.Method == "GET") await ctx.Response.WriteAsync("OK");
        });

        app.MapGet("/version", ctx =>
        {
            VersionResponse v = VesselEngine.Version();
            var details = new JsonObject
            {
                ["ApiVersion"] = DockerServer.ApiVersion, ["Arch"] = v.Arch, ["BuildTime"] = "", ["Experimental"] = "false",
                ["GitCommit"] = "", ["GoVersion"] = "", ["KernelVersion"] = v.Kernel, ["MinAPIVersion"] = DockerServer.MinApiVersion, ["Os"] = v.Os,
            };
            var o = new JsonObject
            {
                ["Platform"] = new JsonObject { ["Name"] = "Vessel" },
                ["Components"] = new JsonArray(new JsonObject { ["Name"] = "Engine", ["Version"] = v.Version, ["Details"] = details }),
                ["Version"] = v.Version, ["ApiVersion"] = DockerServer.ApiVersion, ["MinAPIVersion"] = DockerServer.MinApiVersion,
                ["GitCommit"] = "", ["GoVersion"] = "", ["Os"] = v.Os, ["Arch"] = v.Arch, ["KernelVersion"] = v.Kernel, ["BuildTime"] = "",
            };
            return Http.Json(ctx, 200, o);
        });

        app.MapGet("/info", ctx => Http.Json(ctx, 200, Info(engine)));
        app.MapGet("/system/df", ctx => Http.Json(ctx, 200, DiskUsage(engine)));
        app.MapGet("/events", ctx => Events(ctx, d));
    }

    private static JsonObject Info(VesselEngine engine)
    {
        SystemInfoResponse i = engine.Info();
        var all = engine.Containers.List(all: true);
        int running = all.Count(c => c.State.Status == ContainerStatus.Running);
        long memTotal = 0;
        try
        {
            string? line = File.ReadLines("/proc/meminfo").FirstOrDefault(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
            if (line is not null) memTotal = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { }
        string os = "Linux";
        try
        {
            string? pretty = File.ReadLines("/etc/os-release").FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal));
            if (pretty is not null) os = pretty["PRETTY_NAME=".Length..].Trim('"');
        }
        catch (IOException) { }
        string runtime = i.Runtime.Path ?? "vessel-runc";
        return new JsonObject
        {
            // A stable id per state root, as dockerd keeps one in its engine-id file.
            ["ID"] = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(i.StateRoot)))[..48],
            ["Containers"] = all.Count, ["ContainersRunning"] = running, ["ContainersPaused"] = 0, ["ContainersStopped"] = all.Count - running,
            ["Images"] = i.Images, ["Driver"] = "overlay2",
            ["DriverStatus"] = new JsonArray(new JsonArray("Backing Filesystem", "extfs"), new JsonArray("Supports d_type", "true")),
            ["Plugins"] = new JsonObject
            {
                ["Volume"] = new JsonArray("local"), ["Network"] = new JsonArray("bridge", "host", "null"), ["Authorization"] = null, ["Log"] = new JsonArray("json-file"),
            },
            ["MemoryLimit"] = true, ["SwapLimit"] = false, ["KernelMemory"] = false, ["KernelMemoryTCP"] = false,
            ["CpuCfsPeriod"] = true, ["CpuCfsQuota"] = true, ["CPUShares"] = false, ["CPUSet"] = false, ["PidsLimit"] = true,
            ["IPv4Forwarding"] = true, ["BridgeNfIptables"] = false, ["BridgeNfIp6tables"] = false, ["Debug"] = false,
            ["NFd"] = Directory.Exists("/proc/self/fd") ? Directory.GetFileSystemEntries("/proc/self/fd").Length : 0,
            ["OomKillDisable"] = false, ["NGoroutines"] = Environment.ProcessorCount, ["SystemTime"] = DateTimeOffset.Now.ToString("o", CultureInfo.InvariantCulture),
            ["LoggingDriver"] = "json-file", ["CgroupDriver"] = "cgroupfs", ["CgroupVersion"] = i.CgroupMode == "v2" ? "2" : "1",
            ["NEventsListener"] = engine.Events.SubscriberCount, ["KernelVersion"] = i.Kernel, ["OperatingSystem"] = os, ["OSVersion"] = "",
            ["OSType"] = "linux", ["Architecture"] = RuntimeArch(), ["IndexServerAddress"] = "https://index.docker.io/v1/",
            ["RegistryConfig"] = new JsonObject
            {
                ["AllowNondistributableArtifactsCIDRs"] = new JsonArray(), ["AllowNondistributableArtifactsHostnames"] = new JsonArray(),
                ["InsecureRegistryCIDRs"] = new JsonArray("127.0.0.0/8"),
                ["IndexConfigs"] = new JsonObject
                {
                    ["docker.io"] = new JsonObject { ["Name"] = "docker.io", ["Mirrors"] = new JsonArray(), ["Secure"] = true, ["Official"] = true },
                },
                ["Mirrors"] = new JsonArray(),
            },
            ["NCPU"] = Environment.ProcessorCount, ["MemTotal"] = memTotal, ["GenericResources"] = null, ["DockerRootDir"] = i.StateRoot,
            ["HttpProxy"] = "", ["HttpsProxy"] = "", ["NoProxy"] = "", ["Name"] = Environment.MachineName, ["Labels"] = new JsonArray(),
            ["ExperimentalBuild"] = false, ["ServerVersion"] = i.Version,
            ["Runtimes"] = new JsonObject { ["vessel-runc"] = new JsonObject { ["path"] = runtime } }, ["DefaultRuntime"] = "vessel-runc",
            ["Swarm"] = new JsonObject
            {
                ["NodeID"] = "", ["NodeAddr"] = "", ["LocalNodeState"] = "inactive", ["ControlAvailable"] = false, ["Error"] = "", ["RemoteManagers"] = null,
            },
            ["LiveRestoreEnabled"] = true, ["Isolation"] = "", ["InitBinary"] = "",
            ["ContainerdCommit"] = new JsonObject { ["ID"] = "", ["Expected"] = "" },
            ["RuncCommit"] = new JsonObject { ["ID"] = i.Runtime.Version ?? "", ["Expected"] = i.Runtime.Version ?? "" },
            ["InitCommit"] = new JsonObject { ["ID"] = "", ["Expected"] = "" },
            ["SecurityOptions"] = new JsonArray("name=seccomp,profile=default"),
            ["Warnings"] = new JsonArray(),
        };
    }

    /// <summary>uname -m, as docker reports Architecture in /info (x86_64, not amd64).</summary>
    private static string RuntimeArch() => VesselEngine.Arch switch { "amd64" => "x86_64", "arm64" => "aarch64", var a => a };

    private static JsonObject DiskUsage(VesselEngine engine)
    {
        DiskUsageResponse df = engine.Transfer.DiskUsage();
        var sizes = df.Images.ToDictionary(i => i.Digest);
        var images = ImageEndpoints.List(engine, all: true, null).Select(x =>
        {
            if (sizes.TryGetValue(x.Digest, out var u))
            {
                x.Node["Size"] = u.Size;
                x.Node["SharedSize"] = u.SharedSize;
                x.Node["Containers"] = u.Containers;
            }
            return (JsonNode?)x.Node;
        }).ToArray();
        var containers = ContainerEndpoints.Summaries(engine, all: true, new Filters(), sizes: true);
        return new JsonObject
        {
            ["LayersSize"] = df.ImagesSize,
            ["Images"] = new JsonArray(images),
            ["Containers"] = containers,
            ["Volumes"] = new JsonArray(),
            ["BuildCache"] = new JsonArray(),
        };
    }

    // ---- events ----------------------------------------------------------------------------------------------

    private static readonly string[] DockerTypes = ["container", "image", "volume", "network", "daemon", "plugin", "service", "node", "secret", "config"];

    private static async Task Events(HttpContext ctx, DockerContext d)
    {
        Filters f = Filters.Parse(ctx, "type", "event", "container", "image", "label", "daemon", "volume", "network");
        long? since = Seconds(Http.Query(ctx, "since"), "since");
        long? until = Seconds(Http.Query(ctx, "until"), "until");
        var engineFilter = new EventFilter();
        foreach (string t in f.Get("type")) engineFilter.Add("type", t);
        using CancellationTokenSource cts = d.Linked(ctx);
        await Http.StartStream(ctx, "application/json");
        try
        {
            await foreach (EventMessage e in d.Engine.Events.Subscribe(engineFilter, since, until, cts.Token))
            {
                if (!DockerTypes.Contains(e.Type)) continue; // registry/system events have no docker counterpart
                JsonObject m = Event(e);
                var attrs = e.Attributes ?? new Dictionary<string, string>();
                string actor = (string)m["Actor"]!["ID"]!;
                if (!f.Match("event", v => v == e.Action || e.Action.StartsWith(v + ":", StringComparison.Ordinal))) continue;
                if (!f.Match("container", v => e.Type == "container" && (e.Id.StartsWith(v, StringComparison.Ordinal) || e.Name == v))) continue;
                if (!f.Match("image", v => e.Type == "image" ? Names.Familiar(e.Name ?? "") == v || e.Name == v || e.Id == v
                        : attrs.TryGetValue("image", out var img) && (img == v || Names.Familiar(img) == v))) continue;
                if (!f.Match("daemon", v => e.Type == "daemon")) continue;
                if (!f.Match("volume", v => e.Type == "volume" && (actor == v))) continue;
                if (!f.Match("network", v => e.Type == "network" && (actor == v || e.Name == v))) continue;
                if (!f.MatchLabels(attrs)) continue;
                await Http.Line(ctx, m, cts.Token);
            }
        }
        catch (OperationCanceledException) { }
    }

    /// <summary>One engine event in docker's shape: <c>{status, id, from, Type, Action, Actor {ID, Attributes}, scope, time, timeNano}</c>.</summary>
    public static JsonObject Event(EventMessage e)
    {
        var attrs = new JsonObject();
        foreach (var (k, v) in e.Attributes ?? new Dictionary<string, string>()) attrs[k] = v;
        if (e.Name is not null && e.Type != "image") attrs["name"] = e.Name;
        string actor = e.Id;
        if (e.Type == "image")
        {
            // dockerd names images by name for pull/push/tag/untag/load and by id for delete.
            string name = Names.Familiar(e.Name ?? e.Id);
            actor = e.Action is "delete" or "import" ? e.Id : name;
            attrs["name"] = name;
        }
        var o = new JsonObject();
        if (e.Type is "container" or "image")
        {
            o["status"] = e.Action;
            o["id"] = actor;
            if (e.Type == "container" && e.Attributes?.TryGetValue("image", out var img) == true) o["from"] = Names.Familiar(img);
        }
        o["Type"] = e.Type;
        o["Action"] = e.Action;
        o["Actor"] = new JsonObject { ["ID"] = actor, ["Attributes"] = attrs };
        o["scope"] = "local";
        o["time"] = e.Time / 1_000_000_000;
        o["timeNano"] = e.Time;
        return o;
    }

    /// <summary>docker's since/until: unix seconds with an optional fraction ("1700000000.000000001"); the CLI converts
    /// durations and RFC 3339 times before sending.</summary>
    private static long? Seconds(string? v, string what)
    {
        if (string.IsNullOrEmpty(v)) return null;
        if (decimal.TryParse(v, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal s) && s >= 0 && s < 9_000_000_000m)
            return (long)(s * 1_000_000_000m);
        if (DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t))
            return (t.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks) * 100;
        throw EngineException.Invalid($"{what}={v}: expected unix seconds or an RFC 3339 time");
    }
}
