using System.Text.Json;
using Vessel.Api;
using Vessel.Engine;
using Vessel.Engine.Containers;
using Vessel.Network;

namespace Vessel.DockerApi;

/// <summary>The network half of a container in docker's shapes: create's NetworkMode, NetworkingConfig, PortBindings,
/// PublishAllPorts → the engine's request, and the engine's network settings → inspect's and list's NetworkSettings,
/// HostConfig.PortBindings and Ports.</summary>
internal static class NetworkMapping
{
    /// <summary>Adds the network options of a create body to the request the rest of the mapping built.</summary>
    public static ContainerCreateRequest Apply(JsonElement body, JsonElement host, ContainerCreateRequest req, List<string> warnings)
    {
        string? mode = CreateMapping.Str(host, "NetworkMode") is { Length: > 0 } m ? m : null;
        if (mode is "default" or "bridge") mode = null; // the engine's default network is docker's bridge
        if (CreateMapping.Bool(body, "NetworkDisabled")) mode = "none";

        // NetworkingConfig.EndpointsConfig: docker 1.41 takes one network at create (the one NetworkMode names);
        // more are connected afterwards (docker-compose does that).
        string? ip = null;
        List<string>? aliases = null;
        if (body.TryGetProperty("NetworkingConfig", out JsonElement nc) && nc.ValueKind == JsonValueKind.Object
            && nc.TryGetProperty("EndpointsConfig", out JsonElement eps) && eps.ValueKind == JsonValueKind.Object)
        {
            var list = eps.EnumerateObject().ToList();
            if (list.Count > 1)
                throw EngineException.Invalid($"Container cannot be connected to network endpoints: {string.Join(", ", list.Select(p => p.Name))}");
            if (list.Count == 1)
            {
                string net = list[0].Name;
                bool isDefault = net is "bridge" or "default";
                if (mode is null && !isDefault) mode = net;
                else if ((mode ?? "bridge") != net && !(mode is null && isDefault))
                    throw EngineException.Invalid($"conflicting options: NetworkMode {mode ?? "default"} and an endpoint config for network {net}");
                (ip, aliases) = NetworkEndpoints.Endpoint(list[0].Value, $"NetworkingConfig.EndpointsConfig.{net}");
            }
        }
        var links = (CreateMapping.Strings(host, "Links") ?? []).Concat(EndpointLinks(body)).Where(l => l.Length > 0).ToList();
        if (links.Count > 0)
        {
            // Legacy links on the default network are /etc/hosts entries of the linked containers (docker --link);
            // on a user network they only name containers the network's DNS already answers for, which is what
            // docker-compose sends (service names are network aliases there). Link aliases are not added.
            if (mode is null or "none" or "host" || mode.StartsWith("container:", StringComparison.Ordinal))
                throw DockerErrors.NotSupported("legacy container links (--link) outside a user-defined network; put the containers on a network and use their names");
            warnings.Add("links are not made on user networks: containers reach each other by name and network alias through the network's DNS");
        }

        var publish = new List<string>();
        if (host.ValueKind == JsonValueKind.Object && host.TryGetProperty("PortBindings", out JsonElement pb) && pb.ValueKind == JsonValueKind.Object)
            foreach (JsonProperty port in pb.EnumerateObject())
            {
                (string cport, string proto) = Port(port.Name);
                var bindings = port.Value.ValueKind == JsonValueKind.Array ? port.Value.EnumerateArray().ToList() : [];
                if (bindings.Count == 0) publish.Add($"{cport}/{proto}");
                foreach (JsonElement b in bindings)
                {
                    string hostIp = CreateMapping.Str(b, "HostIp") ?? "", hostPort = CreateMapping.Str(b, "HostPort") ?? "";
                    if (hostIp.Contains(':', StringComparison.Ordinal)) throw DockerErrors.NotSupported($"publishing on the IPv6 address {hostIp}");
                    if (hostIp == "0.0.0.0") hostIp = "";
                    string hostPart = hostPort is "" or "0" ? (hostIp.Length > 0 ? hostIp + "::" : "") : (hostIp.Length > 0 ? hostIp + ":" : "") + hostPort + ":";
                    publish.Add($"{hostPart}{cport}/{proto}");
                }
            }
        bool publishAll = CreateMapping.Bool(host, "PublishAllPorts");
        if (publishAll && body.TryGetProperty("ExposedPorts", out JsonElement exposed) && exposed.ValueKind == JsonValueKind.Object)
        {
            // The image's ExposedPorts are the engine's to publish; the ones set at create (docker run --expose) are added here.
            foreach (JsonProperty e in exposed.EnumerateObject())
            {
                (string cport, string proto) = Port(e.Name);
                if (!publish.Any(p => p.EndsWith(":" + cport + "/" + proto, StringComparison.Ordinal) || p == cport + "/" + proto))
                    publish.Add($"{cport}/{proto}");
            }
        }
        return req with
        {
            NetworkMode = mode, Ip = ip, NetworkAliases = aliases,
            Publish = publish.Count > 0 ? publish : null, PublishAll = publishAll,
        };
    }

