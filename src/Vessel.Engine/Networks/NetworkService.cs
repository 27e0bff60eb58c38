using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Vessel.Api;
using Vessel.Engine.Events;
using Vessel.Engine.State;
using Vessel.Linux;
using Vessel.Network;
using Vessel.Network.Dns;
using Vessel.Network.Nat;

namespace Vessel.Engine.Networks;

/// <summary>Networks (docs/network.md): bridge networks with persistent IPAM in vessel.db, a veth per container and
/// network, NAT, published ports and isolation in this daemon's nftables table, a DNS server per user network.
/// The container service calls <see cref="Prepare"/> at create, <see cref="BeforeStart"/> and <see cref="Started"/>
/// around the runtime's create, <see cref="Stopped"/> when the init is gone and <see cref="Release"/> at rm.
/// Every change is serialised by one lock; the database is written first, then the kernel.</summary>
public sealed partial class NetworkService : IDisposable
{
    public const string DefaultName = "bridge";

    private readonly Database _db;
    private readonly EventBus _events;
    private readonly NetworkOptions _options;
    private readonly Action<string> _log;
    private readonly BridgeDriver _driver = new();
    private readonly Nftables _nft;
    private readonly PortReservations _ports = new();
    private readonly Lock _lock = new();
    private readonly Dictionary<string, NetworkRow> _networks = new(StringComparer.Ordinal);
    private readonly List<EndpointRow> _endpoints = [];
    private readonly Dictionary<string, ContainerNetRow> _containers = new(StringComparer.Ordinal);
    /// <summary>Running containers: id → init pid.</summary>
    private readonly Dictionary<string, int> _active = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DnsServer> _dns = new(StringComparer.Ordinal);
    private HostFiles.ResolvConf? _hostResolv;

    public NetworkService(Database db, EventBus events, NetworkOptions options, Action<string>? log)
    {
        _db = db;
        _events = events;
        _options = options;
        _log = log ?? (_ => { });
        _nft = new Nftables(options.Table, options.NftPath);
        Load();
    }

    public NetworkOptions Options => _options;

    /// <summary>A container's directory (its hosts and hostname files), for connect/disconnect; set by the engine.</summary>
    public Func<string, string>? ContainerDir { get; set; }

    private HostFiles.ResolvConf HostResolv => _hostResolv ??= HostFiles.HostResolvConf();

    // ---- loading and recovery ------------------------------------------------------------------------------

