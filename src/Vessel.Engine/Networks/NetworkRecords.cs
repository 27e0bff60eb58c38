using System.Net;
using System.Text.Json.Serialization;
using Vessel.Network;

namespace Vessel.Engine.Networks;

public sealed record NetworkOptions
{
    /// <summary>The nftables table (family inet) holding this daemon's rules; one per daemon.</summary>
    public string Table { get; init; } = "vessel";
    /// <summary>The default network's bridge device.</summary>
    public string DefaultBridge { get; init; } = "vessel0";
    /// <summary>The default network's subnet; null: the first default pool not clashing with the host's routes.</summary>
    public string? DefaultSubnet { get; init; }
    /// <summary>The nft program (tests: a missing one).</summary>
    public string? NftPath { get; init; }
}

internal sealed record NetworkRow(string Id, string Name, string Bridge, Cidr Subnet, IPAddress Gateway, bool Internal, bool IsDefault,
    DateTimeOffset Created, Dictionary<string, string> Labels);

internal sealed record EndpointRow(string NetworkId, string Owner, string Name, string Kind, IPAddress Address, string Mac, string Link,
    List<string> Aliases, int Ord);

internal sealed record ContainerNetRow(string ContainerId, string Name, string Mode, List<PortRequest> Publish, List<PublishedPort> Published);

/// <summary>What a container being created gets from the network side.</summary>
public sealed record ContainerNetworkPlan(string Mode, string Hosts, string ResolvConf, List<string> Warnings)
{
    /// <summary>The container needs a network namespace of its own (not host, not another container's).</summary>
    public bool OwnNamespace => Mode != "host" && !Mode.StartsWith("container:", StringComparison.Ordinal);
}

/// <summary>What a VM's tap gets on a network (<see cref="NetworkService.AttachTap"/>).</summary>
public sealed record TapAttachment(string Network, IPAddress Address, int Prefix, IPAddress Gateway, IPAddress? Dns, IReadOnlyList<string> Nameservers, string Mac)
{
    public string Tap { get; init; } = "";
    public bool Internal { get; init; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(List<PortRequest>))]
[JsonSerializable(typeof(List<PublishedPort>))]
[JsonSerializable(typeof(List<string>))]
[JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class NetworkRecordJson : JsonSerializerContext;