    /// <summary>dockerd releases a container's address when it stops and asks for it again at start; Vessel keeps it
    /// from create to rm. docker-compose recreates a service with a fixed address (ipv4_address) by stopping the old
    /// container and creating the new one before removing the old: so a fixed address held by a container that is not
    /// running is taken from it here (that container is disconnected from the network, which is what a start would have
    /// failed on with dockerd: the address is in use).</summary>
    public static void FreeStaticAddress(VesselEngine engine, string? network, string? ip)
    {
        if (string.IsNullOrEmpty(ip) || network is null or "none" or "host" || network.StartsWith("container:", StringComparison.Ordinal)) return;
        NetworkInfo n;
        try { n = engine.Networks.Inspect(network); }
        catch (EngineException) { return; } // the create or connect itself says what is wrong
        foreach (NetworkEndpoint e in n.Endpoints ?? [])
        {
            if (e.Kind != "container" || e.IpAddress != ip) continue;
            ContainerRecord holder;
            try { holder = engine.Containers.Get(e.Owner); }
            catch (EngineException) { continue; }
            if (holder.State.Status is ContainerStatus.Running or ContainerStatus.Restarting or ContainerStatus.Paused) continue;
            engine.Networks.Disconnect(n.Id, holder.Id, holder.Name, force: true);
        }
    }

    private static IEnumerable<string> EndpointLinks(JsonElement body) =>
        body.TryGetProperty("NetworkingConfig", out JsonElement nc) && nc.ValueKind == JsonValueKind.Object
        && nc.TryGetProperty("EndpointsConfig", out JsonElement eps) && eps.ValueKind == JsonValueKind.Object
            ? eps.EnumerateObject().SelectMany(p => CreateMapping.Strings(p.Value, "Links") ?? []) : [];

    /// <summary>"80/tcp", "53/udp", "80" → (port, proto).</summary>
    private static (string Port, string Proto) Port(string key)
    {
        string[] p = key.Split('/', 2);
        string proto = p.Length > 1 && p[1].Length > 0 ? p[1] : "tcp";
        if (proto is not ("tcp" or "udp")) throw DockerErrors.NotSupported($"the {proto} protocol (port {key})");
        return (p[0], proto);
    }

    // ---- inspect and list ------------------------------------------------------------------------------------

    /// <summary>HostConfig.PortBindings as docker shows it: what was asked at create.</summary>
    public static JsonObject PortBindings(ContainerCreateRequest req)
    {
        var o = new JsonObject();
        foreach (string spec in req.Publish ?? [])
        {
            List<PortRequest> parsed;
            try { parsed = PortSpec.Parse(spec); }
            catch (FormatException) { continue; }
            foreach (PortRequest p in parsed)
            {
                string key = $"{p.ContainerPort}/{p.Proto}";
                if (o[key] is not JsonArray arr) o[key] = arr = [];
                string hostPort = p.HostPortFirst == 0 ? "" : p.HostPortLast > p.HostPortFirst ? $"{p.HostPortFirst}-{p.HostPortLast}" : $"{p.HostPortFirst}";
                arr.Add((JsonNode)new JsonObject { ["HostIp"] = p.HostIp, ["HostPort"] = hostPort });
            }
        }
        return o;
    }

