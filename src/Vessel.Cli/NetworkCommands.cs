using System.CommandLine;
using System.Text.Json;
using Vessel.Api;

namespace Vessel.Cli;

/// <summary>`vessel network create|ls|inspect|rm|connect|disconnect|prune` (docs/network.md).</summary>
internal sealed partial class Commands
{
    private Command NetworkGroup()
    {
        var group = new Command("network", "Manage networks");
        group.Subcommands.Add(NetworkCreate());
        group.Subcommands.Add(NetworkLs());
        group.Subcommands.Add(NetworkInspect());
        group.Subcommands.Add(NetworkRm());
        group.Subcommands.Add(NetworkConnect());
        group.Subcommands.Add(NetworkDisconnect());
        group.Subcommands.Add(NetworkPrune());
        return group;
    }

    private static string Net(string id) => "v1/networks/" + Uri.EscapeDataString(id);

    private Command NetworkCreate()
    {
        var name = new Argument<string>("NETWORK");
        var subnet = new Option<string?>("--subnet") { Description = "Subnet in CIDR format (default: a free private /16 or /20)" };
        var gateway = new Option<string?>("--gateway") { Description = "IPv4 gateway for the subnet (default: its first address)" };
        var isInternal = new Option<bool>("--internal") { Description = "Restrict external access to the network" };
        var driver = new Option<string?>("--driver", "-d") { Description = "Driver to manage the network (only bridge)" };
        var labels = new Option<string[]>("--label") { Description = "Set metadata on a network", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("create", "Create a network") { name, subnet, gateway, isInternal, driver, labels };
        cmd.SetAction(async (pr, ct) =>
        {
            if (pr.GetValue(driver) is { } d && d != "bridge") throw new CliException($"unsupported network driver {d}: only bridge");
            var l = new Dictionary<string, string>();
            foreach (string x in pr.GetValue(labels) ?? [])
            {
                int eq = x.IndexOf('=');
                l[eq < 0 ? x : x[..eq]] = eq < 0 ? "" : x[(eq + 1)..];
            }
            using Client c = Connect(pr);
            var req = new NetworkCreateRequest
            {
                Name = pr.GetValue(name)!, Subnet = pr.GetValue(subnet), Gateway = pr.GetValue(gateway), Internal = pr.GetValue(isInternal),
                Labels = l.Count > 0 ? l : null,
            };
            NetworkInfo n = await c.Send(HttpMethod.Post, "v1/networks", Client.Json(req, NetworkJson.Default.NetworkCreateRequest), NetworkJson.Default.NetworkInfo, ct);
            Console.Out.WriteLine(n.Id);
            return 0;
        });
        return cmd;
    }

    private Command NetworkLs()
    {
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Only display network IDs" };
        var noTrunc = new Option<bool>("--no-trunc") { Description = "Do not truncate the output" };
        var format = TemplateFormatOption();
        var cmd = new Command("ls", "List networks") { quiet, noTrunc, format };
        cmd.Aliases.Add("list");
        cmd.SetAction(async (pr, ct) =>
        {
            bool json = Json(pr, format, templates: true);
            using Client c = Connect(pr);
            List<NetworkInfo> list = await c.Get("v1/networks", NetworkJson.Default.ListNetworkInfo, ct);
            if (json)
            {
                foreach (var n in list) JsonLine(n, NetworkJson.Default.NetworkInfo);
                return 0;
            }
            bool full = pr.GetValue(noTrunc);
            if (pr.GetValue(quiet))
            {
                foreach (var n in list) Console.Out.WriteLine(full ? n.Id : n.Id[..12]);
                return 0;
            }
            if (Templated(pr, format, list, n => NetworkRow(n, !full))) return 0;
            var t = new Table("NETWORK ID", "NAME", "DRIVER", "SUBNET", "GATEWAY", "INTERNAL", "BRIDGE");
            foreach (var n in list) t.Add(full ? n.Id : n.Id[..12], n.Name, n.Driver, n.Subnet, n.Gateway, n.Internal ? "true" : "false", n.Bridge);
            Console.Out.Write(t.ToString());
            return 0;
        });
        return cmd;
    }

    private Command NetworkInspect()
    {
        var names = new Argument<string[]>("NETWORK") { Arity = ArgumentArity.OneOrMore };
        var format = InspectFormatOption();
        var cmd = new Command("inspect", "Display detailed information on one or more networks") { format, names };
        cmd.SetAction(async (pr, ct) =>
        {
            Template? template = pr.GetValue(format) is { Length: > 0 } f && f != "json" ? Template.Parse(f) : null;
            using Client c = Connect(pr);
            var all = new List<NetworkInfo>();
            foreach (string n in pr.GetValue(names)!) all.Add(await c.Get(Net(n), NetworkJson.Default.NetworkInfo, ct));
            var indented = new NetworkJson(new JsonSerializerOptions
            {
                PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
                DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
                WriteIndented = true,
            });
            if (!PrintInspectTemplate(template, all.Select(n => JsonSerializer.Serialize(n, indented.NetworkInfo))))
                Console.Out.WriteLine(JsonSerializer.Serialize(all, indented.ListNetworkInfo));
            return 0;
        });
        return cmd;
    }

    private Command NetworkRm()
    {
        Command cmd = EachName("rm", "Remove one or more networks", "NETWORK", (c, _, n, ct) => c.SendNoContent(HttpMethod.Delete, Net(n), null, ct));
        cmd.Aliases.Add("remove");
        return cmd;
    }

    private Command NetworkConnect()
    {
        var network = new Argument<string>("NETWORK");
        var container = new Argument<string>("CONTAINER");
        var ip = new Option<string?>("--ip") { Description = "IPv4 address (e.g., 172.30.100.104)" };
        var aliases = new Option<string[]>("--alias") { Description = "Add network-scoped alias for the container", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("connect", "Connect a container to a network") { network, container, ip, aliases };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            var req = new NetworkConnectRequest
            {
                Container = pr.GetValue(container)!, Ip = pr.GetValue(ip), Aliases = pr.GetValue(aliases) is { Length: > 0 } a ? [.. a] : null,
            };
            await c.SendNoContent(HttpMethod.Post, Net(pr.GetValue(network)!) + "/connect", Client.Json(req, NetworkJson.Default.NetworkConnectRequest), ct);
            return 0;
        });
        return cmd;
    }

