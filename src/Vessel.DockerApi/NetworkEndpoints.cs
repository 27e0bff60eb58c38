using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Networks;

namespace Vessel.DockerApi;

/// <summary>/networks: the engine's bridge networks in docker's shape. The engine's default network is docker's
/// <c>bridge</c>; <c>host</c> and <c>none</c> are listed as docker lists them (modes, not networks the engine stores).</summary>
internal static class NetworkEndpoints
{
    /// <summary>The two modes docker shows as networks; their ids are fixed (a hash of the name) so they never change.</summary>
    private static readonly string[] Builtins = ["host", "none"];

    public static void Map(WebApplication app, DockerContext d)
    {
        VesselEngine engine = d.Engine;
        NetworkService networks = engine.Networks;
        app.MapGet("/networks", ctx =>
        {
            Filters f = Filters.Parse(ctx, "name", "id", "label", "driver", "type", "dangling", "scope");
            var list = All(engine).Where(n => Match(f, n)).Select(n => (JsonNode?)n).ToArray();
            return Http.Json(ctx, 200, new JsonArray(list));
        });
        app.MapGet("/networks/{id}", ctx =>
        {
            string id = Http.Route(ctx, "id");
            if (Builtin(id) is { } b) return Http.Json(ctx, 200, b);
            return Http.Json(ctx, 200, Network(engine, Inspect(networks, id)));
        });
        app.MapPost("/networks/create", async ctx =>
        {
            JsonElement body = await Http.Body(ctx) ?? throw EngineException.Invalid("network config is missing (empty body)");
            NetworkCreateRequest req = CreateRequest(body);
            if (req.Name is "bridge" or "host" or "none")
                throw new EngineException(DockerErrors.Forbidden, $"operation is not permitted on predefined {req.Name} network");
            NetworkInfo n = await Task.Run(() => networks.Create(req), ctx.RequestAborted);
            await Http.Json(ctx, 201, new JsonObject { ["Id"] = n.Id, ["Warning"] = "" });
        });
        app.MapDelete("/networks/{id}", async ctx =>
        {
            string id = Http.Route(ctx, "id");
            if (Builtin(id) is not null || id == "bridge")
                throw new EngineException(DockerErrors.Forbidden, $"{id} is a pre-defined network and cannot be removed");
            await Task.Run(() => networks.Remove(id), ctx.RequestAborted);
            ctx.Response.StatusCode = 204;
        });
        app.MapPost("/networks/{id}/connect", async ctx =>
        {
            string id = Http.Route(ctx, "id");
            JsonElement body = await Http.Body(ctx) ?? throw EngineException.Invalid("connect body is missing");
            var c = engine.Containers.Get(CreateMapping.Str(body, "Container") ?? throw EngineException.Invalid("no Container given"));
            if (Builtin(id) is not null) throw DockerErrors.NotSupported($"connecting a container to the {id} network (set it at create)");
            (string? ip, List<string>? aliases) = Endpoint(body.TryGetProperty("EndpointConfig", out JsonElement ec) ? ec : default, $"EndpointConfig");
            NetworkMapping.FreeStaticAddress(engine, id, ip);
            await Task.Run(() => networks.Connect(id, c.Id, c.Name, ip, aliases), ctx.RequestAborted);
            ctx.Response.StatusCode = 200;
        });
        app.MapPost("/networks/{id}/disconnect", async ctx =>
        {
            string id = Http.Route(ctx, "id");
            JsonElement body = await Http.Body(ctx) ?? throw EngineException.Invalid("disconnect body is missing");
            var c = engine.Containers.Get(CreateMapping.Str(body, "Container") ?? throw EngineException.Invalid("no Container given"));
            if (Builtin(id) is not null) throw DockerErrors.NotSupported($"disconnecting a container from the {id} network");
            await Task.Run(() => networks.Disconnect(id, c.Id, c.Name, CreateMapping.Bool(body, "Force")), ctx.RequestAborted);
            ctx.Response.StatusCode = 200;
        });
        app.MapPost("/networks/prune", async ctx =>
        {
            Filters f = Filters.Parse(ctx, "label", "label!", "until");
            if (f.Has("until")) throw DockerErrors.NotSupported("the until filter of network prune");
            var deleted = new JsonArray();
            foreach (NetworkInfo n in networks.List())
            {
                if (n.Default || n.Endpoints is { Count: > 0 } || !f.MatchLabels(n.Labels) || !NotLabels(f, n.Labels)) continue;
                try
                {
                    await Task.Run(() => networks.Remove(n.Id), ctx.RequestAborted);
                    deleted.Add((JsonNode)n.Name);
                }
                catch (EngineException) { } // connected meanwhile: kept, as docker keeps networks in use
            }
            await Http.Json(ctx, 200, new JsonObject { ["NetworksDeleted"] = deleted });
        });
    }