    /// <summary>NetworkSettings.Ports: the mappings of a running container (docker's "80/tcp": [{HostIp, HostPort}]).</summary>
    public static JsonObject Ports(IEnumerable<PortMapping>? ports)
    {
        var o = new JsonObject();
        foreach (PortMapping p in ports ?? [])
        {
            string key = $"{p.ContainerPort}/{p.Proto}";
            if (o[key] is not JsonArray arr) o[key] = arr = [];
            arr.Add((JsonNode)new JsonObject { ["HostIp"] = p.HostIp ?? "0.0.0.0", ["HostPort"] = p.HostPort.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }
        return o;
    }

    /// <summary>GET /containers/json's Ports: [{IP, PrivatePort, PublicPort, Type}].</summary>
    public static JsonArray SummaryPorts(IEnumerable<PortMapping>? ports) => new((ports ?? []).Select(p => (JsonNode?)new JsonObject
    {
        ["IP"] = p.HostIp ?? "0.0.0.0", ["PrivatePort"] = p.ContainerPort, ["PublicPort"] = p.HostPort, ["Type"] = p.Proto,
    }).ToArray());

    /// <summary>docker ps --filter network=NAME|ID: connected to one of them (an id prefix or a name).</summary>
    public static bool OnNetwork(VesselEngine engine, string id, IReadOnlyList<string> wanted) =>
        engine.Networks.Settings(id)?.Networks.Any(n => wanted.Any(w => n.Network == w || (w.Length > 0 && n.NetworkId.StartsWith(w, StringComparison.Ordinal)))) == true;

    /// <summary>HostConfig.NetworkMode: what was asked ("default" when nothing was).</summary>
    public static string Mode(ContainerCreateRequest req) => string.IsNullOrEmpty(req.NetworkMode) ? "default" : req.NetworkMode;

    /// <summary>NetworkSettings.Networks: one entry per network (host and none: that mode's entry, as docker).</summary>
    public static JsonObject Networks(ContainerNetworkSettings? s, string containerId, string? requestedIp = null)
    {
        var o = new JsonObject();
        if (s is null) return o;
        if (s.Mode is "host" or "none")
        {
            o[s.Mode] = Entry(NetworkEndpoints.BuiltinId(s.Mode), "", "", "", 0, "", null, null);
            return o;
        }
        foreach (ContainerNetwork n in s.Networks)
        {
            // docker adds the short id as an alias on user networks (compose checks for it before reconnecting).
            List<string>? aliases = n.Network == "bridge" ? null : [.. n.Aliases ?? []];
            string shortId = containerId.Length >= 12 ? containerId[..12] : containerId;
            if (aliases is not null && !aliases.Contains(shortId)) aliases.Insert(0, shortId);
            o[n.Network] = Entry(n.NetworkId, NetworkEndpoints.EndpointId(n.NetworkId, containerId), n.Gateway, n.IpAddress, n.PrefixLen, n.MacAddress, aliases,
                n == s.Networks[0] ? requestedIp : null);
        }
        return o;
    }

    private static JsonObject Entry(string networkId, string endpointId, string gateway, string ip, int prefix, string mac, List<string>? aliases, string? requestedIp) => new()
    {
        ["IPAMConfig"] = requestedIp is null ? null : new JsonObject { ["IPv4Address"] = requestedIp }, ["Links"] = null,
        ["Aliases"] = aliases is null ? null : Http.Array(aliases), ["NetworkID"] = networkId, ["EndpointID"] = endpointId, ["Gateway"] = gateway,
        ["IPAddress"] = ip, ["IPPrefixLen"] = prefix, ["IPv6Gateway"] = "", ["GlobalIPv6Address"] = "", ["GlobalIPv6PrefixLen"] = 0,
        ["MacAddress"] = mac, ["DriverOpts"] = null,
    };

    /// <summary>Inspect's NetworkSettings: the networks, ports, and the default network's address at the top level.</summary>
    public static JsonObject Settings(ContainerInspect c, ContainerCreateRequest req)
    {
        ContainerNetworkSettings? s = c.NetworkSettings;
        ContainerNetwork? bridge = s?.Networks.FirstOrDefault(n => n.Network == "bridge");
        return new JsonObject
        {
            ["Bridge"] = "", ["SandboxID"] = c.State.Running ? NetworkEndpoints.EndpointId("sandbox", c.Id) : "", ["HairpinMode"] = false,
            ["LinkLocalIPv6Address"] = "", ["LinkLocalIPv6PrefixLen"] = 0,
            ["Ports"] = Ports(c.State.Running ? s?.Ports : null),
            ["SandboxKey"] = c.State.Running && c.State.Pid > 0 ? $"/proc/{c.State.Pid}/ns/net" : "",
            ["SecondaryIPAddresses"] = null, ["SecondaryIPv6Addresses"] = null,
            ["EndpointID"] = bridge is null ? "" : NetworkEndpoints.EndpointId(bridge.NetworkId, c.Id), ["Gateway"] = bridge?.Gateway ?? "",
            ["GlobalIPv6Address"] = "", ["GlobalIPv6PrefixLen"] = 0, ["IPAddress"] = bridge?.IpAddress ?? "", ["IPPrefixLen"] = bridge?.PrefixLen ?? 0,
            ["IPv6Gateway"] = "", ["MacAddress"] = bridge?.MacAddress ?? "",
            ["Networks"] = Networks(s, c.Id, req.Ip),
        };
    }
}
