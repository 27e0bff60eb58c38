using System.Text.Json.Serialization;

namespace Vessel.Api;

/// <summary><c>POST /v1/networks</c>.</summary>
public sealed record NetworkCreateRequest
{
    public required string Name { get; init; }
    /// <summary>IPv4 CIDR; chosen from the default pools (not clashing with the host's routes) when absent.</summary>
    public string? Subnet { get; init; }
    /// <summary>Default: the subnet's first address.</summary>
    public string? Gateway { get; init; }
    /// <summary>No way out: no NAT, no default route, no forwarding to other networks or the outside.</summary>
    public bool Internal { get; init; }
    public Dictionary<string, string>? Labels { get; init; }
}

/// <summary>One network (<c>GET /v1/networks</c>, <c>GET /v1/networks/{id}</c>).</summary>
public sealed record NetworkInfo
{
    public required string Id { get; init; }
    public required string Name { get; init; }
    public string Driver { get; init; } = "bridge";
    /// <summary>The Linux bridge device.</summary>
    public required string Bridge { get; init; }
    public required string Subnet { get; init; }
    public required string Gateway { get; init; }
    public bool Internal { get; init; }
    /// <summary>The default network (docker's "bridge"): no DNS server, the host's resolvers.</summary>
    public bool Default { get; init; }
    /// <summary>The DNS server containers on this network use (the gateway; absent on the default network).</summary>
    public string? Dns { get; init; }
    public DateTimeOffset Created { get; init; }
    public Dictionary<string, string>? Labels { get; init; }
    public List<NetworkEndpoint>? Endpoints { get; init; }
}

/// <summary>An address handed out on a network: a container's interface or a VM's tap.</summary>
public sealed record NetworkEndpoint
{
    /// <summary>Container id, or "tap:NAME" for a tap device.</summary>
    public required string Owner { get; init; }
    public required string Name { get; init; }
    /// <summary>"container" or "tap".</summary>
    public required string Kind { get; init; }
    public required string IpAddress { get; init; }
    public int PrefixLen { get; init; }
    public required string MacAddress { get; init; }
    public List<string>? Aliases { get; init; }
    /// <summary>The host-side link (veth or tap).</summary>
    public string? Link { get; init; }
}

/// <summary><c>POST /v1/networks/{id}/connect</c>.</summary>
public sealed record NetworkConnectRequest
{
    public required string Container { get; init; }
    public string? Ip { get; init; }
    public List<string>? Aliases { get; init; }
}

/// <summary><c>POST /v1/networks/{id}/disconnect</c>.</summary>
public sealed record NetworkDisconnectRequest
{
    public required string Container { get; init; }
    public bool Force { get; init; }
}

public sealed record NetworkPruneResponse(List<string> Removed);

/// <summary>A container's network settings, in inspect.</summary>
public sealed record ContainerNetworkSettings
{
    /// <summary>"bridge" (the default network), a network name, "none", "host" or "container:ID".</summary>
    public required string Mode { get; init; }
    public List<ContainerNetwork> Networks { get; init; } = [];
    public List<PortMapping> Ports { get; init; } = [];
}

public sealed record ContainerNetwork
{
    public required string Network { get; init; }
    public required string NetworkId { get; init; }
    public required string IpAddress { get; init; }
    public int PrefixLen { get; init; }
    public required string Gateway { get; init; }
    public required string MacAddress { get; init; }
    public string? Interface { get; init; }
    public List<string>? Aliases { get; init; }
    public string? Dns { get; init; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = false)]
[JsonSerializable(typeof(NetworkCreateRequest))]
[JsonSerializable(typeof(NetworkInfo))]
[JsonSerializable(typeof(List<NetworkInfo>))]
[JsonSerializable(typeof(NetworkConnectRequest))]
[JsonSerializable(typeof(NetworkDisconnectRequest))]
[JsonSerializable(typeof(NetworkPruneResponse))]
[JsonSerializable(typeof(ContainerNetworkSettings))]
public sealed partial class NetworkJson : JsonSerializerContext;