    private void Load()
    {
        _db.Read(c =>
        {
            using (var cmd = c.CreateCommand())
            {
                cmd.CommandText = "SELECT id, name, bridge, subnet, gateway, internal, is_default, created, labels FROM networks";
                using var r = cmd.ExecuteReader();
                while (r.Read())
                    _networks[r.GetString(0)] = new NetworkRow(r.GetString(0), r.GetString(1), r.GetString(2), Cidr.Parse(r.GetString(3)),
                        IPAddress.Parse(r.GetString(4)), r.GetInt64(5) != 0, r.GetInt64(6) != 0,
                        DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(7) / 1_000_000),
                        JsonSerializer.Deserialize(r.GetString(8), NetworkRecordJson.Default.DictionaryStringString) ?? []);
            }
            using (var cmd = c.CreateCommand())
            {
                cmd.CommandText = "SELECT network_id, owner, name, kind, address, mac, link, aliases, ord FROM endpoints";
                using var r = cmd.ExecuteReader();
                while (r.Read())
                    _endpoints.Add(new EndpointRow(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), IPAddress.Parse(r.GetString(4)),
                        r.GetString(5), r.GetString(6), JsonSerializer.Deserialize(r.GetString(7), NetworkRecordJson.Default.ListString) ?? [], r.GetInt32(8)));
            }
            using (var cmd = c.CreateCommand())
            {
                cmd.CommandText = "SELECT container_id, name, mode, publish, published FROM container_networks";
                using var r = cmd.ExecuteReader();
                while (r.Read())
                    _containers[r.GetString(0)] = new ContainerNetRow(r.GetString(0), r.GetString(1), r.GetString(2),
                        JsonSerializer.Deserialize(r.GetString(3), NetworkRecordJson.Default.ListPortRequest) ?? [],
                        JsonSerializer.Deserialize(r.GetString(4), NetworkRecordJson.Default.ListPublishedPort) ?? []);
            }
            return 0;
        });
    }

    /// <summary>At daemon start, after the containers were loaded: <paramref name="running"/> (id → init pid) are
    /// re-adopted (their ports held again, their names served), everything of containers that no longer exist is
    /// dropped, bridges missing after a reboot are recreated, stray veths on our bridges removed, and the nftables
    /// table rewritten from this state.</summary>
    public void Recover(IReadOnlyDictionary<string, int> running, IReadOnlyCollection<string> existing)
    {
        lock (_lock)
        {
            foreach (var id in _containers.Keys.Where(k => !existing.Contains(k)).ToList()) Forget(id);
            foreach (var (id, pid) in running)
            {
                if (!_containers.TryGetValue(id, out var c)) continue;
                _active[id] = pid;
                foreach (var p in c.Published)
                    if (!_ports.Readopt(p)) _log($"container {id[..12]}: host port {p.HostPort}/{p.Proto} was taken while vesseld was down");
            }
            foreach (var c in _containers.Values.Where(c => !running.ContainsKey(c.ContainerId) && c.Published.Count > 0).ToList())
                SaveContainer(c with { Published = [] });
            if (_networks.Count == 0) return;
            foreach (var n in _networks.Values)
            {
                try
                {
                    _driver.EnsureBridge(n.Bridge, n.Gateway, n.Subnet.Prefix);
                    StartDns(n);
                    StartDhcp(n);
                }
                catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException)
                {
                    _log($"network {n.Name}: {e.Message}");
                }
            }
            // veths on our bridges that no running container owns (a crash between creating and recording).
            try
            {
                var live = _endpoints.Where(e => _active.ContainsKey(e.Owner) || e.Kind == "tap").Select(e => e.Link).ToHashSet();
                var bridges = _networks.Values.Select(n => n.Bridge).ToHashSet();
                var links = _driver.Links("");
                var bridgeIndexes = links.Where(l => bridges.Contains(l.Name)).Select(l => l.Index).ToHashSet();
                foreach (var l in links.Where(l => bridgeIndexes.Contains(l.Master) && l.Kind == "veth" && !live.Contains(l.Name)))
                {
                    _log($"removing stray link {l.Name}");
                    _driver.DeleteLink(l.Name);
                }
            }
            catch (IOException e) { _log($"network recovery: {e.Message}"); }
            try { ApplyFirewall(); }
            catch (InvalidOperationException e) { _log($"network recovery: {e.Message}"); }
        }
    }

    // ---- networks ------------------------------------------------------------------------------------------

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_.-]*$")]
    private static partial Regex NamePattern();

    public NetworkInfo Create(NetworkCreateRequest req)
    {
        if (string.IsNullOrEmpty(req.Name) || !NamePattern().IsMatch(req.Name) || req.Name.Length > 128)
            throw EngineException.Invalid($"invalid network name \"{req.Name}\": only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed");
        if (req.Name is DefaultName or "default" or "none" or "host")
            throw EngineException.Conflict($"network name {req.Name} is reserved");
        lock (_lock)
        {
            if (_networks.Values.Any(n => n.Name == req.Name)) throw EngineException.Conflict($"network with name {req.Name} already exists");
            var row = NewNetwork(req.Name, req.Subnet, req.Gateway, req.Internal, isDefault: false, req.Labels ?? []);
            _events.Publish("network", "create", row.Id, row.Name);
            return Info(row);
        }
    }

    /// <summary>Allocates the subnet, records the network, then makes the bridge, the DNS server and the rules.</summary>
    private NetworkRow NewNetwork(string name, string? subnet, string? gateway, bool isInternal, bool isDefault, Dictionary<string, string> labels)
    {
        if (!_nft.Available)
            throw EngineException.Invalid("nftables is not installed (no nft command): bridge networks need it for NAT, published ports and isolation; install it (apt-get install nftables) or use --network none|host");
        Cidr net;
        if (subnet is not null)
        {
            if (!Cidr.TryParse(subnet, out net)) throw EngineException.Invalid($"invalid subnet \"{subnet}\": expected an IPv4 CIDR such as 10.89.0.0/24");
            if (net.Prefix > 30) throw EngineException.Invalid($"subnet {subnet} is too small (at most /30)");
            var clash = _networks.Values.FirstOrDefault(n => n.Subnet.Overlaps(net));
            if (clash is not null) throw EngineException.Conflict($"subnet {net} overlaps with network {clash.Name} ({clash.Subnet})");
        }
        else
        {
            try { net = Ipam.ChooseSubnet(_driver.HostRoutes().Concat(_networks.Values.Select(n => n.Subnet))); }
            catch (InvalidOperationException e) { throw EngineException.Conflict(e.Message); }
        }
        IPAddress gw;
        if (gateway is not null)
        {
            if (!Cidr.TryParseV4(gateway, out gw) || !net.Contains(gw)) throw EngineException.Invalid($"invalid gateway \"{gateway}\": not an address of {net}");
            uint g = Cidr.ToUInt(gw);
            if (g < net.First || g > net.Last) throw EngineException.Invalid($"invalid gateway {gateway}: the network or broadcast address of {net}");
        }
        else gw = Ipam.DefaultGateway(net);
        string id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        string bridge = isDefault ? _options.DefaultBridge : "vsl" + id[..9];
        var row = new NetworkRow(id, name, bridge, net, gw, isInternal, isDefault, DateTimeOffset.UtcNow, labels);
        _db.Write((c, tx) =>
        {
            using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO networks (id, name, bridge, subnet, gateway, internal, is_default, created, labels) VALUES ($id, $name, $bridge, $subnet, $gw, $internal, $def, $created, $labels)";
            cmd.Parameters.AddWithValue("$id", id);
            cmd.Parameters.AddWithValue("$name", name);
            cmd.Parameters.AddWithValue("$bridge", bridge);
            cmd.Parameters.AddWithValue("$subnet", net.ToString());
            cmd.Parameters.AddWithValue("$gw", gw.ToString());
            cmd.Parameters.AddWithValue("$internal", isInternal ? 1 : 0);
            cmd.Parameters.AddWithValue("$def", isDefault ? 1 : 0);
            cmd.Parameters.AddWithValue("$created", row.Created.ToUnixTimeMilliseconds() * 1_000_000);
            cmd.Parameters.AddWithValue("$labels", JsonSerializer.Serialize(labels, NetworkRecordJson.Default.DictionaryStringString));
            return cmd.ExecuteNonQuery();
        });
        _networks[id] = row;
        try
        {
            _driver.EnsureBridge(bridge, gw, net.Prefix);
            StartDns(row);
            StartDhcp(row);
            ApplyFirewall();
        }
        catch (Exception e) when (e is IOException or InvalidOperationException or System.Net.Sockets.SocketException)
        {
            DropNetwork(row);
            throw new EngineException(ErrorCodes.Internal, $"creating network {name}: {e.Message}");
        }
        return row;
    }

    private void StartDns(NetworkRow n)
    {
        if (n.IsDefault || _dns.ContainsKey(n.Id)) return;
        var server = new DnsServer(new IPEndPoint(n.Gateway, 53), name => Lookup(n.Id, name),
            n.Internal ? [] : HostFiles.Upstreams(HostResolv), m => _log($"network {n.Name}: {m}"));
        server.Start();
        _dns[n.Id] = server;
    }

    /// <summary>Addresses of running containers on the network named <paramref name="name"/> (name, alias, short id).</summary>
    private IReadOnlyList<IPAddress>? Lookup(string networkId, string name)
    {
        lock (_lock)
        {
            var hits = _endpoints.Where(e => e.NetworkId == networkId && (e.Kind == "container" ? _active.ContainsKey(e.Owner) : _upTaps.Contains(e.Link))
                && (string.Equals(e.Name, name, StringComparison.OrdinalIgnoreCase) || e.Aliases.Any(a => string.Equals(a, name, StringComparison.OrdinalIgnoreCase))
                    || (name.Length == 12 && e.Owner.StartsWith(name, StringComparison.Ordinal))))
                .Select(e => e.Address).Distinct().ToList();
            return hits.Count > 0 ? hits : null;
        }
    }

    public IReadOnlyList<NetworkInfo> List()
    {
        lock (_lock) return _networks.Values.OrderBy(n => n.Created).Select(Info).ToList();
    }

    /// <summary>The default network, made now if no container needed it yet (the Docker API lists it as docker's
    /// always-present <c>bridge</c>).</summary>
    public NetworkInfo Default()
    {
        lock (_lock) return Info(DefaultNetwork());
    }

    public NetworkInfo Inspect(string idOrName)
    {
        lock (_lock) return Info(Find(idOrName));
    }

    private NetworkRow Find(string idOrName)
    {
        if (string.IsNullOrEmpty(idOrName)) throw EngineException.Invalid("network name or id is empty");
        if (idOrName == "default") idOrName = DefaultName;
        if (_networks.TryGetValue(idOrName, out var n)) return n;
        var byName = _networks.Values.FirstOrDefault(x => x.Name == idOrName);
        if (byName is not null) return byName;
        var prefix = _networks.Values.Where(x => x.Id.StartsWith(idOrName, StringComparison.Ordinal)).ToList();
        if (prefix.Count > 1) throw EngineException.Conflict($"network {idOrName} is ambiguous ({prefix.Count} matches found based on ID prefix)");
        return prefix.FirstOrDefault() ?? throw EngineException.NotFound($"network {idOrName} not found");
    }

    private NetworkInfo Info(NetworkRow n) => new()
    {
        Id = n.Id, Name = n.Name, Bridge = n.Bridge, Subnet = n.Subnet.ToString(), Gateway = n.Gateway.ToString(), Internal = n.Internal,
        Default = n.IsDefault, Dns = n.IsDefault ? null : n.Gateway.ToString(), Created = n.Created, Labels = n.Labels.Count > 0 ? n.Labels : null,
        Endpoints = _endpoints.Where(e => e.NetworkId == n.Id).OrderBy(e => Cidr.ToUInt(e.Address)).Select(e => new NetworkEndpoint
        {
            Owner = e.Owner, Name = e.Name, Kind = e.Kind, IpAddress = e.Address.ToString(), PrefixLen = n.Subnet.Prefix, MacAddress = e.Mac,
            Aliases = e.Aliases.Count > 0 ? e.Aliases : null, Link = e.Link,
        }).ToList(),
    };

    /// <summary>Removes a network nobody is connected to: its DNS server, bridge, rules and rows.</summary>
    public void Remove(string idOrName)
    {
        lock (_lock)
        {
            var n = Find(idOrName);
            if (n.IsDefault) throw EngineException.Conflict($"{n.Name} is a pre-defined network and cannot be removed");
            var users = _endpoints.Where(e => e.NetworkId == n.Id).ToList();
            if (users.Count > 0)
                throw EngineException.Conflict($"error while removing network: network {n.Name} has active endpoints ({string.Join(", ", users.Select(u => u.Name))}); disconnect or remove them first");
            DropNetwork(n);
            _events.Publish("network", "destroy", n.Id, n.Name);
        }
    }

    private void DropNetwork(NetworkRow n)
    {
        if (_dns.Remove(n.Id, out var dns)) dns.Dispose();
        if (_dhcp.Remove(n.Id, out var dhcp)) dhcp.Dispose();
        _db.Write((c, tx) =>
        {
            using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM endpoints WHERE network_id = $id; DELETE FROM networks WHERE id = $id";
            cmd.Parameters.AddWithValue("$id", n.Id);
            return cmd.ExecuteNonQuery();
        });
        _networks.Remove(n.Id);
        _endpoints.RemoveAll(e => e.NetworkId == n.Id);
        try { _driver.DeleteLink(n.Bridge); }
        catch (IOException e) { _log($"network {n.Name}: deleting {n.Bridge}: {e.Message}"); }
        try { ApplyFirewall(); }
        catch (InvalidOperationException e) { _log($"network {n.Name}: {e.Message}"); }
    }

    /// <summary>Removes every user network without endpoints.</summary>
    public NetworkPruneResponse Prune()
    {
        var removed = new List<string>();
        lock (_lock)
        {
            foreach (var n in _networks.Values.Where(n => !n.IsDefault && !_endpoints.Any(e => e.NetworkId == n.Id)).ToList())
            {
                DropNetwork(n);
                _events.Publish("network", "destroy", n.Id, n.Name);
                removed.Add(n.Name);
            }
        }
        return new NetworkPruneResponse(removed);
    }

    // ---- containers ----------------------------------------------------------------------------------------

    /// <summary>At create: validates the mode, allocates the container's address (IPAM, recorded at once) and
    /// returns the contents of its hosts and resolv.conf files.</summary>
    public ContainerNetworkPlan Prepare(string id, string name, string hostname, ContainerCreateRequest req, IEnumerable<string> exposedPorts,
        Func<string, (string Id, string Name)> container)
    {
        string mode = string.IsNullOrEmpty(req.NetworkMode) || req.NetworkMode == "default" ? DefaultName : req.NetworkMode;
        var warnings = new List<string>();
        var publish = new List<PortRequest>();
        try
        {
            foreach (var p in req.Publish ?? []) publish.AddRange(PortSpec.Parse(p));
            // The structured form (the Docker API's PortBindings): HostPort 0 is any free port.
            foreach (var p in req.Ports ?? [])
            {
                if (p.Proto is not ("tcp" or "udp")) throw new FormatException($"invalid port specification \"{p.ContainerPort}/{p.Proto}\": only tcp and udp");
                if (p.ContainerPort is <= 0 or > 65535 || p.HostPort is < 0 or > 65535) throw new FormatException($"invalid port specification \"{p.HostPort}:{p.ContainerPort}\"");
                string hostIp = string.IsNullOrEmpty(p.HostIp) || p.HostIp == "0.0.0.0" ? "" : Cidr.TryParseV4(p.HostIp, out var a) ? a.ToString()
                    : throw new FormatException($"invalid port specification: host address \"{p.HostIp}\" (IPv4 only)");
                publish.Add(new PortRequest(hostIp, p.HostPort, p.HostPort, p.ContainerPort, p.Proto));
            }
            // -P gives a random host port to each exposed port that -p did not bind already (as dockerd).
            if (req.PublishAll)
                foreach (var k in exposedPorts)
                    publish.AddRange(PortSpec.Exposed(k).Where(e => !publish.Any(p => p.ContainerPort == e.ContainerPort && p.Proto == e.Proto)).ToList());
        }
        catch (FormatException e) { throw EngineException.Invalid(e.Message); }
        publish = publish.DistinctBy(p => (p.HostIp, p.HostPortFirst, p.ContainerPort, p.Proto)).ToList();
        IPAddress? requested = null;
        if (req.Ip is { Length: > 0 } ip && !Cidr.TryParseV4(ip, out requested)) throw EngineException.Invalid($"invalid IPv4 address: {ip}");
        var host = HostResolv;
        if (mode is "none" or "host" || mode.StartsWith("container:", StringComparison.Ordinal))
        {
            if (requested is not null) throw EngineException.Invalid($"--ip needs a bridge network, not --network {mode}");
            if (req.NetworkAliases is { Count: > 0 }) throw EngineException.Invalid($"--network-alias needs a user-defined network, not --network {mode}");
            if (publish.Count > 0)
            {
                if (mode == "host") { warnings.Add("Published ports are discarded when using host network mode"); publish.Clear(); }
                else throw EngineException.Invalid($"published ports need a bridge network, not --network {mode}");
            }
            if (mode.StartsWith("container:", StringComparison.Ordinal))
            {
                var other = container(mode["container:".Length..]);
                if (other.Id == id) throw EngineException.Invalid("cannot join the network of the container itself");
                mode = "container:" + other.Id;
            }
            lock (_lock) SaveContainer(new ContainerNetRow(id, name, mode, [], []));
            string hosts = mode == "host" ? ReadOr("/etc/hosts", HostFiles.Hosts(hostname, [])) : HostFiles.Hosts(hostname, []);
            string resolv = mode == "none" ? "# Generated by vessel: no network\n" : mode == "host" ? ReadOr("/etc/resolv.conf", "") : HostFiles.ContainerResolvConf(host, null);
            return new ContainerNetworkPlan(mode, hosts, resolv, warnings);
        }
        lock (_lock)
        {
            NetworkRow n = mode == DefaultName ? DefaultNetwork() : Find(mode);
            if (n.IsDefault && req.NetworkAliases is { Count: > 0 })
                throw EngineException.Invalid("network-scoped aliases are only supported for user-defined networks");
            var ep = AddEndpoint(n, id, name, requested, req.NetworkAliases ?? []);
            SaveContainer(new ContainerNetRow(id, name, n.IsDefault ? DefaultName : n.Name, publish, []));
            string hosts = HostFiles.Hosts(hostname, [(ep.Address, HostNames(hostname, n, ep))]);
            string resolv = HostFiles.ContainerResolvConf(host, n.IsDefault ? null : n.Gateway);
            return new ContainerNetworkPlan(n.IsDefault ? DefaultName : n.Name, hosts, resolv, warnings);
        }
    }

    /// <summary>The names of a container's line in its /etc/hosts for one network: hostname, then (user networks) its
    /// name and aliases there.</summary>
    private static IEnumerable<string> HostNames(string hostname, NetworkRow n, EndpointRow ep) =>
        new[] { hostname }.Concat(n.IsDefault ? [] : new[] { ep.Name }).Concat(ep.Aliases);

    /// <summary>Adds (<paramref name="connected"/>) or removes the line of one network's address in the container's
    /// /etc/hosts, as docker does on connect/disconnect. Written in place (truncate + write, not a new file renamed
    /// over it): the file is bind-mounted into a running container, and a bind mount keeps the inode it was made on.</summary>
    private void UpdateHosts(string id, NetworkRow n, EndpointRow ep, bool connected)
    {
        if (ContainerDir is null) return;
        string dir = ContainerDir(id), path = Path.Combine(dir, "hosts");
        try
        {
            if (!File.Exists(path)) return;
            string hostname = File.Exists(Path.Combine(dir, "hostname")) ? File.ReadAllText(Path.Combine(dir, "hostname")).Trim() : id[..12];
            string text = HostFiles.SetEntry(File.ReadAllText(path), ep.Address, connected ? HostNames(hostname, n, ep) : []);
            using var f = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
            f.SetLength(0);
            f.Write(Encoding.UTF8.GetBytes(text));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log($"container {id[..12]}: updating /etc/hosts: {e.Message}");
        }
    }

    private static string ReadOr(string path, string fallback)
    {
        try { return File.ReadAllText(path); }
        catch (IOException) { return fallback; }
    }

    private NetworkRow DefaultNetwork() =>
        _networks.Values.FirstOrDefault(n => n.IsDefault) ?? NewNetwork(DefaultName, _options.DefaultSubnet, null, false, isDefault: true, []);

    private EndpointRow AddEndpoint(NetworkRow n, string owner, string name, IPAddress? requested, List<string> aliases, string kind = "container", string? link = null, string? mac = null)
    {
        if (_endpoints.Any(e => e.NetworkId == n.Id && e.Owner == owner))
            throw EngineException.Conflict($"{name} is already connected to network {n.Name}");
        var used = _endpoints.Where(e => e.NetworkId == n.Id).Select(e => Cidr.ToUInt(e.Address)).ToHashSet();
        IPAddress address;
        try { address = Ipam.Allocate(n.Subnet, n.Gateway, used, requested); }
        catch (ArgumentException e) { throw EngineException.Invalid(e.Message); }
        catch (InvalidOperationException e) { throw EngineException.Conflict(e.Message); }
        int ord = _endpoints.Where(e => e.Owner == owner).Select(e => e.Ord + 1).DefaultIfEmpty(0).Max();
        link ??= "vsl" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(owner + "/" + n.Id)))[..11];
        mac ??= Ipam.MacString(Ipam.MacFor(address));
        var ep = new EndpointRow(n.Id, owner, name, kind, address, mac, link, aliases.Where(a => a.Length > 0).Distinct().ToList(), ord);
        try
        {
            _db.Write((c, tx) =>
            {
                using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO endpoints (network_id, owner, name, kind, address, mac, link, aliases, ord) VALUES ($n, $o, $name, $kind, $a, $mac, $link, $aliases, $ord)";
                cmd.Parameters.AddWithValue("$n", n.Id);
                cmd.Parameters.AddWithValue("$o", owner);
                cmd.Parameters.AddWithValue("$name", name);
                cmd.Parameters.AddWithValue("$kind", kind);
                cmd.Parameters.AddWithValue("$a", address.ToString());
                cmd.Parameters.AddWithValue("$mac", mac);
                cmd.Parameters.AddWithValue("$link", link);
                cmd.Parameters.AddWithValue("$aliases", JsonSerializer.Serialize(ep.Aliases, NetworkRecordJson.Default.ListString));
                cmd.Parameters.AddWithValue("$ord", ord);
                return cmd.ExecuteNonQuery();
            });
        }
        catch (SqliteException e) when (e.SqliteErrorCode == 19)
        {
            throw EngineException.Conflict($"the address {address} is already in use on network {n.Name}");
        }
        _endpoints.Add(ep);
        return ep;
    }

    private void RemoveEndpoint(EndpointRow ep)
    {
        _db.Write((c, tx) =>
        {
            using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM endpoints WHERE network_id = $n AND owner = $o";
            cmd.Parameters.AddWithValue("$n", ep.NetworkId);
            cmd.Parameters.AddWithValue("$o", ep.Owner);
            return cmd.ExecuteNonQuery();
        });
        _endpoints.Remove(ep);
    }

    private void SaveContainer(ContainerNetRow row)
    {
        _db.Write((c, tx) =>
        {
            using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT OR REPLACE INTO container_networks (container_id, name, mode, publish, published) VALUES ($id, $name, $mode, $publish, $published)";
            cmd.Parameters.AddWithValue("$id", row.ContainerId);
            cmd.Parameters.AddWithValue("$name", row.Name);
            cmd.Parameters.AddWithValue("$mode", row.Mode);
            cmd.Parameters.AddWithValue("$publish", JsonSerializer.Serialize(row.Publish, NetworkRecordJson.Default.ListPortRequest));
            cmd.Parameters.AddWithValue("$published", JsonSerializer.Serialize(row.Published, NetworkRecordJson.Default.ListPublishedPort));
            return cmd.ExecuteNonQuery();
        });
        _containers[row.ContainerId] = row;
    }

    /// <summary>The network mode recorded at create ("container:ID" resolved to an id), or null for containers
    /// created before networking existed.</summary>
    public string? ModeOf(string id)
    {
        lock (_lock) return _containers.GetValueOrDefault(id)?.Mode;
    }

    /// <summary>Before the runtime creates the container: holds its published host ports (a taken port is a clear
    /// error now, before anything runs).</summary>
    public void BeforeStart(string id)
    {
        lock (_lock)
        {
            if (!_containers.TryGetValue(id, out var c) || c.Publish.Count == 0) return;
            var held = new List<PublishedPort>();
            try
            {
                foreach (var p in c.Publish) held.Add(_ports.Reserve(p));
            }
            catch (Exception e) when (e is InvalidOperationException or System.Net.Sockets.SocketException)
            {
                foreach (var h in held) _ports.Release(h);
                throw EngineException.Conflict($"driver failed programming external connectivity on endpoint {c.Name}: {e.Message}");
            }
            SaveContainer(c with { Published = held });
        }
    }

    /// <summary>The runtime created the init (<paramref name="pid"/>, blocked before exec): veths into its
    /// namespace, loopback up, names served, published ports forwarded.</summary>
    public void Started(string id, int pid)
    {
        lock (_lock)
        {
            if (!_containers.TryGetValue(id, out var c)) return;
            try
            {
                if (c.Mode == "host" || c.Mode.StartsWith("container:", StringComparison.Ordinal)) { _active[id] = pid; return; }
                AwaitLinkDeletions(id);
                _driver.LoopbackUp(pid);
                var mine = _endpoints.Where(e => e.Owner == id).OrderBy(e => e.Ord).ToList();
                bool first = true;
                foreach (var ep in mine)
                {
                    var n = _networks[ep.NetworkId];
                    _driver.Attach(pid, n.Bridge, new EndpointConfig(ep.Link, "eth" + ep.Ord, ep.Address, n.Subnet.Prefix, n.Gateway, Ipam.ParseMac(ep.Mac),
                        DefaultRoute: first && !n.Internal));
                    if (!n.Internal) first = false;
                }
                _active[id] = pid;
                if (c.Published.Count > 0) ApplyFirewall(); // the rules only name containers for their published ports
            }
            catch (Exception e) when (e is IOException or InvalidOperationException)
            {
                StoppedLocked(id);
                throw new EngineException(ErrorCodes.Internal, $"setting up the network of container {id[..12]}: {e.Message}");
            }
        }
    }

    /// <summary>The container's init is gone: its ports are released and forwarded no more; the veths went with
    /// its namespace (removed here too in case something still holds the namespace).</summary>
    public void Stopped(string id)
    {
        lock (_lock) StoppedLocked(id);
    }

    /// <summary>The host ends of the veths are deleted on the thread pool: after an exit the kernel removes them with the
    /// namespace anyway, and the explicit delete (for a namespace something still holds) waits for the kernel's network
    /// teardown, milliseconds that a `run --rm` should not wait for. A new start of the container waits for them
    /// (the names are the endpoint's), and so does <see cref="Dispose"/>.</summary>
    private void StoppedLocked(string id)
    {
        _active.Remove(id);
        if (!_containers.TryGetValue(id, out var c)) return;
        foreach (var p in c.Published) _ports.Release(p);
        if (c.Published.Count > 0) SaveContainer(c with { Published = [] });
        var links = _endpoints.Where(e => e.Owner == id).Select(e => e.Link).ToList();
        if (links.Count > 0)
        {
            Task before = _linkDeletions.GetValueOrDefault(id) ?? Task.CompletedTask;
            _linkDeletions[id] = before.ContinueWith(_ => DeleteLinks(id, links), TaskScheduler.Default);
        }
        if (c.Published.Count > 0)
        {
            try { ApplyFirewall(); }
            catch (InvalidOperationException e) { _log($"container {id[..12]}: {e.Message}"); }
        }
    }

    /// <summary>At rm: the container's addresses go back to the pool.</summary>
    public void Release(string id)
    {
        lock (_lock)
        {
            StoppedLocked(id);
            Forget(id);
        }
    }

    private void Forget(string id)
    {
        foreach (var ep in _endpoints.Where(e => e.Owner == id).ToList()) RemoveEndpoint(ep);
        _db.Write((c, tx) =>
        {
            using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "DELETE FROM container_networks WHERE container_id = $id";
            cmd.Parameters.AddWithValue("$id", id);
            return cmd.ExecuteNonQuery();
        });
        _containers.Remove(id);
    }

    /// <summary>Connects a container (running or not) to one more network.</summary>
    public void Connect(string network, string id, string name, string? ip, IReadOnlyList<string>? aliases)
    {
        IPAddress? requested = null;
        if (ip is { Length: > 0 } && !Cidr.TryParseV4(ip, out requested)) throw EngineException.Invalid($"invalid IPv4 address: {ip}");
        lock (_lock)
        {
            var n = Find(network);
            if (!_containers.TryGetValue(id, out var c)) throw EngineException.Invalid($"container {name} has no network configuration (created by an older vesseld)");
            if (c.Mode is "none" or "host" || c.Mode.StartsWith("container:", StringComparison.Ordinal))
                throw EngineException.Invalid($"container {name} uses --network {c.Mode}: it cannot be connected to other networks");
            if (n.IsDefault && aliases is { Count: > 0 }) throw EngineException.Invalid("network-scoped aliases are only supported for user-defined networks");
            var ep = AddEndpoint(n, id, name, requested, [.. aliases ?? []]);
            if (_active.TryGetValue(id, out int pid))
            {
                try
                {
                    bool hasRoute = _endpoints.Any(e => e.Owner == id && e != ep && !_networks[e.NetworkId].Internal);
                    _driver.Attach(pid, n.Bridge, new EndpointConfig(ep.Link, "eth" + ep.Ord, ep.Address, n.Subnet.Prefix, n.Gateway, Ipam.ParseMac(ep.Mac),
                        DefaultRoute: !hasRoute && !n.Internal));
                    ApplyFirewall();
                }
                catch (Exception e) when (e is IOException or InvalidOperationException)
                {
                    RemoveEndpoint(ep);
                    throw new EngineException(ErrorCodes.Internal, $"connecting {name} to {n.Name}: {e.Message}");
                }
            }
            UpdateHosts(id, n, ep, connected: true);
            _events.Publish("network", "connect", n.Id, n.Name, new Dictionary<string, string> { ["container"] = id });
        }
    }

    public void Disconnect(string network, string id, string name, bool force)
    {
        lock (_lock)
        {
            var n = Find(network);
            var ep = _endpoints.FirstOrDefault(e => e.NetworkId == n.Id && e.Owner == id);
            if (ep is null)
            {
                if (force) return;
                throw EngineException.Conflict($"container {name} is not connected to network {n.Name}");
            }
            RemoveEndpoint(ep);
            try { _driver.DeleteLink(ep.Link); }
            catch (IOException e) { _log($"disconnecting {name}: {e.Message}"); }
            UpdateHosts(id, n, ep, connected: false);
            if (_containers.TryGetValue(id, out var c) && c.Published.Count > 0 && !_endpoints.Any(e => e.Owner == id))
            {
                foreach (var p in c.Published) _ports.Release(p);
                SaveContainer(c with { Published = [] });
            }
            try { ApplyFirewall(); }
            catch (InvalidOperationException e) { _log($"disconnecting {name}: {e.Message}"); }
            _events.Publish("network", "disconnect", n.Id, n.Name, new Dictionary<string, string> { ["container"] = id });
        }
    }

    /// <summary>Network settings for inspect; ports as mapped while running.</summary>
    public ContainerNetworkSettings? Settings(string id)
    {
        lock (_lock)
        {
            if (!_containers.TryGetValue(id, out var c)) return null;
            return new ContainerNetworkSettings
            {
                Mode = c.Mode,
                Networks = _endpoints.Where(e => e.Owner == id).OrderBy(e => e.Ord).Select(e =>
                {
                    var n = _networks[e.NetworkId];
                    return new ContainerNetwork
                    {
                        Network = n.Name, NetworkId = n.Id, IpAddress = e.Address.ToString(), PrefixLen = n.Subnet.Prefix, Gateway = n.Gateway.ToString(),
                        MacAddress = e.Mac, Interface = "eth" + e.Ord, Aliases = e.Aliases.Count > 0 ? e.Aliases : null, Dns = n.IsDefault ? null : n.Gateway.ToString(),
                    };
                }).ToList(),
                Ports = Ports(c),
            };
        }
    }

    /// <summary>Published ports of a running container (null when it has none).</summary>
    public List<PortMapping>? PortsOf(string id)
    {
        lock (_lock) return _containers.TryGetValue(id, out var c) && c.Published.Count > 0 ? Ports(c) : null;
    }

    private static List<PortMapping> Ports(ContainerNetRow c) => c.Published.Select(p => new PortMapping
    {
        HostIp = p.HostIp.Length == 0 ? "0.0.0.0" : p.HostIp, HostPort = p.HostPort, ContainerPort = p.ContainerPort, Proto = p.Proto,
    }).ToList();

    /// <summary>The container's hosts, hostname and resolv.conf files for `--network container:ID`: the other container's.</summary>
    public static void CopyIdentity(string fromDir, string toDir)
    {
        foreach (var f in new[] { "hosts", "hostname", "resolv.conf" })
        {
            string src = Path.Combine(fromDir, f);
            if (File.Exists(src)) File.Copy(src, Path.Combine(toDir, f), overwrite: true);
        }
    }

    // ---- VMs: NetworkServiceTaps.cs ----------------------------------------------------------------------

    // ---- firewall ------------------------------------------------------------------------------------------

    private void ApplyFirewall()
    {
        var nets = _networks.Values.OrderBy(n => n.Created).Select(n => new FirewallNetwork(n.Bridge, n.Subnet, n.Gateway, n.Internal)).ToList();
        var ports = new List<FirewallPort>();
        foreach (var (id, _) in _active)
        {
            if (!_containers.TryGetValue(id, out var c) || c.Published.Count == 0) continue;
            var ep = _endpoints.Where(e => e.Owner == id).OrderBy(e => e.Ord).FirstOrDefault();
            if (ep is null) continue;
            var n = _networks[ep.NetworkId];
            foreach (var p in c.Published) ports.Add(new FirewallPort(n.Bridge, ep.Address, p));
        }
        if (nets.Count == 0)
        {
            if (_nft.Available) _nft.Delete();
            return;
        }
        if (nets.Any(n => !n.Internal) && BridgeDriver.EnableForwarding()) _log("turned on IPv4 forwarding (net.ipv4.ip_forward=1)");
        _nft.Apply(nets, ports);
    }

    private readonly Dictionary<string, Task> _linkDeletions = new(StringComparer.Ordinal);

    /// <summary>Waits for the background deletion of a container's old links (under <c>_lock</c>).</summary>
    private void AwaitLinkDeletions(string id)
    {
        if (_linkDeletions.Remove(id, out var pending)) pending.Wait();
        foreach (var done in _linkDeletions.Where(kv => kv.Value.IsCompleted).Select(kv => kv.Key).ToList()) _linkDeletions.Remove(done);
    }

    private void DeleteLinks(string id, IEnumerable<string> links)
    {
        foreach (var link in links)
        {
            try { _driver.DeleteLink(link); }
            catch (IOException e) { _log($"container {id[..12]}: deleting {link}: {e.Message}"); }
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            Task.WaitAll(_linkDeletions.Values.ToArray());
            _linkDeletions.Clear();
            foreach (var d in _dns.Values) d.Dispose();
            _dns.Clear();
            foreach (var d in _dhcp.Values) d.Dispose();
            _dhcp.Clear();
            _ports.Dispose();
        }
    }
}