    private Command NetworkDisconnect()
    {
        var network = new Argument<string>("NETWORK");
        var container = new Argument<string>("CONTAINER");
        var force = new Option<bool>("--force", "-f") { Description = "Force the container to disconnect from a network" };
        var cmd = new Command("disconnect", "Disconnect a container from a network") { network, container, force };
        cmd.SetAction(async (pr, ct) =>
        {
            using Client c = Connect(pr);
            var req = new NetworkDisconnectRequest { Container = pr.GetValue(container)!, Force = pr.GetValue(force) };
            await c.SendNoContent(HttpMethod.Post, Net(pr.GetValue(network)!) + "/disconnect", Client.Json(req, NetworkJson.Default.NetworkDisconnectRequest), ct);
            return 0;
        });
        return cmd;
    }

    private Command NetworkPrune()
    {
        var force = new Option<bool>("--force", "-f") { Description = "Do not prompt for confirmation" };
        var cmd = new Command("prune", "Remove all unused networks") { force };
        cmd.SetAction(async (pr, ct) =>
        {
            if (!pr.GetValue(force))
            {
                if (Console.IsInputRedirected) throw new CliException("network prune needs confirmation: run it on a terminal or pass -f");
                Console.Out.Write("WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue? [y/N] ");
                if (Console.ReadLine()?.Trim().ToLowerInvariant() is not ("y" or "yes")) return 0;
            }
            using Client c = Connect(pr);
            NetworkPruneResponse r = await c.Send(HttpMethod.Post, "v1/networks/prune", null, NetworkJson.Default.NetworkPruneResponse, ct);
            if (r.Removed.Count > 0) Console.Out.WriteLine("Deleted Networks:\n" + string.Join('\n', r.Removed));
            return 0;
        });
        return cmd;
    }

    /// <summary>docker's PORTS column: 0.0.0.0:8080->80/tcp, ranges not collapsed.</summary>
    internal static string PortsText(List<PortMapping>? ports) =>
        ports is null ? "" : string.Join(", ", ports.Select(p => $"{(string.IsNullOrEmpty(p.HostIp) ? "0.0.0.0" : p.HostIp)}:{p.HostPort}->{p.ContainerPort}/{p.Proto}"));
}