    // ---- create ----------------------------------------------------------------------------------------------

    /// <summary>docker's network create body → the engine's request; what the engine cannot do is refused by name.</summary>
    internal static NetworkCreateRequest CreateRequest(JsonElement body)
    {
        if (body.ValueKind != JsonValueKind.Object) throw EngineException.Invalid("network config must be a JSON object");
        string name = CreateMapping.Str(body, "Name") ?? "";
        if (name.Length == 0) throw EngineException.Invalid("network name is empty");
        foreach (JsonProperty p in body.EnumerateObject())
            if (p.Name is not ("Name" or "Driver" or "Internal" or "Labels" or "IPAM" or "CheckDuplicate" or "Attachable" or "Options" or "EnableIPv6"
                or "Ingress" or "Scope" or "ConfigOnly" or "ConfigFrom") && !CreateMapping.IsEmpty(p.Value))
                throw DockerErrors.NotSupported($"network option {p.Name}");
        if (CreateMapping.Str(body, "Driver") is { Length: > 0 } driver && driver != "bridge") throw DockerErrors.NotSupported($"the {driver} network driver");
        if (CreateMapping.Bool(body, "EnableIPv6")) throw DockerErrors.NotSupported("IPv6 networks (EnableIPv6)");
        if (CreateMapping.Bool(body, "Ingress")) throw DockerErrors.NotSupported("ingress networks (swarm mode)");
        if (CreateMapping.Bool(body, "ConfigOnly")) throw DockerErrors.NotSupported("config-only networks");
        if (body.TryGetProperty("ConfigFrom", out JsonElement cf) && !CreateMapping.IsEmpty(cf)) throw DockerErrors.NotSupported("networks created from a config network (ConfigFrom)");
        if (CreateMapping.Str(body, "Scope") is { Length: > 0 } scope && scope != "local") throw DockerErrors.NotSupported($"the {scope} network scope");
        if (body.TryGetProperty("Options", out JsonElement opts) && !CreateMapping.IsEmpty(opts))
            throw DockerErrors.NotSupported($"network driver options ({string.Join(", ", opts.EnumerateObject().Select(o => o.Name))})");
        string? subnet = null, gateway = null;
        if (body.TryGetProperty("IPAM", out JsonElement ipam) && ipam.ValueKind == JsonValueKind.Object)
        {
            if (CreateMapping.Str(ipam, "Driver") is { Length: > 0 } id && id != "default") throw DockerErrors.NotSupported($"the {id} IPAM driver");
            if (ipam.TryGetProperty("Options", out JsonElement io) && !CreateMapping.IsEmpty(io)) throw DockerErrors.NotSupported("IPAM options");
            var configs = ipam.TryGetProperty("Config", out JsonElement cfg) && cfg.ValueKind == JsonValueKind.Array
                ? cfg.EnumerateArray().Where(c => !CreateMapping.IsEmpty(c)).ToList() : [];
            if (configs.Count > 1) throw DockerErrors.NotSupported("more than one subnet per network");
            if (configs.Count == 1)
            {
                JsonElement c = configs[0];
                if (CreateMapping.Str(c, "IPRange") is { Length: > 0 }) throw DockerErrors.NotSupported("IPAM IPRange (--ip-range)");
                if (c.TryGetProperty("AuxiliaryAddresses", out JsonElement aux) && !CreateMapping.IsEmpty(aux))
                    throw DockerErrors.NotSupported("IPAM AuxiliaryAddresses (--aux-address)");
                subnet = CreateMapping.Str(c, "Subnet") is { Length: > 0 } s ? s : null;
                gateway = CreateMapping.Str(c, "Gateway") is { Length: > 0 } g ? g : null;
                if (subnet?.Contains(':', StringComparison.Ordinal) == true) throw DockerErrors.NotSupported("IPv6 subnets");
                if (gateway is not null && subnet is null) throw EngineException.Invalid("a gateway needs a subnet");
            }
        }
        var labels = body.TryGetProperty("Labels", out JsonElement l) && l.ValueKind == JsonValueKind.Object
            ? l.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()! : p.Value.ToString())
            : null;
        return new NetworkCreateRequest
        {
            Name = name, Subnet = subnet, Gateway = gateway, Internal = CreateMapping.Bool(body, "Internal"),
            Labels = labels is { Count: > 0 } ? labels : null,
        };
    }

    /// <summary>An EndpointSettings object (connect's EndpointConfig, create's NetworkingConfig.EndpointsConfig[net])
    /// → the requested address and aliases; IPv6, MAC addresses and driver options are refused by name.</summary>
    internal static (string? Ip, List<string>? Aliases) Endpoint(JsonElement ec, string where)
    {
        if (ec.ValueKind != JsonValueKind.Object) return (null, null);
        string? ip = null;
        if (ec.TryGetProperty("IPAMConfig", out JsonElement ipam) && ipam.ValueKind == JsonValueKind.Object)
        {
            ip = CreateMapping.Str(ipam, "IPv4Address") is { Length: > 0 } a ? a : null;
            if (CreateMapping.Str(ipam, "IPv6Address") is { Length: > 0 }) throw DockerErrors.NotSupported($"{where}.IPAMConfig.IPv6Address (IPv6)");
            if (ipam.TryGetProperty("LinkLocalIPs", out JsonElement ll) && !CreateMapping.IsEmpty(ll)) throw DockerErrors.NotSupported($"{where}.IPAMConfig.LinkLocalIPs");
        }
        // Links: on a user network they name containers its DNS answers for already (docker-compose sends them for
        // `links:`); create decides (and warns) in NetworkMapping, connect takes them as they are.
        if (ec.TryGetProperty("DriverOpts", out JsonElement dopts) && !CreateMapping.IsEmpty(dopts)) throw DockerErrors.NotSupported($"{where}.DriverOpts");
        if (CreateMapping.Str(ec, "MacAddress") is { Length: > 0 }) throw DockerErrors.NotSupported($"{where}.MacAddress");
        // IPAddress, Gateway, NetworkID, EndpointID…: what inspect shows; clients echo them back, they are not requests.
        var aliases = CreateMapping.Strings(ec, "Aliases")?.Where(a => a.Length > 0).Distinct().ToList();
        return (ip, aliases is { Count: > 0 } ? aliases : null);
    }

    // ---- shapes ----------------------------------------------------------------------------------------------

    private static NetworkInfo Inspect(NetworkService networks, string id)
    {
        try { return networks.Inspect(id); }
        catch (EngineException e) when (e.Code == ErrorCodes.NotFound && id is "bridge" or "default")
        {
            // The default network is made on first use; docker always has one, so it is made now.
            return networks.Default();
        }
    }

    /// <summary>Every network docker would list: the default one (made now if it was not yet), user networks, host and none.</summary>
    private static IEnumerable<JsonObject> All(VesselEngine engine)
    {
        var list = engine.Networks.List().ToList();
        if (!list.Any(n => n.Default))
        {
            try { list.Insert(0, engine.Networks.Default()); }
            catch (EngineException) { } // no nftables: no default network either, as the CLI would say at run
        }
        foreach (NetworkInfo n in list) yield return Network(engine, n);
        foreach (string b in Builtins) yield return Builtin(b)!;
    }

    private static JsonObject? Builtin(string idOrName)
    {
        foreach (string b in Builtins)
        {
            string id = BuiltinId(b);
            if (idOrName == b || (idOrName.Length >= 3 && id.StartsWith(idOrName, StringComparison.Ordinal)))
                return new JsonObject
                {
                    ["Name"] = b, ["Id"] = id, ["Created"] = Http.Time(DateTimeOffset.UnixEpoch), ["Scope"] = "local", ["Driver"] = b == "host" ? "host" : "null",
                    ["EnableIPv6"] = false, ["IPAM"] = new JsonObject { ["Driver"] = "default", ["Options"] = null, ["Config"] = new JsonArray() },
                    ["Internal"] = false, ["Attachable"] = false, ["Ingress"] = false, ["ConfigFrom"] = new JsonObject { ["Network"] = "" },
                    ["ConfigOnly"] = false, ["Containers"] = new JsonObject(), ["Options"] = new JsonObject(), ["Labels"] = new JsonObject(),
                };
        }
        return null;
    }

    internal static string BuiltinId(string name) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes("vessel-network/" + name)));

    /// <summary>docker has no endpoint ids to show for Vessel's endpoints; a stable hash of network and container stands in.</summary>
    internal static string EndpointId(string networkId, string owner) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(networkId + "/" + owner)));

    public static JsonObject Network(VesselEngine engine, NetworkInfo n)
    {
        var containers = new JsonObject();
        foreach (NetworkEndpoint e in n.Endpoints ?? [])
        {
            if (e.Kind != "container") continue;
            containers[e.Owner] = new JsonObject
            {
                ["Name"] = e.Name, ["EndpointID"] = EndpointId(n.Id, e.Owner), ["MacAddress"] = e.MacAddress,
                ["IPv4Address"] = $"{e.IpAddress}/{e.PrefixLen}", ["IPv6Address"] = "",
            };
        }
        var options = new JsonObject();
        if (n.Default)
        {
            // What docker shows on its bridge network (docker0), with Vessel's device.
            options["com.docker.network.bridge.default_bridge"] = "true";
            options["com.docker.network.bridge.name"] = n.Bridge;
        }
        return new JsonObject
        {
            ["Name"] = n.Name, ["Id"] = n.Id, ["Created"] = Http.Time(n.Created), ["Scope"] = "local", ["Driver"] = n.Driver, ["EnableIPv6"] = false,
            ["IPAM"] = new JsonObject
            {
                ["Driver"] = "default", ["Options"] = null,
                ["Config"] = new JsonArray(new JsonObject { ["Subnet"] = n.Subnet, ["Gateway"] = n.Gateway }),
            },
            ["Internal"] = n.Internal, ["Attachable"] = false, ["Ingress"] = false, ["ConfigFrom"] = new JsonObject { ["Network"] = "" },
            ["ConfigOnly"] = false, ["Containers"] = containers, ["Options"] = options, ["Labels"] = Http.Map(n.Labels),
        };
    }

    // ---- filters ---------------------------------------------------------------------------------------------

    private static bool Match(Filters f, JsonObject n)
    {
        string name = (string)n["Name"]!, id = (string)n["Id"]!, driver = (string)n["Driver"]!;
        bool builtin = name is "bridge" or "host" or "none";
        var labels = ((JsonObject)n["Labels"]!).ToDictionary(p => p.Key, p => (string?)p.Value ?? "");
        // docker matches name and id as regular expressions (a plain name matches as a substring).
        if (!f.Match("name", v => Pattern(v).IsMatch(name))) return false;
        if (!f.Match("id", v => Pattern(v).IsMatch(id))) return false;
        if (!f.Match("driver", v => v == driver)) return false;
        if (!f.Match("scope", v => v == "local")) return false;
        if (!f.Match("type", v => v == "builtin" ? builtin : v == "custom" ? !builtin : throw EngineException.Invalid($"invalid filter: 'type'='{v}'"))) return false;
        if (!f.Match("dangling", v => (v is "true" or "1") == (!builtin && ((JsonObject)n["Containers"]!).Count == 0))) return false;
        return f.MatchLabels(labels) && NotLabels(f, labels);
    }

    private static Regex Pattern(string pattern)
    {
        try { return new Regex(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(1)); }
        catch (ArgumentException) { return new Regex(Regex.Escape(pattern)); }
    }

    /// <summary>label!=key or label!=key=value: the network must not carry it.</summary>
    private static bool NotLabels(Filters f, IReadOnlyDictionary<string, string>? labels) => f.Get("label!").All(want =>
    {
        int eq = want.IndexOf('=');
        if (labels is null) return true;
        return eq < 0 ? !labels.ContainsKey(want) : !(labels.TryGetValue(want[..eq], out var v) && v == want[(eq + 1)..]);
    });
}
